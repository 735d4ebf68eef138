"""Questions the services and views ask about a snapshot without acting on it.

Inbox ("can I act?"), the action page ("on whose behalf?"), reminders ("who is missing, is it late?"):
answered with the same entitlement rules as :func:`circuits.engine.apply`, so a button is never shown
for an action the engine would refuse.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from circuits.entitlement import claims, fillable, open_claims
from circuits.model import Assignee, Directory, DossierStatus, Snapshot, StepState


def can_act(snapshot: Snapshot, actor: str, now: datetime, directory: Directory) -> bool:
    """Whether ``actor`` could approve or sign (whichever the active step asks) right now: the inbox test."""
    step = snapshot.active_step
    return (
        snapshot.status is DossierStatus.IN_PROGRESS and step is not None
        and bool(open_claims(step, actor, now, directory))
    )


def can_reject(snapshot: Snapshot, actor: str, now: datetime, directory: Directory) -> bool:
    """Whether ``actor`` could reject right now (any assignee of the active step, or their delegate)."""
    step = snapshot.active_step
    return (
        snapshot.status is DossierStatus.IN_PROGRESS and step is not None
        and bool(claims(step, actor, now, directory))
    )


def acting_for(snapshot: Snapshot, actor: str, now: datetime, directory: Directory) -> str | None:
    """Whom ``actor`` would stand in for if they approved or signed now; None in own right or if they can't act.

    Lets a view say "you are signing on behalf of P. Martin" before the act.
    """
    step = snapshot.active_step
    if snapshot.status is not DossierStatus.IN_PROGRESS or step is None:
        return None
    available = open_claims(step, actor, now, directory)
    return available[0].on_behalf_of if available else None


def waiting_for(snapshot: Snapshot, directory: Directory | None = None) -> frozenset[Assignee]:
    """Slots of the active step still unfilled (empty when nothing is active).

    With a directory, slots nobody can fill any more (every member of the desk already took part in the
    step) are left out, so an inbox or a reminder never promises a wait that cannot end.
    """
    step = snapshot.active_step
    if snapshot.status is not DossierStatus.IN_PROGRESS or step is None:
        return frozenset()
    missing = [slot for slot in step.assignees if slot not in step.satisfied]
    if directory is not None:
        missing = [slot for slot in missing if fillable(step, slot, directory)]
    return frozenset(missing)


def deadline_at(step: StepState) -> datetime | None:
    """When an active step becomes overdue, or None (no deadline, or not active)."""
    if step.deadline_days is None or step.activated_at is None:
        return None
    return step.activated_at + timedelta(days=step.deadline_days)


def overdue(snapshot: Snapshot, now: datetime) -> bool:
    """Whether the active step is past its deadline (for reminders and the inbox's red flag)."""
    step = snapshot.active_step
    if snapshot.status is not DossierStatus.IN_PROGRESS or step is None:
        return False
    deadline = deadline_at(step)
    return deadline is not None and now > deadline

