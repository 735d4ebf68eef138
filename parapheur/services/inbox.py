"""The signer's inbox: dossiers whose active step waits for the user (directly, through a desk, or as a
delegate), with counts. Every query starts from the user's own assignments, so its cost follows the
size of the inbox, not of the instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

import circuits

from ..models import Dossier, DossierAssignee, User
from . import access
from .dossiers import directory, snapshot_of
from .paging import dossier_page

PER_PAGE = 20
SORTS = {
    "recent": Dossier.updated_at.desc(),
    "oldest": Dossier.updated_at.asc(),
    "due": Dossier.due_at.asc(),
    "title": Dossier.title.asc(),
}


@dataclass(frozen=True)
class Counts:
    to_approve: int
    to_sign: int
    overdue: int


@dataclass(frozen=True)
class Item:
    dossier: Dossier
    kind: str
    #: name of the person the user would act for (delegation), or None
    on_behalf_of: str | None
    overdue: bool


@dataclass(frozen=True)
class Page:
    items: tuple[Item, ...]
    page: int
    pages: int
    total: int


def _kind_is(kind: str):
    return exists().where(DossierAssignee.dossier_id == Dossier.id, DossierAssignee.active.is_(True),
                          DossierAssignee.kind == kind)


def _base(session: Session, user: User, now: datetime):
    return [Dossier.status == "in_progress", access.waiting_condition(session, user, now)]


def counts(session: Session, user: User, now: datetime) -> Counts:
    base = _base(session, user, now)

    def count(*conditions) -> int:
        return session.scalar(select(func.count()).select_from(Dossier).where(*base, *conditions))

    return Counts(count(_kind_is("visa")), count(_kind_is("signature")), count(Dossier.due_at < now))


def page(session: Session, user: User, now: datetime, *, kind: str | None = None, sort: str = "recent",
         number: int = 1, late_only: bool = False) -> Page:
    conditions = _base(session, user, now)
    if kind in {"visa", "signature"}:
        conditions.append(_kind_is(kind))
    if late_only:
        conditions.append(Dossier.due_at < now)
    rows, number, pages, total = dossier_page(session, conditions, (SORTS.get(sort, SORTS["recent"]),
                                                                    Dossier.id.desc()), number, PER_PAGE)
    directory_now = directory(session, now) if rows else None
    items = []
    for dossier in rows:
        snapshot = snapshot_of(dossier)
        step = snapshot.active_step
        items.append(Item(dossier, str(step.kind) if step else "",
                          circuits.acting_for(snapshot, user.username, now, directory_now),
                          bool(dossier.due_at and dossier.due_at < now)))
    delegators = {i.on_behalf_of for i in items if i.on_behalf_of}
    if delegators:
        names = dict(session.execute(select(User.username, User.name).where(User.username.in_(delegators))).all())
        items = [Item(i.dossier, i.kind, names.get(i.on_behalf_of, i.on_behalf_of), i.overdue)
                 if i.on_behalf_of else i for i in items]
    return Page(tuple(items), number, pages, total)
