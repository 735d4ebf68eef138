"""Auditors' search over the dossiers of the instance: title, type, status, signer, creation date range; paged,
newest first. Every criterion is a SQL condition on an indexed column (type_id, status, created_at, and the
audit events' (actor, kind) for the signer), and the access rule is ``access.visible_condition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..models import AuditEvent, DocumentType, Dossier, User
from . import access
from .paging import dossier_page
from .trail import PARIS

PER_PAGE = 25
STATUSES = ("draft", "in_progress", "completed", "rejected", "recalled")
#: the events that make someone a signer of a dossier (a visa counts: it is an act on the circuit)
SIGNER_KINDS = ("document.signed", "step.approved", "dossier.rejected")


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()) if value else None
    except ValueError:
        return None


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Criteria:
    """What the auditor asked for; empty fields do not filter."""

    title: str = ""
    type_code: str = ""
    status: str = ""
    #: a username or part of a person's name
    signer: str = ""
    #: creation date range, inclusive, in Paris days
    created_from: date | None = None
    created_to: date | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args) -> Criteria:
        """Read a query string (``title``, ``type``, ``status``, ``signer``, ``from``, ``to``, ``page``);
        anything unreadable is ignored rather than refused."""
        status = (args.get("status") or "").strip()
        return cls(title=(args.get("title") or "").strip()[:300], type_code=(args.get("type") or "").strip()[:80],
                   status=status if status in STATUSES else "", signer=(args.get("signer") or "").strip()[:200],
                   created_from=_date(args.get("from")), created_to=_date(args.get("to")),
                   page=_int(args.get("page"), 1))

    def as_args(self, **changes) -> dict[str, str]:
        """The query string of these criteria (for the pager links)."""
        values = {"title": self.title, "type": self.type_code, "status": self.status, "signer": self.signer,
                  "from": self.created_from.isoformat() if self.created_from else "",
                  "to": self.created_to.isoformat() if self.created_to else "", "page": str(self.page)}
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


@dataclass(frozen=True)
class Results:
    dossiers: list[Dossier]
    total: int
    page: int
    pages: int
    per_page: int
    #: when the signer criterion matched nobody, say so rather than show an empty list silently
    signer_unknown: bool = False


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=PARIS)


def signer_usernames(session: Session, text: str) -> list[str]:
    """Usernames matching ``text``: the exact username, or a part of the person's name (case-insensitive)."""
    pattern = f"%{text.lower()}%"
    query = select(User.username).where(or_(User.username == text.lower(), func.lower(User.name).like(pattern)))
    return list(session.scalars(query.limit(50)))


def conditions(session: Session, criteria: Criteria, usernames: list[str] | None) -> list:
    where = []
    if criteria.title:
        escaped = criteria.title.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(func.lower(Dossier.title).like(f"%{escaped}%", escape="\\"))
    if criteria.type_code:
        where.append(Dossier.type_id.in_(select(DocumentType.id).where(DocumentType.code == criteria.type_code)))
    if criteria.status:
        where.append(Dossier.status == criteria.status)
    if criteria.created_from:
        where.append(Dossier.created_at >= _paris_midnight(criteria.created_from))
    if criteria.created_to:
        where.append(Dossier.created_at < _paris_midnight(criteria.created_to + timedelta(days=1)))
    if usernames is not None:
        where.append(Dossier.id.in_(select(AuditEvent.dossier_id).where(
            AuditEvent.actor.in_(usernames), AuditEvent.kind.in_(SIGNER_KINDS))))
    return where


def search(session: Session, user: User, criteria: Criteria, now: datetime, per_page: int | None = None) -> Results:
    """The page of dossiers ``user`` may see that match ``criteria``, newest first."""
    per_page = per_page or PER_PAGE
    usernames = signer_usernames(session, criteria.signer) if criteria.signer else None
    where = [access.visible_condition(session, user, now), *conditions(session, criteria, usernames)]
    dossiers, page, pages, total = dossier_page(session, where, (Dossier.created_at.desc(), Dossier.id.desc()),
                                                criteria.page, per_page)
    return Results(dossiers, total, page, pages, per_page, signer_unknown=usernames == [])


def document_types(session: Session) -> list[DocumentType]:
    return list(session.scalars(select(DocumentType).order_by(DocumentType.name)))
