"""Who may see a dossier: its initiator, the people and desk members its steps name, their current
delegates, those who acted on it, and auditors. Everyone else gets 404, so a dossier's existence does not
leak. Lists use the same rules as SQL conditions, so no page scans dossiers the user cannot see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from ..models import Delegation, DeskMember, Dossier, DossierAssignee, User
from .errors import NotFound


def _delegators(session: Session, user: User, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Delegation.delegator_id).where(
                Delegation.delegate_id == user.id, Delegation.start <= now, Delegation.end > now
            )
        )
    )


def _desk_ids(session: Session, user_ids: list[int]):
    return select(DeskMember.desk_id).where(DeskMember.user_id.in_(user_ids))


def visible_condition(session: Session, user: User, now: datetime):
    """A SQL condition on Dossier: true for the dossiers ``user`` has a part in."""
    if user.has_role("auditor"):
        return Dossier.id.isnot(None)
    people = [user.id, *_delegators(session, user, now)]
    assigned = exists().where(
        DossierAssignee.dossier_id == Dossier.id,
        or_(DossierAssignee.user_id.in_(people), DossierAssignee.desk_id.in_(_desk_ids(session, people))),
    )
    return or_(Dossier.initiator_id == user.id, assigned)


def waiting_condition(session: Session, user: User, now: datetime):
    """A SQL condition on Dossier: its active step names ``user`` (directly, by desk or by delegation)."""
    people = [user.id, *_delegators(session, user, now)]
    return exists().where(
        DossierAssignee.dossier_id == Dossier.id,
        DossierAssignee.active.is_(True),
        or_(DossierAssignee.user_id.in_(people), DossierAssignee.desk_id.in_(_desk_ids(session, people))),
    )


def get_for(session: Session, user: User, dossier_id: int, now: datetime, *, lock: bool = False) -> Dossier:
    """Load a dossier the user has a part in, or raise NotFound (also when it exists but is not theirs).

    ``lock`` takes a row lock (SELECT … FOR UPDATE on PostgreSQL), so that two people acting on the same
    dossier at once are serialised and the second sees the first's result.
    """
    query = select(Dossier).where(Dossier.id == dossier_id, visible_condition(session, user, now))
    if lock:
        query = query.with_for_update(of=Dossier)
    dossier = session.scalar(query)
    if dossier is None:
        raise NotFound("Dossier introuvable.", "Dossier not found.")
    if lock:
        session.refresh(dossier)
    return dossier
