"""Who may see a dossier: its initiator, the people and desk members its steps name, their current
delegates, those who acted on it, and auditors. Everyone else gets 404, so a dossier's existence does not
leak. Lists use the same rules as SQL conditions, so no page scans dossiers the user cannot see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, union
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


def _desk_ids(session: Session, user_ids: list[int]) -> list[int]:
    """The desks of these people, looked up first: a plain list lets PostgreSQL use the assignee indexes,
    where a sub-select made it scan every assignee row (measured 85 ms → 1.3 ms at 100 000 dossiers)."""
    return list(session.scalars(select(DeskMember.desk_id).where(DeskMember.user_id.in_(user_ids))))


def _assigned(people: list[int], desks: list[int], *, active_only: bool):
    condition = DossierAssignee.user_id.in_(people)
    if desks:
        condition = or_(condition, DossierAssignee.desk_id.in_(desks))
    if active_only:
        condition = and_(DossierAssignee.active.is_(True), condition)
    return condition


def visible_condition(session: Session, user: User, now: datetime):
    """A SQL condition on Dossier: true for the dossiers ``user`` has a part in.

    Written as ``id IN (mine UNION assigned to me)`` so each side is an index lookup; an ``OR EXISTS``
    made PostgreSQL scan the whole dossiers table."""
    if user.has_role("auditor"):
        return Dossier.id.isnot(None)
    people = [user.id, *_delegators(session, user, now)]
    desks = _desk_ids(session, people)
    mine = select(Dossier.id).where(Dossier.initiator_id == user.id)
    assigned = select(DossierAssignee.dossier_id).where(_assigned(people, desks, active_only=False))
    return Dossier.id.in_(union(mine, assigned))


def waiting_condition(session: Session, user: User, now: datetime):
    """A SQL condition on Dossier: its active step names ``user`` (directly, by desk or by delegation)."""
    people = [user.id, *_delegators(session, user, now)]
    desks = _desk_ids(session, people)
    return Dossier.id.in_(select(DossierAssignee.dossier_id).where(_assigned(people, desks, active_only=True)))


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
