"""Who may act, when a step is complete, delegation, and the helpers the services and views rely on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from circuits import (
    Approve,
    Assignee,
    ChangeAssignees,
    Delegation,
    DossierStatus,
    Launch,
    Recall,
    Reject,
    Relaunch,
    Sign,
    StepActed,
    StepActivated,
    StepStatus,
    Template,
    TransitionRefused,
    acting_for,
    apply,
    can_act,
    can_reject,
    overdue,
    waiting_for,
)
from tests.unit.circuits.builders import INITIATOR, T0, at, directory, draft, launched, signature, visa

DRH = directory({"drh": {"rh.lefevre", "rh.moreau"}, "finances": {"fi.roux", "fi.blanc"}})


def act(snap, action, actor, when=None, dirx=DRH):
    return apply(snap, action, actor, when or at(hours=1), dirx)


def refused(snap, action, actor, when=None, dirx=DRH) -> str:
    with pytest.raises(TransitionRefused) as error:
        apply(snap, action, actor, when or at(hours=1), dirx)
    return error.value.code


def a(text: str) -> Assignee:
    return Assignee.parse(text)


# --- quorums ---------------------------------------------------------------------------------------


def test_desk_is_satisfied_by_any_one_member():
    snap = launched(visa("desk:drh"), signature("user:dgs.martin"))
    outcome = act(snap, Approve(), "rh.moreau")
    assert outcome.snapshot.steps[0].status is StepStatus.DONE
    assert outcome.snapshot.steps[0].acts[0].satisfies == a("desk:drh")
    assert outcome.snapshot.active_step.index == 1


def test_other_desk_member_cannot_act_again_on_a_filled_desk_slot():
    snap = launched(visa("desk:drh", "user:dgs.martin"))
    snap = act(snap, Approve(), "rh.moreau").snapshot
    assert refused(snap, Approve(), "rh.lefevre") == "already_acted"
    assert snap.steps[0].status is StepStatus.ACTIVE


def test_all_quorum_with_users_and_desk_needs_every_slot():
    snap = launched(visa("user:dgs.martin", "desk:drh", "user:maire"))
    snap = act(snap, Approve(), "rh.lefevre").snapshot
    snap = act(snap, Approve(), "maire").snapshot
    assert snap.steps[0].status is StepStatus.ACTIVE
    assert waiting_for(snap, DRH) == {a("user:dgs.martin")}
    outcome = act(snap, Approve(), "dgs.martin")
    assert outcome.snapshot.status is DossierStatus.COMPLETED
    assert [type(e).__name__ for e in outcome.events] == ["StepActed", "StepCompleted", "DossierCompleted"]


def test_n_quorum_completes_with_n_distinct_slots():
    snap = launched(signature("user:maire", "user:adjoint", "desk:finances", quorum=2), visa("desk:drh"))
    first = act(snap, Sign(), "fi.roux")
    assert first.snapshot.steps[0].status is StepStatus.ACTIVE
    assert [type(e) for e in first.events] == [StepActed]
    second = act(first.snapshot, Sign(), "adjoint")
    assert second.snapshot.steps[0].status is StepStatus.DONE
    assert second.snapshot.active_step.index == 1
    assert isinstance(second.events[-1], StepActivated) and second.events[-1].index == 1


def test_same_person_cannot_act_twice_even_holding_two_slots():
    snap = launched(visa("user:rh.lefevre", "desk:drh"))
    snap = act(snap, Approve(), "rh.lefevre").snapshot
    assert snap.steps[0].acts[0].satisfies == a("user:rh.lefevre"), "own named slot is filled first"
    assert refused(snap, Approve(), "rh.lefevre") == "already_acted"
    done = act(snap, Approve(), "rh.moreau").snapshot
    assert done.status is DossierStatus.COMPLETED


def test_a_step_only_accepts_its_kind():
    assert refused(launched(visa("user:maire")), Sign(), "maire") == "wrong_kind"
    assert refused(launched(signature("user:maire")), Approve(), "maire") == "wrong_kind"


def test_stranger_is_refused_before_being_told_the_kind():
    assert refused(launched(signature("user:maire")), Approve(), "inconnu") == "not_assignee"


# --- delegation ------------------------------------------------------------------------------------

HOLIDAY = Delegation("dgs.martin", "dga.petit", at(days=1), at(days=8))


def test_delegate_acts_on_behalf_within_the_date_range():
    dirx = directory(delegations=[HOLIDAY])
    snap = launched(signature("user:dgs.martin", level="advanced"))
    assert acting_for(snap, "dga.petit", at(days=2), dirx) == "dgs.martin"
    outcome = act(snap, Sign(), "dga.petit", at(days=2), dirx)
    assert outcome.acted_for == "dgs.martin"
    recorded = outcome.snapshot.steps[0].acts[0]
    assert (recorded.actor, recorded.on_behalf_of, recorded.satisfies) == ("dga.petit", "dgs.martin", a("user:dgs.martin"))
    assert outcome.events[0] == StepActed(0, "sign", "dga.petit", "dgs.martin", a("user:dgs.martin"))


@pytest.mark.parametrize("when", [at(days=1, hours=-1), at(days=8), at(days=30)], ids=["before", "end", "after"])
def test_delegate_is_refused_outside_the_date_range(when):
    dirx = directory(delegations=[HOLIDAY])
    snap = launched(signature("user:dgs.martin"))
    assert not can_act(snap, "dga.petit", when, dirx)
    assert refused(snap, Sign(), "dga.petit", when, dirx) == "not_assignee"


def test_start_of_delegation_is_included():
    dirx = directory(delegations=[HOLIDAY])
    assert act(launched(signature("user:dgs.martin")), Sign(), "dga.petit", at(days=1), dirx).acted_for == "dgs.martin"


def test_delegate_of_a_desk_member_satisfies_the_desk():
    dirx = directory({"drh": {"rh.lefevre"}}, [Delegation("rh.lefevre", "stagiaire", T0, at(days=5))])
    outcome = act(launched(visa("desk:drh")), Approve(), "stagiaire", dirx=dirx)
    assert outcome.acted_for == "rh.lefevre"
    assert outcome.snapshot.steps[0].acts[0].satisfies == a("desk:drh")
    assert outcome.snapshot.status is DossierStatus.COMPLETED


def test_own_right_comes_before_delegation():
    dirx = directory(delegations=[Delegation("maire", "adjoint", T0, at(days=5))])
    snap = launched(signature("user:maire", "user:adjoint"))
    outcome = act(snap, Sign(), "adjoint", dirx=dirx)
    assert outcome.acted_for is None
    assert refused(outcome.snapshot, Sign(), "adjoint", dirx=dirx) == "already_acted"
    assert act(outcome.snapshot, Sign(), "maire", dirx=dirx).snapshot.status is DossierStatus.COMPLETED


def test_delegator_who_was_stood_in_for_cannot_act_again():
    dirx = directory(delegations=[HOLIDAY])
    snap = launched(signature("user:dgs.martin", "user:maire"))
    snap = act(snap, Sign(), "dga.petit", at(days=2), dirx).snapshot
    assert refused(snap, Sign(), "dgs.martin", at(days=2), dirx) == "already_acted"


def test_delegations_do_not_chain():
    dirx = directory(delegations=[HOLIDAY, Delegation("dga.petit", "secretaire", T0, at(days=9))])
    assert refused(launched(signature("user:dgs.martin")), Sign(), "secretaire", at(days=2), dirx) == "not_assignee"


def test_delegate_may_reject_on_behalf():
    dirx = directory(delegations=[HOLIDAY])
    outcome = act(launched(signature("user:dgs.martin")), Reject("hors budget"), "dga.petit", at(days=2), dirx)
    assert outcome.acted_for == "dgs.martin"
    assert (outcome.snapshot.rejected_by, outcome.snapshot.rejected_on_behalf_of) == ("dga.petit", "dgs.martin")


# --- recall, reject, relaunch ----------------------------------------------------------------------


def test_recall_refused_once_someone_acted_on_the_active_step():
    snap = launched(visa("user:maire", "user:adjoint"))
    snap = act(snap, Approve(), "maire").snapshot
    assert refused(snap, Recall(), INITIATOR) == "step_started"


def test_recall_allowed_on_a_later_step_nobody_has_touched():
    snap = launched(visa("user:maire"), signature("user:dgs.martin"))
    snap = act(snap, Approve(), "maire").snapshot
    outcome = act(snap, Recall(), INITIATOR)
    assert [s.status for s in outcome.snapshot.steps] == [StepStatus.DONE, StepStatus.PENDING]
    assert outcome.events[0].index == 1


def test_reject_requires_a_reason():
    snap = launched(visa("desk:drh"))
    for reason in ("", "  \n\t"):
        assert refused(snap, Reject(reason), "rh.lefevre") == "reason_required"


def test_reject_allowed_for_a_desk_member_even_after_a_colleague_acted():
    snap = launched(visa("desk:drh", "user:maire"))
    snap = act(snap, Approve(), "rh.lefevre").snapshot
    assert can_reject(snap, "rh.moreau", at(hours=1), DRH)
    assert act(snap, Reject("non"), "rh.moreau").snapshot.status is DossierStatus.REJECTED


def test_relaunch_resets_every_step():
    snap = launched(visa("user:maire"), signature("user:dgs.martin"))
    snap = act(snap, Approve(), "maire").snapshot
    snap = act(snap, Reject("montant erroné"), "dgs.martin").snapshot
    outcome = act(snap, Relaunch(), INITIATOR, at(days=3))
    relaunched = outcome.snapshot
    assert relaunched.status is DossierStatus.IN_PROGRESS
    assert [s.status for s in relaunched.steps] == [StepStatus.ACTIVE, StepStatus.PENDING]
    assert all(step.acts == () for step in relaunched.steps)
    assert relaunched.steps[0].activated_at == at(days=3)
    assert relaunched.steps[1].completed_at is None
    assert (relaunched.reject_reason, relaunched.rejected_by, relaunched.rejected_at) == (None, None, None)
    assert outcome.events[0].previous is DossierStatus.REJECTED
    assert act(relaunched, Approve(), "maire").snapshot.active_step.index == 1, "the same people act again"


def test_version_increments_on_each_accepted_action():
    snap = draft(visa("user:maire"))
    versions = [snap.version]
    for action, actor in [(Launch(), INITIATOR), (Recall(), INITIATOR), (Relaunch(), INITIATOR), (Approve(), "maire")]:
        snap = act(snap, action, actor).snapshot
        versions.append(snap.version)
    assert versions == [0, 1, 2, 3, 4]


# --- changing assignees in draft -------------------------------------------------------------------


def test_change_assignees_when_the_type_allows_it():
    snap = draft(visa("desk:drh"), signature("user:dgs.martin"), allow_assignee_change=True)
    outcome = act(snap, ChangeAssignees(1, (a("user:maire"),)), INITIATOR)
    assert outcome.snapshot.steps[1].assignees == (a("user:maire"),)
    assert outcome.events[0].before == (a("user:dgs.martin"),)


@pytest.mark.parametrize(
    ("allow", "change", "code"),
    [
        (False, ChangeAssignees(0, (Assignee.parse("user:maire"),)), "not_allowed"),
        (True, ChangeAssignees(2, (Assignee.parse("user:maire"),)), "no_such_step"),
        (True, ChangeAssignees(-1, (Assignee.parse("user:maire"),)), "no_such_step"),
        (True, ChangeAssignees(0, ()), "invalid_assignees"),
        (True, ChangeAssignees(0, (Assignee.parse("user:a"), Assignee.parse("user:a"))), "invalid_assignees"),
        (True, ChangeAssignees(1, (Assignee.parse("user:a"),)), "invalid_assignees"),  # quorum 2 no longer fits
    ],
)
def test_change_assignees_refused(allow, change, code):
    snap = draft(visa("desk:drh"), signature("user:x", "user:y", quorum=2), allow_assignee_change=allow)
    assert refused(snap, change, INITIATOR) == code


def test_snapshot_is_a_copy_of_the_template():
    steps = [visa("desk:drh")]
    template = Template(tuple(steps))
    snap = draft(*template.steps)
    steps.append(signature("user:x"))
    assert len(snap.steps) == 1 and snap.to_template() == template


# --- helpers ---------------------------------------------------------------------------------------


def test_can_act_and_waiting_for():
    snap = launched(visa("desk:drh", "user:maire"))
    assert can_act(snap, "rh.lefevre", at(hours=1), DRH)
    assert not can_act(snap, "dgs.martin", at(hours=1), DRH)
    assert waiting_for(snap, DRH) == {a("desk:drh"), a("user:maire")}
    snap = act(snap, Approve(), "rh.lefevre").snapshot
    assert not can_act(snap, "rh.moreau", at(hours=1), DRH)
    assert waiting_for(snap) == {a("user:maire")}
    assert waiting_for(draft(visa("user:maire"))) == frozenset()


def test_waiting_for_leaves_out_slots_nobody_can_fill():
    snap = launched(visa("user:rh.lefevre", "desk:solo"))
    dirx = directory({"solo": {"rh.lefevre"}, "vide": set()})
    snap = act(snap, Approve(), "rh.lefevre", dirx=dirx).snapshot
    assert waiting_for(snap) == {a("desk:solo")}
    assert waiting_for(snap, dirx) == frozenset()


def test_overdue_after_the_deadline_only():
    snap = launched(visa("user:maire", deadline_days=3))
    assert not overdue(snap, at(days=3))
    assert overdue(snap, at(days=3, hours=1))
    assert not overdue(launched(visa("user:maire")), at(days=300))
    activated = apply(draft(visa("user:maire", deadline_days=3)), Launch(), INITIATOR, T0, DRH).events[-1]
    assert activated.deadline_at == at(days=3)


def test_not_overdue_when_not_in_progress():
    snap = launched(visa("user:maire", deadline_days=1))
    recalled = act(snap, Recall(), INITIATOR).snapshot
    assert not overdue(recalled, at(days=10))


def test_naive_datetime_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone"):
        apply(draft(visa("user:maire")), Launch(), INITIATOR, T0.replace(tzinfo=None), DRH)


def test_in_progress_snapshot_without_active_step_is_reported_as_corrupt():
    snap = launched(visa("user:maire"))
    broken = replace(snap, steps=(replace(snap.steps[0], status=StepStatus.PENDING),))
    with pytest.raises(ValueError, match="corrupt"):
        apply(broken, Approve(), "maire", at(hours=1), DRH)
