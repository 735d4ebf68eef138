"""Page images of a PDF for the dossier page, rendered server-side with PDFium and cached by content hash:
a revision never changes, so its images never go stale."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from ..storage import store
from .errors import NotFound

_LOCK = threading.Lock()  # PDFium is not thread-safe
WIDTHS = (800, 1200)


def page_png(cache_dir: str, sha256: str, page: int, width: int = 800) -> Path:
    """Path of the PNG of ``page`` (1-based) of the blob ``sha256`` at ``width`` pixels."""
    if width not in WIDTHS:
        width = WIDTHS[0]
    target = Path(cache_dir) / sha256[:2] / f"{sha256}-{page}-{width}.png"
    if target.exists():
        return target
    import pypdfium2 as pdfium

    data = store().get(sha256)
    with _LOCK:
        pdf = pdfium.PdfDocument(data)
        try:
            if not 1 <= page <= len(pdf):
                raise NotFound("Page introuvable.", "Page not found.")
            pdf_page = pdf[page - 1]
            scale = width / pdf_page.get_width()
            image = pdf_page.render(scale=scale).to_pil()
        finally:
            pdf.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".png")
    with os.fdopen(fd, "wb") as handle:
        image.save(handle, format="PNG", optimize=True)
    os.replace(tmp, target)
    return target
