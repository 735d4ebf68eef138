"""Who may fill which assignee slot of a step: in own right, through a desk, or as a delegate.

One person counts once per step: whoever has acted on a step, or been stood in for on it, cannot act
(or be stood in for) again on that step, and each act fills exactly one slot. That keeps "all" and N
quorums meaning distinct people, which is what an approval circuit promises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from circuits.model import Assignee, AssigneeKind, Directory, StepState


@dataclass(frozen=True)
class Claim:
    """A way for an actor to fill one slot of a step."""

    slot: Assignee
    """The slot that would be filled."""
    on_behalf_of: str | None
    """The delegator the actor would stand in for, or None when the actor holds the slot in own right."""


def holds(slot: Assignee, username: str, directory: Directory) -> bool:
    """Whether ``username`` holds ``slot`` in own right (is that user, or a member of that desk)."""
    if slot.kind is AssigneeKind.USER:
        return slot.ref == username
    return username in directory.members(slot.ref)


def claims(step: StepState, actor: str, now: datetime, directory: Directory) -> tuple[Claim, ...]:
    """Every slot of ``step`` that ``actor`` is entitled to, filled or not, best first.

    Own right comes before delegation (a delegate acts for someone else only when they cannot act for
    themselves), and named-user slots before desk slots (a desk has other members who can fill it).
    """
    def by_user_first(slots: list[Assignee]) -> list[Assignee]:
        return sorted(slots, key=lambda slot: slot.kind is not AssigneeKind.USER)

    own = [Claim(slot, None) for slot in by_user_first([s for s in step.assignees if holds(s, actor, directory)])]
    delegated = [
        Claim(slot, delegator)
        for delegator in directory.delegators_of(actor, now)
        for slot in by_user_first([s for s in step.assignees if holds(s, delegator, directory)])
    ]
    return tuple(own + delegated)


def involved(step: StepState) -> frozenset[str]:
    """People who have acted on the step or been stood in for on it."""
    people = {act.actor for act in step.acts}
    people.update(act.on_behalf_of for act in step.acts if act.on_behalf_of is not None)
    return frozenset(people)


def open_claims(step: StepState, actor: str, now: datetime, directory: Directory) -> tuple[Claim, ...]:
    """The claims ``actor`` could still exercise on ``step``: unfilled slots, nobody counted twice."""
    done = involved(step)
    if actor in done:
        return ()
    filled = step.satisfied
    return tuple(
        claim for claim in claims(step, actor, now, directory)
        if claim.slot not in filled and claim.on_behalf_of not in done
    )


def fillable(step: StepState, slot: Assignee, directory: Directory) -> bool:
    """Whether someone could still fill ``slot``: a holder who has not yet taken part in the step.

    Delegates only ever stand in for holders, so looking at holders is enough.
    """
    if slot in step.satisfied:
        return False
    done = involved(step)
    if slot.kind is AssigneeKind.USER:
        return slot.ref not in done
    return bool(directory.members(slot.ref) - done)
