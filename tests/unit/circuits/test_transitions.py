"""Every row of the transitions table in ``circuits.engine``'s docstring, accepted and refused."""

from __future__ import annotations

import pytest

from circuits import (
    Approve,
    Assignee,
    ChangeAssignees,
    Directory,
    DossierStatus,
    Launch,
    Recall,
    Reject,
    Relaunch,
    Sign,
    Snapshot,
    StepStatus,
    TransitionRefused,
    apply,
)
from tests.unit.circuits.builders import INITIATOR, T0, at, draft, signature, visa

DIRECTORY = Directory()


def _snapshot_in(status: DossierStatus) -> Snapshot:
    """A two-step dossier (visa by ``viseur``, then signature by ``signataire``) in ``status``."""
    snap = draft(visa("user:viseur"), signature("user:signataire"), allow_assignee_change=True)
    steps = {
        DossierStatus.DRAFT: [],
        DossierStatus.IN_PROGRESS: [(Launch(), INITIATOR)],
        DossierStatus.COMPLETED: [(Launch(), INITIATOR), (Approve(), "viseur"), (Sign(), "signataire")],
        DossierStatus.REJECTED: [(Launch(), INITIATOR), (Reject("pièce manquante"), "viseur")],
        DossierStatus.RECALLED: [(Launch(), INITIATOR), (Recall(), INITIATOR)],
    }[status]
    for action, actor in steps:
        snap = apply(snap, action, actor, T0, DIRECTORY).snapshot
    assert snap.status is status
    return snap


ACTIONS = {
    "launch": (Launch(), INITIATOR),
    "approve": (Approve(), "viseur"),
    "sign": (Sign(), "viseur"),
    "reject": (Reject("motif"), "viseur"),
    "recall": (Recall(), INITIATOR),
    "relaunch": (Relaunch(), INITIATOR),
    "change_assignees": (ChangeAssignees(0, (Assignee.parse("desk:drh"),)), INITIATOR),
}

S = DossierStatus
# (status, action) -> resulting status, or the refusal code
TABLE = {
    (S.DRAFT, "launch"): S.IN_PROGRESS,
    (S.DRAFT, "approve"): "wrong_state",
    (S.DRAFT, "sign"): "wrong_state",
    (S.DRAFT, "reject"): "wrong_state",
    (S.DRAFT, "recall"): "wrong_state",
    (S.DRAFT, "relaunch"): "wrong_state",
    (S.DRAFT, "change_assignees"): S.DRAFT,
    (S.IN_PROGRESS, "launch"): "wrong_state",
    (S.IN_PROGRESS, "approve"): S.IN_PROGRESS,
    (S.IN_PROGRESS, "sign"): "wrong_kind",
    (S.IN_PROGRESS, "reject"): S.REJECTED,
    (S.IN_PROGRESS, "recall"): S.RECALLED,
    (S.IN_PROGRESS, "relaunch"): "wrong_state",
    (S.IN_PROGRESS, "change_assignees"): "wrong_state",
    **{(S.COMPLETED, action): "wrong_state" for action in ACTIONS},
    **{(S.REJECTED, action): "wrong_state" for action in ACTIONS if action != "relaunch"},
    (S.REJECTED, "relaunch"): S.IN_PROGRESS,
    **{(S.RECALLED, action): "wrong_state" for action in ACTIONS if action != "relaunch"},
    (S.RECALLED, "relaunch"): S.IN_PROGRESS,
}


def test_table_covers_every_status_and_action():
    assert set(TABLE) == {(status, action) for status in DossierStatus for action in ACTIONS}


@pytest.mark.parametrize(("status", "action"), sorted(TABLE), ids=lambda v: str(v))
def test_transition(status, action):
    before = _snapshot_in(status)
    act, actor = ACTIONS[action]
    expected = TABLE[status, action]
    if isinstance(expected, DossierStatus):
        outcome = apply(before, act, actor, at(hours=1), DIRECTORY)
        assert outcome.snapshot.status is expected
        assert outcome.snapshot.version == before.version + 1
        assert outcome.events
    else:
        with pytest.raises(TransitionRefused) as refused:
            apply(before, act, actor, at(hours=1), DIRECTORY)
        assert refused.value.code == expected
        assert refused.value.message_fr and refused.value.message_en


# Refusals that depend on who acts rather than on the dossier's status.
ACTOR_REFUSALS = [
    (S.DRAFT, Launch(), "viseur", "not_initiator"),
    (S.DRAFT, ChangeAssignees(0, (Assignee.parse("user:x"),)), "viseur", "not_initiator"),
    (S.IN_PROGRESS, Approve(), "signataire", "not_assignee"),
    (S.IN_PROGRESS, Approve(), INITIATOR, "not_assignee"),
    (S.IN_PROGRESS, Sign(), "inconnu", "not_assignee"),
    (S.IN_PROGRESS, Reject("motif"), "signataire", "not_assignee"),
    (S.IN_PROGRESS, Reject("   "), "viseur", "reason_required"),
    (S.IN_PROGRESS, Reject(""), "viseur", "reason_required"),
    (S.IN_PROGRESS, Recall(), "viseur", "not_initiator"),
    (S.REJECTED, Relaunch(), "viseur", "not_initiator"),
    (S.RECALLED, Relaunch(), "signataire", "not_initiator"),
]


@pytest.mark.parametrize(("status", "action", "actor", "code"), ACTOR_REFUSALS, ids=lambda v: repr(v))
def test_refused_for_this_actor(status, action, actor, code):
    with pytest.raises(TransitionRefused) as refused:
        apply(_snapshot_in(status), action, actor, at(hours=1), DIRECTORY)
    assert refused.value.code == code


def test_launch_activates_first_step_only():
    outcome = apply(_snapshot_in(S.DRAFT), Launch(), INITIATOR, T0, DIRECTORY)
    assert [step.status for step in outcome.snapshot.steps] == [StepStatus.ACTIVE, StepStatus.PENDING]
    assert outcome.snapshot.steps[0].activated_at == T0
    assert [type(e).__name__ for e in outcome.events] == ["DossierLaunched", "StepActivated"]


def test_recall_puts_active_step_back_to_pending():
    snap = apply(_snapshot_in(S.IN_PROGRESS), Recall(), INITIATOR, T0, DIRECTORY).snapshot
    assert [step.status for step in snap.steps] == [StepStatus.PENDING, StepStatus.PENDING]
    assert snap.active_step is None


def test_reject_leaves_later_steps_pending_and_records_who_and_why():
    outcome = apply(_snapshot_in(S.IN_PROGRESS), Reject("  pièce manquante \n"), "viseur", at(hours=2), DIRECTORY)
    snap = outcome.snapshot
    assert [step.status for step in snap.steps] == [StepStatus.REJECTED, StepStatus.PENDING]
    assert (snap.reject_reason, snap.rejected_by, snap.rejected_at) == ("pièce manquante", "viseur", at(hours=2))
    assert [type(e).__name__ for e in outcome.events] == ["DossierRejected"]


def test_refusal_messages_are_bilingual():
    with pytest.raises(TransitionRefused) as refused:
        apply(_snapshot_in(S.COMPLETED), Reject("x"), "viseur", T0, DIRECTORY)
    assert refused.value.message_fr == "Impossible de rejeter ce dossier : il est terminé."
    assert refused.value.message_en == "Cannot reject this dossier: it is completed."
    assert str(refused.value) == refused.value.message_fr
