"""Property-based: no sequence of actions, by anyone, takes a circuit to an invalid state.

Random templates and directories, then random actions by random people (assignees, desk members,
delegates, strangers, the initiator) at increasing times. A small reference model written independently of
the engine predicts, for each attempt, whether it must be accepted or which code refuses it; after every
accepted action the structural invariants are checked and the snapshot must survive a JSON round trip.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from circuits import (
    ALL,
    Approve,
    Assignee,
    AssigneeKind,
    ChangeAssignees,
    Directory,
    DossierStatus,
    Launch,
    Recall,
    Reject,
    Relaunch,
    Sign,
    Snapshot,
    StepKind,
    StepState,
    StepStatus,
    TransitionRefused,
    apply,
    snapshot_from_dict,
    snapshot_to_dict,
)
from tests.unit.circuits.builders import T0
from tests.unit.circuits.strategies import DELEGATE_ONLY, STRANGER, USERS, directories, slots, templates

# --- reference model -------------------------------------------------------------------------------


def holds(slot: Assignee, person: str | None, directory: Directory) -> bool:
    if slot.kind is AssigneeKind.USER:
        return slot.ref == person
    return person in directory.desks.get(slot.ref, frozenset())


def entitlements(step: StepState, actor: str, now: datetime, directory: Directory) -> list[tuple[Assignee, str | None]]:
    """(slot, on behalf of) pairs open to the actor: own right, desk membership, or a delegation valid now."""
    found = []
    for slot in step.assignees:
        if holds(slot, actor, directory):
            found.append((slot, None))
        for d in directory.delegations:
            if d.delegate == actor and d.start <= now < d.end and holds(slot, d.delegator, directory):
                found.append((slot, d.delegator))
    return found


def quorum_met(step: StepState) -> bool:
    needed = len(step.assignees) if step.quorum == ALL else step.quorum
    return len({act.satisfies for act in step.acts}) >= needed


def people_involved(step: StepState) -> set[str]:
    return {a.actor for a in step.acts} | {a.on_behalf_of for a in step.acts if a.on_behalf_of}


def expected(snap: Snapshot, action, actor: str, now: datetime, directory: Directory) -> str | None:
    """The refusal code the engine must give, or None if it must accept."""
    status, step = snap.status, snap.active_step
    match action:
        case Launch():
            return "wrong_state" if status != DossierStatus.DRAFT else (
                "not_initiator" if actor != snap.initiator else None)
        case Relaunch():
            return "wrong_state" if status not in (DossierStatus.REJECTED, DossierStatus.RECALLED) else (
                "not_initiator" if actor != snap.initiator else None)
        case Recall():
            if status != DossierStatus.IN_PROGRESS:
                return "wrong_state"
            return "not_initiator" if actor != snap.initiator else ("step_started" if step.acts else None)
        case ChangeAssignees(step_index=i, assignees=new):
            if status != DossierStatus.DRAFT:
                return "wrong_state"
            if actor != snap.initiator:
                return "not_initiator"
            if not snap.allow_assignee_change:
                return "not_allowed"
            if not 0 <= i < len(snap.steps):
                return "no_such_step"
            quorum = snap.steps[i].quorum
            fits = new and len(set(new)) == len(new) and (quorum == ALL or quorum <= len(new))
            return None if fits else "invalid_assignees"
        case Reject(reason=reason):
            if status != DossierStatus.IN_PROGRESS:
                return "wrong_state"
            if not entitlements(step, actor, now, directory):
                return "not_assignee"
            return None if reason.strip() else "reason_required"
        case Approve() | Sign():
            if status != DossierStatus.IN_PROGRESS:
                return "wrong_state"
            claims = entitlements(step, actor, now, directory)
            if not claims:
                return "not_assignee"
            if isinstance(action, Approve) != (step.kind is StepKind.VISA):
                return "wrong_kind"
            done, filled = people_involved(step), step.satisfied
            open_ = [c for c in claims if c[0] not in filled and actor not in done and c[1] not in done]
            return None if open_ else "already_acted"
    raise AssertionError(action)


# --- invariants ------------------------------------------------------------------------------------


def check_invariants(snap: Snapshot, directory: Directory) -> None:
    statuses = [step.status for step in snap.steps]
    active = [i for i, s in enumerate(statuses) if s is StepStatus.ACTIVE]
    assert len(active) <= 1
    assert (len(active) == 1) == (snap.status is DossierStatus.IN_PROGRESS)
    assert StepStatus.SKIPPED not in statuses
    if active:
        k = active[0]
        assert all(s is StepStatus.DONE for s in statuses[:k])
        assert all(s is StepStatus.PENDING for s in statuses[k + 1:])
        assert not quorum_met(snap.steps[k]), "a step whose quorum is met must have moved on"
    match snap.status:
        case DossierStatus.DRAFT:
            assert all(s is StepStatus.PENDING for s in statuses)
        case DossierStatus.COMPLETED:
            assert all(s is StepStatus.DONE for s in statuses)
        case DossierStatus.REJECTED:
            assert statuses.count(StepStatus.REJECTED) == 1
            k = statuses.index(StepStatus.REJECTED)
            assert all(s is StepStatus.DONE for s in statuses[:k])
            assert all(s is StepStatus.PENDING for s in statuses[k + 1:])
            assert snap.reject_reason and snap.reject_reason == snap.reject_reason.strip()
            assert snap.rejected_by is not None
        case DossierStatus.RECALLED:
            assert all(s in (StepStatus.DONE, StepStatus.PENDING) for s in statuses)
            assert statuses == sorted(statuses, key=lambda s: s is StepStatus.PENDING), "done steps, then pending"
    if snap.status is not DossierStatus.REJECTED:
        assert snap.reject_reason is snap.rejected_by is snap.rejected_at is None
    for step in snap.steps:
        if step.status is StepStatus.PENDING:
            assert not step.acts and step.activated_at is None
        if step.status is StepStatus.DONE:
            assert quorum_met(step) and step.completed_at is not None
        slots_filled = [act.satisfies for act in step.acts]
        assert len(set(slots_filled)) == len(slots_filled), "one act per slot"
        persons = [act.actor for act in step.acts] + [act.on_behalf_of for act in step.acts if act.on_behalf_of]
        assert len(set(persons)) == len(persons), "one person counts once per step"
        for act in step.acts:
            assert act.satisfies in step.assignees
            assert act.action == ("approve" if step.kind is StepKind.VISA else "sign")
            assert (act.satisfies, act.on_behalf_of) in entitlements(step, act.actor, act.at, directory), (
                f"{act} was not entitled at the time"
            )


# --- the property ----------------------------------------------------------------------------------

reasons = st.sampled_from(["", "   ", "motif", "  pièce manquante\n"])
actions = st.one_of(
    st.sampled_from([Launch(), Approve(), Approve(), Sign(), Sign(), Recall(), Relaunch()]),
    st.builds(Reject, reasons),
    st.builds(ChangeAssignees, st.integers(-1, 4), st.lists(slots, max_size=3).map(tuple)),
)


def likely_actions(snap: Snapshot) -> list:
    """Actions that make sense in the current status, so that random runs get somewhere."""
    step = snap.active_step
    match snap.status:
        case DossierStatus.DRAFT:
            return [Launch()]
        case DossierStatus.IN_PROGRESS:
            return [Approve() if step.kind is StepKind.VISA else Sign()] * 4 + [Reject("motif"), Recall()]
        case DossierStatus.REJECTED | DossierStatus.RECALLED:
            return [Relaunch()]
    return [Approve()]


def likely_actors(snap: Snapshot, directory: Directory) -> list[str]:
    """People with a stake in the active step, and the initiator."""
    step = snap.active_step
    if step is None:
        return [snap.initiator]
    holders = {u for u in (*USERS, DELEGATE_ONLY) if any(holds(slot, u, directory) for slot in step.assignees)}
    delegates = {d.delegate for d in directory.delegations if d.delegator in holders}
    return sorted(holders | delegates | {snap.initiator})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=templates(names=st.none()),
    directory=directories(),
    initiator=st.sampled_from(["init", "u0"]),
    allow_change=st.booleans(),
    data=st.data(),
)
def test_no_sequence_of_actions_breaks_the_circuit(template, directory, initiator, allow_change, data):
    snap = Snapshot.from_template(template, initiator, allow_assignee_change=allow_change)
    everyone = [*USERS, DELEGATE_ONLY, STRANGER, "init"]
    now = T0
    for _ in range(data.draw(st.integers(1, 40), label="length")):
        likely = st.sampled_from(likely_actions(snap))
        action = data.draw(st.one_of(likely, likely, actions), label="action")
        stakeholders = st.sampled_from(likely_actors(snap, directory))
        actor = data.draw(st.one_of(stakeholders, stakeholders, st.sampled_from(everyone)), label="actor")
        now += timedelta(hours=data.draw(st.integers(0, 36), label="hours later"))
        code = expected(snap, action, actor, now, directory)
        try:
            outcome = apply(snap, action, actor, now, directory)
        except TransitionRefused as refused:
            assert refused.code == code, f"{action} by {actor}: refused {refused.code}, expected {code}"
            assert refused.message_fr and refused.message_en
            continue
        assert code is None, f"{action} by {actor} accepted, expected refusal {code}"
        assert outcome.snapshot.version == snap.version + 1
        assert outcome.events
        if isinstance(action, Approve | Sign):
            assert outcome.acted_for == outcome.events[0].on_behalf_of
        snap = outcome.snapshot
        if snap.status is DossierStatus.COMPLETED:
            event("completed")
        check_invariants(snap, directory)
        assert snapshot_from_dict(json.loads(json.dumps(snapshot_to_dict(snap)))) == snap
    event(f"ended {snap.status}")
