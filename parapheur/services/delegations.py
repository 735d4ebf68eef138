"""Delegations: a signer lets another user act in their place for a date range."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Delegation, User
from .errors import Invalid, NotFound


def create(session: Session, delegator: User, delegate_username: str, start: datetime, end: datetime,
           meta: audit.Meta) -> Delegation:
    delegate = session.scalar(select(User).where(User.username == (delegate_username or "").strip().lower(),
                                                 User.active))
    if delegate is None:
        raise Invalid("Délégataire inconnu.", "Unknown delegate.", code="unknown_delegate")
    if delegate.id == delegator.id:
        raise Invalid("Vous ne pouvez pas vous déléguer à vous-même.", "You cannot delegate to yourself.",
                      code="self_delegation")
    if end <= start:
        raise Invalid("La date de fin doit suivre la date de début.", "The end must come after the start.",
                      code="bad_dates")
    delegation = Delegation(delegator_id=delegator.id, delegate_id=delegate.id, start=start, end=end)
    session.add(delegation)
    session.flush()
    audit.record(session, "delegation.set", meta, delegate=delegate.username, start=start.isoformat(),
                 end=end.isoformat())
    return delegation


def mine(session: Session, user: User, now: datetime) -> tuple[list[Delegation], list[Delegation]]:
    """(delegations I gave, delegations I received) still running or to come."""
    given = session.scalars(select(Delegation).where(Delegation.delegator_id == user.id, Delegation.end > now)
                            .order_by(Delegation.start)).all()
    received = session.scalars(select(Delegation).where(Delegation.delegate_id == user.id, Delegation.end > now)
                               .order_by(Delegation.start)).all()
    return list(given), list(received)


def end(session: Session, user: User, delegation_id: int, now: datetime, meta: audit.Meta) -> None:
    delegation = session.get(Delegation, delegation_id)
    if delegation is None or delegation.delegator_id != user.id:
        raise NotFound("Délégation introuvable.", "Delegation not found.")
    delegation.end = max(min(delegation.end, now), delegation.start)
    audit.record(session, "delegation.ended", meta, delegate=delegation.delegate.username)
