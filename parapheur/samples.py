"""Sample PDFs for the demo and for tests: plain text pages, written by hand so no extra library is needed."""

from __future__ import annotations

import zlib

from .pdfwriter import assemble


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_pdf(title: str, paragraphs: list[str] | None = None, pages: int = 1, filler_lines: int = 40) -> bytes:
    """A PDF of ``pages`` A4 pages: the title, the paragraphs, then numbered filler lines on each page."""
    paragraphs = paragraphs or []
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages_id = len(objects) + 1 + 2 * pages  # reserved: contents and page objects come first
    page_ids = []
    for number in range(1, pages + 1):
        lines = [f"BT /F1 16 Tf 60 790 Td ({_escape(title).decode('latin-1')}) Tj ET"]
        y = 760
        for text in paragraphs if number == 1 else []:
            lines.append(f"BT /F1 11 Tf 60 {y} Td ({_escape(text).decode('latin-1')}) Tj ET")
            y -= 16
        for i in range(filler_lines):
            if y < 140:
                break
            lines.append(
                f"BT /F1 9 Tf 60 {y} Td (Page {number}, ligne {i + 1} : texte de l'acte, "
                f"article {number}.{i + 1}, conforme au modele.) Tj ET"
            )
            y -= 13
        lines.append(f"BT /F1 9 Tf 500 40 Td (Page {number}/{pages}) Tj ET")
        stream = zlib.compress("\n".join(lines).encode("latin-1"))
        contents = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, contents, font)
            )
        )
    kids = b" ".join(b"%d 0 R" % p for p in page_ids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    return assemble(objects, catalog)
