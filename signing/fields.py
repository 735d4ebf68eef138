"""Signature fields: every field of the circuit is created before the first signature.

The first signature certifies the document (DocMDP "form filling"); a signature field added
after that is a modification the certification does not allow, and validators flag it.
So :func:`prepare_fields` lays out all the fields of the circuit up front, and later
signatures only fill their own field.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign.fields import SigFieldSpec, append_signature_field, enumerate_sig_fields

from signing.errors import SigningError, UnreadablePdf

__all__ = ["FieldSpec", "open_pdf", "prepare_fields", "signature_fields"]

MARGIN = 36.0
"""Distance kept from the page edges (half an inch)."""
GAP = 10.0
"""Space between two fields, and between the fields and the page content."""
MAX_WIDTH, MAX_HEIGHT = 180.0, 60.0
"""Size of a default field; smaller only when the page is too narrow."""
MIN_WIDTH = 150.0
"""Below this width, fields go on another row rather than side by side."""

_pdfium_lock = threading.Lock()
"""PDFium is not thread-safe."""


@dataclass(frozen=True)
class FieldSpec:
    """A signature field of the circuit."""

    name: str
    """Field name (unique in the document); the signature step refers to it."""

    page: int = -1
    """Zero-based page index; negative counts from the end (-1 = last page)."""

    box: tuple[float, float, float, float] | None = None
    """Rectangle (x1, y1, x2, y2) in PDF points; ``None`` for the default layout."""


def _unreadable(problem_fr: str, problem_en: str, cause: BaseException | None = None) -> UnreadablePdf:
    return UnreadablePdf(
        f"{problem_en} ({cause!r})" if cause is not None else problem_en,
        message_fr=f"Impossible d'utiliser ce document : {problem_fr}.",
        message_en=f"This document cannot be used: {problem_en}.",
    )


def open_pdf(pdf: bytes) -> IncrementalPdfFileWriter:
    """Open ``pdf`` for an incremental update, or raise :class:`UnreadablePdf` saying why."""
    if not pdf:
        raise _unreadable("le fichier est vide", "the file is empty")
    if b"%PDF-" not in pdf[:1024]:
        raise _unreadable("ce fichier n'est pas un PDF", "this file is not a PDF")
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
    except Exception as exc:  # pyHanko raises PdfError, but also ValueError/KeyError/... on junk
        if b"/Encrypt" in pdf:
            raise _unreadable("le PDF est protégé par un mot de passe",
                              "the PDF is password-protected", exc) from exc
        raise _unreadable("le PDF est illisible ou endommagé",
                          "the PDF is unreadable or damaged", exc) from exc
    if writer.prev.encrypted:
        raise _unreadable("le PDF est protégé par un mot de passe", "the PDF is password-protected")
    try:
        page_count = int(writer.root["/Pages"]["/Count"])
    except Exception as exc:
        raise _unreadable("le PDF n'a pas d'arborescence de pages lisible",
                          "the PDF has no readable page tree", exc) from exc
    if page_count < 1:
        raise _unreadable("le PDF n'a aucune page", "the PDF has no page")
    return writer


def signature_fields(writer_or_pdf: IncrementalPdfFileWriter | bytes) -> dict[str, bool]:
    """Signature fields of a document: name → whether it is already signed."""
    handler = open_pdf(writer_or_pdf) if isinstance(writer_or_pdf, bytes) else writer_or_pdf
    return {name: value is not None for name, value, _ in enumerate_sig_fields(handler)}


def prepare_fields(pdf: bytes, specs: Sequence[FieldSpec]) -> bytes:
    """Return ``pdf`` with every field of ``specs`` present (an incremental update).

    A field that already exists under that name is kept as it is. Fields without a box are
    laid out side by side, in rows if needed, in the lowest free band at the foot of their
    page. Returns ``pdf`` unchanged when there is nothing to add.
    """
    names = [spec.name for spec in specs]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"duplicate signature field names: {sorted(duplicates)}")
    writer = open_pdf(pdf)
    existing = signature_fields(writer)
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return pdf
    if _is_certified(writer):
        raise SigningError(
            "document already certified: new signature fields would break the certification",
            message_fr="Ce document est déjà certifié par une signature : on ne peut plus y ajouter "
                       "de champ de signature sans rompre cette certification.",
            message_en="This document is already certified by a signature: no signature field can be "
                       "added without breaking that certification.",
        )
    page_count = int(writer.root["/Pages"]["/Count"])

    placed: list[tuple[FieldSpec, int, tuple[float, float, float, float]]] = []
    to_layout: dict[int, list[FieldSpec]] = {}
    for spec in missing:
        if not -page_count <= spec.page < page_count:
            raise ValueError(f"field {spec.name!r}: page {spec.page} outside 0..{page_count - 1}")
        page = spec.page % page_count
        if spec.box is not None:
            placed.append((spec, page, spec.box))
        else:
            to_layout.setdefault(page, []).append(spec)
    for page, page_specs in to_layout.items():
        page_box = _page_box(writer, page)
        occupied = _occupied_bands(pdf, page, page_box)
        boxes = layout_fields(len(page_specs), page_box, occupied)
        placed.extend((spec, page, box) for spec, box in zip(page_specs, boxes, strict=True))

    try:
        for spec, page, box in placed:
            append_signature_field(writer, SigFieldSpec(
                sig_field_name=spec.name, on_page=page,
                box=tuple(round(v, 2) for v in box),  # type: ignore[arg-type]
                empty_field_appearance=True,
            ))
        out = BytesIO()
        writer.write(out)
    except PdfError as exc:
        raise _unreadable("les champs de signature n'ont pas pu y être ajoutés",
                          "the signature fields could not be added to it", exc) from exc
    return out.getvalue()


def _is_certified(writer: IncrementalPdfFileWriter) -> bool:
    try:
        return "/DocMDP" in writer.root["/Perms"]
    except (KeyError, TypeError):
        return False


def _page_box(writer: IncrementalPdfFileWriter, page: int) -> tuple[float, float, float, float]:
    """The visible area of a page (CropBox, else MediaBox, inherited through the page tree)."""
    page_ref, _ = writer.find_page_for_modification(page)
    node = page_ref.get_object()
    for key in ("/CropBox", "/MediaBox"):
        current = node
        while current is not None:
            if key in current:
                x1, y1, x2, y2 = (float(v) for v in current[key])
                return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
            parent = current.get("/Parent")
            current = parent.get_object() if isinstance(parent, generic.PdfObject) else None
    return 0.0, 0.0, 612.0, 792.0  # PDF default (US Letter) when nothing is declared


def _occupied_bands(pdf: bytes, page: int, page_box) -> list[tuple[float, float]]:
    """Vertical extents (bottom, top) of what is drawn on the page, in PDF coordinates.

    Objects covering most of the page (backgrounds, frames) are ignored. If PDFium cannot
    read the page, the page is treated as empty: the fields then go at the very bottom.
    """
    import pypdfium2 as pdfium

    x1, y1, x2, y2 = page_box
    page_area = (x2 - x1) * (y2 - y1)
    bands = []
    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(pdf)
        except pdfium.PdfiumError:
            return []
        try:
            pdf_page = document[page]
            for obj in pdf_page.get_objects(max_depth=2):
                left, bottom, right, top = obj.get_bounds()
                if (right - left) * (top - bottom) > 0.6 * page_area:
                    continue
                bands.append((bottom, top))
        finally:
            document.close()
    return sorted(bands)


def layout_fields(count: int, page_box, occupied: Sequence[tuple[float, float]] = ()
                  ) -> list[tuple[float, float, float, float]]:
    """Boxes for ``count`` fields at the foot of a page, avoiding the ``occupied`` bands.

    Fields are MAX_WIDTH x MAX_HEIGHT (narrower if the page needs it), side by side from the
    left margin, in as many rows as needed, first field top left. The block goes in the
    lowest free band above the bottom margin; if the page has none, at the bottom margin.
    """
    if count == 0:
        return []
    x1, y1, x2, y2 = page_box
    usable = max(x2 - x1 - 2 * MARGIN, 1.0)
    per_row = max(1, min(count, int((usable + GAP) // (MIN_WIDTH + GAP))))
    width = min(MAX_WIDTH, (usable - GAP * (per_row - 1)) / per_row)
    height = min(MAX_HEIGHT, max((y2 - y1 - 2 * MARGIN) / 4, 20.0))
    rows = math.ceil(count / per_row)
    block = rows * height + (rows - 1) * GAP

    bottom = y1 + MARGIN
    ceiling = y2 - MARGIN
    for band_bottom, band_top in sorted(occupied):
        if band_top + GAP <= bottom:
            continue  # below the current position (e.g. in the margin)
        if band_bottom - GAP >= bottom + block:
            break  # the block fits under this band
        bottom = band_top + GAP
    if bottom + block > ceiling:
        bottom = y1 + MARGIN  # no free band: overlap the foot of the page rather than fail

    boxes = []
    for index in range(count):
        row, column = divmod(index, per_row)
        left = x1 + MARGIN + column * (width + GAP)
        top = bottom + block - row * (height + GAP)
        boxes.append((left, top - height, left + width, top))
    return boxes
