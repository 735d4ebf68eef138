"""A small PDF writer for the documents the application composes itself (the bordereau).

A4 pages of text in the standard Helvetica fonts with WinAnsi encoding (cp1252: every French letter,
œ, €, typographic quotes), so no font is embedded and any reader extracts the text. It lays out headings,
wrapped paragraphs, label/value lists, tables whose header repeats on each page, rules, a footer with page
numbers, and reserves a free rectangle where a signature field can go. No dependency, like ``samples``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from signing.stamp import to_winansi

A4 = (595.0, 842.0)

# Advance widths (1/1000 em) of cp1252 codes 32..255, from Adobe's Helvetica and Helvetica-Bold AFM files.
_ASCII = {
    "F1": [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 584, 278, 278, 556, 556, 556, 556,
           556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778,
           722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278,
           278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
           556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584],
    "F2": [278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 584, 278, 278, 556, 556, 556, 556,
           556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778,
           722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333,
           278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
           611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584],
}
_WINDOWS = {  # 0x80..0x9F: € ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ
    "F1": {0x80: 556, 0x82: 222, 0x83: 556, 0x84: 333, 0x85: 1000, 0x86: 556, 0x87: 556, 0x88: 333, 0x89: 1000,
           0x8A: 667, 0x8B: 333, 0x8C: 1000, 0x8E: 611, 0x91: 222, 0x92: 222, 0x93: 333, 0x94: 333, 0x95: 350,
           0x96: 556, 0x97: 1000, 0x98: 333, 0x99: 1000, 0x9A: 500, 0x9B: 333, 0x9C: 944, 0x9E: 500, 0x9F: 667},
    "F2": {0x80: 556, 0x82: 278, 0x83: 556, 0x84: 500, 0x85: 1000, 0x86: 556, 0x87: 556, 0x88: 333, 0x89: 1000,
           0x8A: 667, 0x8B: 333, 0x8C: 1000, 0x8E: 611, 0x91: 278, 0x92: 278, 0x93: 500, 0x94: 500, 0x95: 350,
           0x96: 556, 0x97: 1000, 0x98: 333, 0x99: 1000, 0x9A: 556, 0x9B: 333, 0x9C: 944, 0x9E: 500, 0x9F: 667},
}
_LATIN = {  # 0xA0..0xFF
    "F1": [278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333, 333,
           333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, 667, 667, 667, 667, 667, 667, 1000, 722,
           667, 667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722,
           722, 667, 667, 611, 556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
           556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500],
    "F2": [278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333, 333,
           333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611, 722, 722, 722, 722, 722, 722, 1000, 722,
           667, 667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722,
           722, 667, 667, 611, 556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
           611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556],
}


def _width_table(font: str) -> list[int]:
    table = [0] * 256
    table[32:127] = _ASCII[font]
    for code, width in _WINDOWS[font].items():
        table[code] = width
    table[160:256] = _LATIN[font]
    return table


_WIDTHS = {font: _width_table(font) for font in ("F1", "F2")}
_FONTS = {"F1": b"Helvetica", "F2": b"Helvetica-Bold"}


def encode(text: str) -> bytes:
    """``text`` in WinAnsi (cp1252); control characters become spaces, the rest is transliterated."""
    cleaned = "".join(" " if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in text)
    return to_winansi(cleaned)


def text_width(text: str, size: float, bold: bool = False) -> float:
    widths = _WIDTHS["F2" if bold else "F1"]
    return sum(widths[b] for b in encode(text)) * size / 1000


def wrap(text: str, width: float, size: float, bold: bool = False) -> list[str]:
    """Lines of ``text`` no wider than ``width`` points; words too long for a line (hashes) are cut."""
    lines: list[str] = []
    for paragraph in (text or "").split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, size, bold) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while text_width(word, size, bold) > width:
                cut = len(word) - 1
                while cut > 1 and text_width(word[:cut], size, bold) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _literal(text: str) -> bytes:
    raw = encode(text)
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text_string(text: str) -> bytes:
    """A PDF text string (UTF-16BE with BOM): for the document information, which is not drawn."""
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def _num(value: float) -> bytes:
    return (f"{value:.2f}".rstrip("0").rstrip(".") or "0").encode()


@dataclass(frozen=True)
class Column:
    header: str
    width: float


@dataclass
class _Page:
    ops: list[bytes] = field(default_factory=list)


class Document:
    """Flowing layout, top to bottom; a new page starts when the next block does not fit."""

    def __init__(self, title: str, *, author: str = "", subject: str = "", lang: str = "fr-FR",
                 margin: float = 50.0, footer_height: float = 30.0):
        self.title, self.author, self.subject, self.lang = title, author, subject, lang
        self.width, self.height = A4
        self.margin = margin
        self.bottom = margin + footer_height
        self.pages: list[_Page] = []
        self.y = 0.0
        self.footer: Callable[[int, int], str] | None = None
        self._new_page()

    # -- primitives -------------------------------------------------------------------------------------

    @property
    def text_width(self) -> float:
        return self.width - 2 * self.margin

    @property
    def page(self) -> _Page:
        return self.pages[-1]

    def _new_page(self) -> None:
        self.pages.append(_Page())
        self.y = self.height - self.margin

    def ensure(self, height: float) -> None:
        """Start a new page unless ``height`` points still fit on this one."""
        if self.y - height < self.bottom:
            self._new_page()

    def _text(self, x: float, y: float, text: str, size: float, bold: bool, gray: float = 0.0) -> None:
        color = b"%s g " % _num(gray) if gray else b""
        self.page.ops.append(b"BT %s/%s %s Tf %s %s Td %s Tj ET%s" % (
            color, b"F2" if bold else b"F1", _num(size), _num(x), _num(y), _literal(text),
            b" 0 g" if gray else b""))

    def _rect(self, x: float, y: float, w: float, h: float, gray: float) -> None:
        self.page.ops.append(b"%s g %s %s %s %s re f 0 g" % (_num(gray), _num(x), _num(y), _num(w), _num(h)))

    def _line(self, x1: float, y1: float, x2: float, y2: float, gray: float = 0.6, width: float = 0.5) -> None:
        self.page.ops.append(b"%s G %s w %s %s m %s %s l S 0 G" % (
            _num(gray), _num(width), _num(x1), _num(y1), _num(x2), _num(y2)))

    # -- blocks -----------------------------------------------------------------------------------------

    def space(self, height: float) -> None:
        self.y -= height

    def heading(self, text: str, level: int = 1) -> None:
        size = {1: 17.0, 2: 12.5, 3: 10.5}[level]
        before = {1: 0.0, 2: 12.0, 3: 8.0}[level]
        lines = wrap(text, self.text_width, size, bold=True)
        self.ensure(before + size * 1.3 * len(lines) + 30)  # never alone at the foot of a page
        self.y -= before
        for line in lines:
            self.y -= size * 1.2
            self._text(self.margin, self.y, line, size, True)
        self.y -= size * 0.35
        if level == 2:
            self._line(self.margin, self.y, self.width - self.margin, self.y, gray=0.75)
            self.y -= 5

    def paragraph(self, text: str, size: float = 9.5, *, bold: bool = False, gray: float = 0.0,
                  indent: float = 0.0, after: float = 3.0) -> None:
        leading = size * 1.3
        for line in wrap(text, self.text_width - indent, size, bold):
            self.ensure(leading)
            self.y -= leading
            self._text(self.margin + indent, self.y + size * 0.25, line, size, bold, gray)
        self.y -= after

    def fields(self, pairs: Sequence[tuple[str, str]], *, label_width: float = 130.0, size: float = 9.0,
               indent: float = 0.0) -> None:
        """Label/value lines; the value wraps in its own column."""
        leading = size * 1.3
        for label, value in pairs:
            lines = wrap(value or "—", self.text_width - indent - label_width, size)
            self.ensure(leading * min(len(lines), 3))
            self.y -= leading
            self._text(self.margin + indent, self.y + size * 0.25, label, size, True, gray=0.25)
            for number, line in enumerate(lines):
                if number:
                    self.ensure(leading)
                    self.y -= leading
                self._text(self.margin + indent + label_width, self.y + size * 0.25, line, size, False)
        self.y -= 3

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, size: float = 7.5) -> None:
        """A table with a shaded header, repeated at the top of each page it runs onto."""
        leading, pad = size * 1.25, 2.0

        def header() -> None:
            lines = [wrap(c.header, c.width - 2 * pad, size, True) for c in columns]
            height = leading * max(map(len, lines)) + 2 * pad
            self.ensure(height + leading + 2 * pad)
            self._rect(self.margin, self.y - height, sum(c.width for c in columns), height, 0.9)
            x = self.margin
            for column, cell in zip(columns, lines, strict=True):
                for number, line in enumerate(cell):
                    self._text(x + pad, self.y - pad - leading * (number + 1) + size * 0.3, line, size, True)
                x += column.width
            self.y -= height

        header()
        for row in rows:
            cells = [wrap(str(value or "—"), c.width - 2 * pad, size) for c, value in zip(columns, row,
                                                                                         strict=True)]
            height = leading * max(map(len, cells)) + 2 * pad
            if self.y - height < self.bottom:
                self._new_page()
                header()
            x = self.margin
            for column, cell in zip(columns, cells, strict=True):
                for number, line in enumerate(cell):
                    self._text(x + pad, self.y - pad - leading * (number + 1) + size * 0.3, line, size, False)
                x += column.width
            self.y -= height
            self._line(self.margin, self.y, self.margin + sum(c.width for c in columns), self.y, gray=0.85,
                       width=0.3)
        self.y -= 6

    def reserve(self, width: float, height: float) -> tuple[int, tuple[float, float, float, float]]:
        """Keep an empty ``width``×``height`` rectangle (e.g. for a signature field) at the current place;
        returns (zero-based page index, (x1, y1, x2, y2))."""
        self.ensure(height + 4)
        x1, y2 = self.margin, self.y - 2
        box = (x1, y2 - height, x1 + width, y2)
        self._line(box[0], box[1], box[2], box[1], gray=0.8)
        self.y = box[1] - 4
        return len(self.pages) - 1, box

    # -- output -----------------------------------------------------------------------------------------

    def render(self, created: datetime | None = None) -> bytes:
        """The PDF bytes (one revision, classic cross-reference table, compressed page contents)."""
        created = (created or datetime.now(UTC)).astimezone(UTC)
        total = len(self.pages)
        objects: list[bytes] = []

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        fonts = {name: add(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"
                           % base) for name, base in _FONTS.items()}
        resources = b"<< /Font << /F1 %d 0 R /F2 %d 0 R >> >>" % (fonts["F1"], fonts["F2"])
        pages_id = len(objects) + 2 * total + 1
        page_ids = []
        for number, page in enumerate(self.pages, start=1):
            ops = list(page.ops)
            if self.footer is not None:
                rule = self.margin + 12
                ops.append(b"0.8 G 0.5 w %s %s m %s %s l S 0 G" % (
                    _num(self.margin), _num(rule), _num(self.width - self.margin), _num(rule)))
                footer = self.footer(number, total)
                ops.append(b"BT 0.35 g /F1 7.5 Tf %s %s Td %s Tj ET 0 g" % (
                    _num(self.margin), _num(self.margin), _literal(footer)))
            stream = zlib.compress(b"\n".join(ops))
            contents = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
                           + b"\nendstream")
            page_ids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R "
                                b"/Resources %s >>" % (pages_id, _num(self.width), _num(self.height), contents,
                                                       resources)))
        kids = b" ".join(b"%d 0 R" % p for p in page_ids)
        assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, total)) == pages_id
        catalog = add(b"<< /Type /Catalog /Pages %d 0 R /Lang %s /ViewerPreferences << /DisplayDocTitle true >> >>"
                      % (pages_id, _text_string(self.lang)))
        stamp = created.strftime("D:%Y%m%d%H%M%SZ").encode()
        info = add(b"<< /Title %s /Author %s /Subject %s /Creator (Parapheur) /Producer (Parapheur) "
                   b"/CreationDate (%s) /ModDate (%s) >>" % (_text_string(self.title), _text_string(self.author),
                                                           _text_string(self.subject), stamp, stamp))
        return assemble(objects, catalog, info)


def assemble(objects: Sequence[bytes], catalog: int, info: int | None = None) -> bytes:
    """Number ``objects`` from 1, write them with their cross-reference table and trailer: a whole PDF."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    file_id = hashlib.md5(bytes(out), usedforsecurity=False).hexdigest().encode()
    info_ref = b" /Info %d 0 R" % info if info else b""
    out += (b"trailer\n<< /Size %d /Root %d 0 R%s /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, catalog, info_ref, file_id, file_id, xref))
    return bytes(out)
