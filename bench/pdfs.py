"""PDFs of chosen sizes for the benchmarks, written by hand (no extra library).

- :func:`text_pages`: an all-text document with *uncompressed* page content, ~5 KB a page
  (10 pages ≈ 50 KB): the everyday "arrêté / contrat" file.
- :func:`heavy_pdf`: a scanned-looking document of a given size: each page shows a greyscale
  image XObject of pseudo-random (incompressible) bytes, stored without a filter, so the file
  is as big as asked and a reader cannot shrink it. Written straight to a file, a chunk at a
  time, so making a 100 MB sample does not need 100 MB of memory.

Both are deterministic (same arguments, same bytes), so runs compare like with like.
"""

from __future__ import annotations

import io
import math
import os
import random
from pathlib import Path
from typing import BinaryIO

__all__ = ["heavy_pdf", "heavy_pdf_bytes", "text_pages"]

_HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
_A4 = b"[0 0 595 842]"


class _Writer:
    """Numbered objects written one after the other, then the cross-reference table."""

    def __init__(self, out: BinaryIO):
        self.out, self.offsets, self.position = out, {}, 0
        self._write(_HEADER)

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)

    def obj(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def stream(self, number: int, dictionary: bytes, chunks, length: int) -> None:
        """A stream object whose data comes in ``chunks`` (``length`` bytes in all)."""
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n<< %s /Length %d >>\nstream\n" % (number, dictionary, length))
        for chunk in chunks:
            self._write(chunk)
        self._write(b"\nendstream\nendobj\n")

    def finish(self, root: int) -> None:
        size = max(self.offsets) + 1
        xref = self.position
        table = [b"xref\n0 %d\n0000000000 65535 f \n" % size]
        table += [b"%010d 00000 n \n" % self.offsets[n] for n in range(1, size)]
        table.append(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref))
        self._write(b"".join(table))


def _text_content(title: str, number: int, pages: int, lines: int) -> bytes:
    parts = [b"BT /F1 14 Tf 56 800 Td (%s - page %d/%d) Tj ET" % (title.encode("latin-1"), number, pages)]
    y = 780
    for i in range(lines):
        parts.append(b"BT /F1 8 Tf 56 %d Td (Article %d.%d - Vu le code general des collectivites "
                     b"territoriales, considerant la deliberation du conseil municipal, il est arrete "
                     b"ce qui suit.) Tj ET" % (y, number, i + 1))
        y -= 13
        if y < 60:
            y = 780
    return b"\n".join(parts)


def text_pages(pages: int = 10, page_bytes: int = 5000, title: str = "Arrete municipal") -> bytes:
    """``pages`` A4 pages of text, page content uncompressed, about ``page_bytes`` each."""
    lines = max(1, page_bytes // 165)
    buffer = io.BytesIO()
    w = _Writer(buffer)
    # 1: catalog, 2: pages, 3: font, then (content, page) pairs
    kids = []
    for n in range(pages):
        content, page = 4 + 2 * n, 5 + 2 * n
        data = _text_content(title, n + 1, pages, lines)
        w.stream(content, b"", [data], len(data))
        w.obj(page, b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> >> >>" % (_A4, content))
        kids.append(page)
    w.obj(3, _FONT)
    w.obj(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), pages))
    w.obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    w.finish(root=1)
    return buffer.getvalue()


def _noise(rng: random.Random, size: int, chunk: int = 1 << 20):
    while size > 0:
        n = min(chunk, size)
        yield rng.randbytes(n)
        size -= n


def _write_heavy(out: BinaryIO, size: int, pages: int, seed: int) -> None:
    rng = random.Random(seed)
    # Image bytes per page so that the file lands close to ``size`` (text and structure are ~2 KB/page).
    per_page = max(1024, (size - 2048 * pages) // pages)
    side = max(32, math.isqrt(per_page))
    height = max(1, per_page // side)
    w = _Writer(out)
    kids = []
    for n in range(pages):
        image, content, page = 4 + 3 * n, 5 + 3 * n, 6 + 3 * n
        w.stream(image, b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                        b"/BitsPerComponent 8" % (side, height), _noise(rng, side * height), side * height)
        text = _text_content("Piece numerisee", n + 1, pages, 6)
        data = b"q 483 0 0 600 56 120 cm /Im0 Do Q\n" + text
        w.stream(content, b"", [data], len(data))
        w.obj(page, b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Contents %d 0 R /Resources "
                    b"<< /Font << /F1 3 0 R >> /XObject << /Im0 %d 0 R >> >> >>" % (_A4, content, image))
        kids.append(page)
    w.obj(3, _FONT)
    w.obj(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), pages))
    w.obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    w.finish(root=1)


def heavy_pdf(path: str | os.PathLike, size: int, pages: int | None = None, seed: int = 20) -> Path:
    """Write a PDF of about ``size`` bytes (images of incompressible noise) to ``path``; return the path."""
    pages = pages or max(1, min(50, size // (4 * 1024 * 1024)))
    path = Path(path)
    with open(path, "wb") as handle:
        _write_heavy(handle, size, pages, seed)
    return path


def heavy_pdf_bytes(size: int, pages: int | None = None, seed: int = 20) -> bytes:
    """Same as :func:`heavy_pdf`, in memory (for the 20 MB sample)."""
    pages = pages or max(1, min(50, size // (4 * 1024 * 1024)))
    buffer = io.BytesIO()
    _write_heavy(buffer, size, pages, seed)
    return buffer.getvalue()
