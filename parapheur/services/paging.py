"""One page of dossiers for the browser's lists (inbox, my dossiers, auditors' search)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Dossier


def dossier_page(session: Session, conditions: list, order_by: tuple, number: int,
                 per_page: int) -> tuple[list[Dossier], int, int, int]:
    """Count the dossiers matching ``conditions``, clamp ``number`` to the pages that exist, and fetch that
    page; returns (dossiers, page, pages, total). An empty list still has one (empty) page."""
    total = session.scalar(select(func.count()).select_from(Dossier).where(*conditions)) or 0
    pages = max(1, -(-total // per_page))
    number = min(max(1, number), pages)
    rows = session.scalars(select(Dossier).where(*conditions).order_by(*order_by)
                           .limit(per_page).offset((number - 1) * per_page)).all()
    return list(rows), number, pages, total
