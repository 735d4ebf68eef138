"""The visible stamp of a signature: "Signé par …, le …, étape …".

pyHanko's default stamp font is Courier through its ``SimpleFontEngine``, which writes the
text as a PDF *text string* (PDFDocEncoding, or UTF-16 when that fails) while declaring
the font /WinAnsiEncoding. Plain accented letters survive by luck (é is 0xE9 in both), but
’ … Œ € come out as other glyphs and any character outside PDFDocEncoding turns the whole
line into UTF-16 garbage. :class:`WinAnsiFontEngine` encodes to cp1252 (= WinAnsi) for
real and transliterates what cp1252 cannot show, so every French text renders.

An OpenType font can be used instead (``stamp_style(font_file=...)``): full Unicode,
subset-embedded, but it costs a few milliseconds per signature.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.api import ShapeResult
from pyhanko.pdf_utils.font.basic import COURIER_META, SimpleFontEngine, SimpleFontEngineFactory
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import TextStampStyle

__all__ = ["StampText", "WinAnsiFontEngine", "WinAnsiFontEngineFactory", "stamp_style", "to_winansi"]

STAMP_TEMPLATE = "Signé par %(signer)s\nle %(date)s\nétape : %(step)s"


@dataclass(frozen=True)
class StampText:
    """What the visible stamp of a signature says."""

    signer_name: str
    """The authenticated signer (for a seal: the person whose act the seal records)."""

    step_label: str
    """Label of the circuit step being signed."""

    when: dt.datetime
    """Moment of the act, in the time zone it should be shown in."""

    def params(self) -> dict[str, str]:
        """Interpolation parameters of :data:`STAMP_TEMPLATE`."""
        date = self.when.strftime("%d/%m/%Y à %H:%M")
        zone = self.when.tzname() if self.when.tzinfo is not None else None
        if zone:
            date = f"{date} ({zone})"
        return {"signer": self.signer_name, "date": date, "step": self.step_label}

    def render(self) -> str:
        """The stamp's text, as shown."""
        return STAMP_TEMPLATE % self.params()


_TRANSLITERATIONS = str.maketrans({
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2212": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ",
    "\u2032": "'", "\u02bc": "'",
    "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i",  # no NFKD decomposition
})


def to_winansi(text: str) -> bytes:
    """Encode ``text`` in cp1252 (WinAnsiEncoding); unknown letters lose their accents, else '?'."""
    out = bytearray()
    for char in text.translate(_TRANSLITERATIONS):
        try:
            out += char.encode("cp1252")
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("cp1252", "ignore")
            out += base or b"?"
    return bytes(out)


class WinAnsiFontEngine(SimpleFontEngine):
    """A standard-14 font engine that really writes WinAnsi bytes (see module docstring)."""

    def shape(self, txt: str) -> ShapeResult:
        encoded = to_winansi(txt)
        ops = BytesIO()
        generic.ByteStringObject(encoded).write_to_stream(ops)
        ops.write(b" Tj")
        return ShapeResult(graphics_ops=ops.getvalue(), x_advance=len(encoded) * self.avg_width,
                           y_advance=0)


class WinAnsiFontEngineFactory(SimpleFontEngineFactory):
    """Factory for :class:`WinAnsiFontEngine` (Courier by default: monospace, exact widths)."""

    def __init__(self, name: str = "Courier", avg_width: float = 0.6, meta=COURIER_META):
        super().__init__(name, avg_width, meta)

    def create_font_engine(self, writer, obj_stream=None):
        return WinAnsiFontEngine(writer, self.name, self.avg_width, self.meta)


_styles: dict[str | None, TextStampStyle] = {}


def stamp_style(font_file: str | None = None) -> TextStampStyle:
    """The stamp style (cached): WinAnsi Courier, or the given OpenType font file."""
    style = _styles.get(font_file)
    if style is None:
        if font_file is None:
            font = WinAnsiFontEngineFactory()
        else:
            from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

            font = GlyphAccumulatorFactory(font_file)
        style = TextStampStyle(
            stamp_text=STAMP_TEMPLATE,
            text_box_style=TextBoxStyle(font=font, font_size=10),
            border_width=1,
            background=None,
        )
        _styles[font_file] = style
    return style
