"""The circuit state machine: ``apply(snapshot, action, actor, now, directory) -> Outcome``.

Pure: no clock, no database, no mail. The service layer loads the snapshot and a :class:`Directory`,
calls :func:`apply`, stores the new snapshot (its ``version`` is one more: optimistic locking), writes the
events to the audit trail and sends mail for each :class:`StepActivated`. A refusal raises
:class:`TransitionRefused` with a stable code; an action is never silently ignored.

Transitions (dossier status, action) → result; every cell not listed raises ``wrong_state``, and nothing
at all is accepted on a completed dossier:

====================  ==================  ============================================================
status                action              result (refusals checked in this order)
====================  ==================  ============================================================
draft                 Launch              in_progress, step 1 active (``not_initiator``)
draft                 ChangeAssignees     draft, step's assignees replaced (``not_initiator``,
                                          ``not_allowed``, ``no_such_step``, ``invalid_assignees``)
in_progress           Approve             act recorded on the visa step; step done when its quorum is
                                          met, then the next step active or the dossier completed
                                          (``not_assignee``, ``wrong_kind``, ``already_acted``)
in_progress           Sign                same, on a signature step
in_progress           Reject(reason)      rejected, active step rejected, later steps stay pending
                                          (``not_assignee``, ``reason_required``)
in_progress           Recall              recalled, active step back to pending (``not_initiator``,
                                          ``step_started`` once anyone has acted on the active step)
rejected, recalled    Relaunch            in_progress, every step reset (acts cleared), step 1 active
                                          (``not_initiator``); history lives in the events
====================  ==================  ============================================================

Who may act on the active step: the users it names, the members of the desks it names (one member
fills the desk's slot), and anyone holding a delegation, valid at ``now``, from one of those people; see
:mod:`circuits.entitlement` for the "one person counts once per step" rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from circuits.entitlement import claims, involved, open_claims
from circuits.errors import TemplateError, TransitionRefused
from circuits.events import (
    AssigneesChanged,
    DossierCompleted,
    DossierLaunched,
    DossierRecalled,
    DossierRejected,
    DossierRelaunched,
    Event,
    StepActed,
    StepActivated,
    StepCompleted,
)
from circuits.model import (
    Act,
    ActKind,
    Assignee,
    Directory,
    DossierStatus,
    Snapshot,
    StepKind,
    StepState,
    StepStatus,
)
from circuits.queries import acting_for, can_act, can_reject, deadline_at, overdue, waiting_for
from circuits.validation import check_assignees

__all__ = [  # events and queries live in their own modules; importing them from here works too
    "Action", "Approve", "AssigneesChanged", "ChangeAssignees", "DossierCompleted", "DossierLaunched",
    "DossierRecalled", "DossierRejected", "DossierRelaunched", "Event", "Launch", "Outcome", "Recall", "Reject",
    "Relaunch", "Sign", "StepActed", "StepActivated", "StepCompleted", "acting_for", "apply", "can_act",
    "can_reject", "deadline_at", "overdue", "waiting_for",
]

# --- actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """Send a draft dossier into its circuit (initiator)."""


@dataclass(frozen=True)
class Approve:
    """Give a visa on the active visa step."""


@dataclass(frozen=True)
class Sign:
    """Record a signature on the active signature step (the service has already signed the PDF)."""


@dataclass(frozen=True)
class Reject:
    """Stop the dossier at the active step."""

    reason: str
    """Why; required, stored stripped."""


@dataclass(frozen=True)
class Recall:
    """Take the dossier back before anyone acts on the active step (initiator)."""


@dataclass(frozen=True)
class Relaunch:
    """Restart a rejected or recalled dossier from its first step (initiator)."""


@dataclass(frozen=True)
class ChangeAssignees:
    """Replace a step's assignees in draft, when ``Snapshot.allow_assignee_change`` (initiator)."""

    step_index: int
    """0-based index of the step."""
    assignees: tuple[Assignee, ...]
    """The new assignees; the step's quorum must still fit them."""


Action = Launch | Approve | Sign | Reject | Recall | Relaunch | ChangeAssignees



@dataclass(frozen=True)
class Outcome:
    """What an accepted action produced."""

    snapshot: Snapshot
    """The new snapshot (version + 1)."""
    events: tuple[Event, ...]
    """What happened, in order, for the audit trail and notifications."""
    acted_for: str | None
    """Whom the actor stood in for through a delegation (approve, sign, reject), or None."""


# --- apply -----------------------------------------------------------------------------------------


def apply(snapshot: Snapshot, action: Action, actor: str, now: datetime, directory: Directory) -> Outcome:
    """Return the outcome of ``actor`` doing ``action`` at ``now``, or raise :class:`TransitionRefused`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    match action:
        case Launch():
            snap, events, acted_for = _launch(snapshot, actor, now)
        case Approve() | Sign():
            snap, events, acted_for = _act(snapshot, action, actor, now, directory)
        case Reject(reason=reason):
            snap, events, acted_for = _reject(snapshot, reason, actor, now, directory)
        case Recall():
            snap, events, acted_for = _recall(snapshot, actor)
        case Relaunch():
            snap, events, acted_for = _relaunch(snapshot, actor, now)
        case ChangeAssignees():
            snap, events, acted_for = _change_assignees(snapshot, action, actor)
        case _:
            raise TypeError(f"not a circuit action: {action!r}")
    return Outcome(replace(snap, version=snapshot.version + 1), events, acted_for)


_Result = tuple[Snapshot, tuple[Event, ...], str | None]


def _launch(snapshot: Snapshot, actor: str, now: datetime) -> _Result:
    _require_status(snapshot, "launch", DossierStatus.DRAFT)
    _require_initiator(snapshot, actor, "launch")
    snap, activated = _start(snapshot, now)
    return snap, (DossierLaunched(), activated), None


def _relaunch(snapshot: Snapshot, actor: str, now: datetime) -> _Result:
    _require_status(snapshot, "relaunch", DossierStatus.REJECTED, DossierStatus.RECALLED)
    _require_initiator(snapshot, actor, "relaunch")
    snap, activated = _start(snapshot, now)
    return snap, (DossierRelaunched(snapshot.status), activated), None


def _start(snapshot: Snapshot, now: datetime) -> tuple[Snapshot, StepActivated]:
    """Every step pending and empty, the first one active: the common ground of launch and relaunch."""
    steps = tuple(
        replace(step, status=StepStatus.PENDING, acts=(), activated_at=None, completed_at=None)
        for step in snapshot.steps
    )
    first = _activate(steps[0], now)
    snap = replace(
        snapshot,
        status=DossierStatus.IN_PROGRESS,
        steps=(first, *steps[1:]),
        reject_reason=None,
        rejected_by=None,
        rejected_on_behalf_of=None,
        rejected_at=None,
    )
    return snap, _activated_event(first)


def _act(snapshot: Snapshot, action: Approve | Sign, actor: str, now: datetime, directory: Directory) -> _Result:
    verb = "approve" if isinstance(action, Approve) else "sign"
    _require_status(snapshot, verb, DossierStatus.IN_PROGRESS)
    step = _active(snapshot)
    if not claims(step, actor, now, directory):
        raise _not_assignee(step)
    expected = ActKind.for_step(step.kind)
    if verb != expected:
        raise _wrong_kind(step)
    available = open_claims(step, actor, now, directory)
    if not available:
        raise _already_acted(step, actor, now, directory)
    claim = available[0]
    act = Act(actor=actor, on_behalf_of=claim.on_behalf_of, action=expected, at=now, satisfies=claim.slot)
    step = replace(step, acts=(*step.acts, act))
    events: list[Event] = [StepActed(step.index, expected, actor, claim.on_behalf_of, claim.slot)]
    steps = list(snapshot.steps)
    status = snapshot.status
    if step.quorum_met:
        step = replace(step, status=StepStatus.DONE, completed_at=now)
        events.append(StepCompleted(step.index))
        if step.index + 1 < len(steps):
            following = _activate(steps[step.index + 1], now)
            steps[following.index] = following
            events.append(_activated_event(following))
        else:
            status = DossierStatus.COMPLETED
            events.append(DossierCompleted())
    steps[step.index] = step
    return replace(snapshot, status=status, steps=tuple(steps)), tuple(events), claim.on_behalf_of


def _reject(snapshot: Snapshot, reason: str, actor: str, now: datetime, directory: Directory) -> _Result:
    _require_status(snapshot, "reject", DossierStatus.IN_PROGRESS)
    step = _active(snapshot)
    entitled = claims(step, actor, now, directory)
    if not entitled:
        raise _not_assignee(step)
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise TransitionRefused(
            "reason_required", "Un motif est obligatoire pour rejeter le dossier.", "A reason is required to reject."
        )
    on_behalf_of = entitled[0].on_behalf_of
    steps = list(snapshot.steps)
    steps[step.index] = replace(step, status=StepStatus.REJECTED, completed_at=now)
    snap = replace(
        snapshot,
        status=DossierStatus.REJECTED,
        steps=tuple(steps),
        reject_reason=reason,
        rejected_by=actor,
        rejected_on_behalf_of=on_behalf_of,
        rejected_at=now,
    )
    return snap, (DossierRejected(step.index, actor, reason, on_behalf_of),), on_behalf_of


def _recall(snapshot: Snapshot, actor: str) -> _Result:
    _require_status(snapshot, "recall", DossierStatus.IN_PROGRESS)
    _require_initiator(snapshot, actor, "recall")
    step = _active(snapshot)
    if step.acts:
        raise TransitionRefused(
            "step_started",
            f"Impossible de retirer le dossier : quelqu'un a déjà agi sur l'étape en cours (étape {step.index + 1}).",
            f"Cannot recall the dossier: someone has already acted on the current step (step {step.index + 1}).",
        )
    steps = list(snapshot.steps)
    steps[step.index] = replace(step, status=StepStatus.PENDING, activated_at=None)
    snap = replace(snapshot, status=DossierStatus.RECALLED, steps=tuple(steps))
    return snap, (DossierRecalled(step.index),), None


def _change_assignees(snapshot: Snapshot, action: ChangeAssignees, actor: str) -> _Result:
    _require_status(snapshot, "change_assignees", DossierStatus.DRAFT)
    _require_initiator(snapshot, actor, "change_assignees")
    if not snapshot.allow_assignee_change:
        raise TransitionRefused(
            "not_allowed",
            "Le type de document ne permet pas de modifier les intervenants.",
            "This document type does not allow changing the assignees.",
        )
    index = action.step_index
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(snapshot.steps):
        raise TransitionRefused(
            "no_such_step", f"Le circuit n'a pas d'étape {index!r} (indice).", f"The circuit has no step {index!r} (index)."
        )
    step = snapshot.steps[index]
    assignees = tuple(action.assignees)
    try:
        check_assignees(assignees, step.quorum, index)
    except TemplateError as error:
        raise TransitionRefused("invalid_assignees", error.message_fr, error.message_en) from error
    steps = list(snapshot.steps)
    steps[index] = replace(step, assignees=assignees)
    return replace(snapshot, steps=tuple(steps)), (AssigneesChanged(index, step.assignees, assignees),), None


# --- internals -------------------------------------------------------------------------------------

_VERBS = {
    "launch": ("lancer", "launch"),
    "approve": ("viser", "approve"),
    "sign": ("signer", "sign"),
    "reject": ("rejeter", "reject"),
    "recall": ("retirer", "recall"),
    "relaunch": ("relancer", "relaunch"),
    "change_assignees": ("modifier les intervenants de", "change the assignees of"),
}

_STATUS_FR = {
    DossierStatus.DRAFT: "en brouillon",
    DossierStatus.IN_PROGRESS: "en cours",
    DossierStatus.COMPLETED: "terminé",
    DossierStatus.REJECTED: "rejeté",
    DossierStatus.RECALLED: "retiré",
}

_STATUS_EN = {
    DossierStatus.DRAFT: "a draft",
    DossierStatus.IN_PROGRESS: "in progress",
    DossierStatus.COMPLETED: "completed",
    DossierStatus.REJECTED: "rejected",
    DossierStatus.RECALLED: "recalled",
}


def _require_status(snapshot: Snapshot, verb: str, *allowed: DossierStatus) -> None:
    if snapshot.status not in allowed:
        fr, en = _VERBS[verb]
        raise TransitionRefused(
            "wrong_state",
            f"Impossible de {fr} ce dossier : il est {_STATUS_FR[snapshot.status]}.",
            f"Cannot {en} this dossier: it is {_STATUS_EN[snapshot.status]}.",
        )


def _require_initiator(snapshot: Snapshot, actor: str, verb: str) -> None:
    if actor != snapshot.initiator:
        fr, en = _VERBS[verb]
        raise TransitionRefused(
            "not_initiator",
            f"Seul l'initiateur du dossier ({snapshot.initiator}) peut le {fr}."
            if verb != "change_assignees"
            else f"Seul l'initiateur du dossier ({snapshot.initiator}) peut {fr} ce dossier.",
            f"Only the dossier's initiator ({snapshot.initiator}) may {en} it.",
        )


def _active(snapshot: Snapshot) -> StepState:
    step = snapshot.active_step
    if step is None:  # an in-progress snapshot always has one; a hand-edited one may not
        raise ValueError("corrupt snapshot: in progress without an active step")
    return step


def _activate(step: StepState, now: datetime) -> StepState:
    return replace(step, status=StepStatus.ACTIVE, acts=(), activated_at=now, completed_at=None)


def _activated_event(step: StepState) -> StepActivated:
    return StepActivated(step.index, step.assignees, deadline_at(step))


def _not_assignee(step: StepState) -> TransitionRefused:
    n = step.index + 1
    return TransitionRefused(
        "not_assignee",
        f"Vous n'êtes pas intervenant de l'étape en cours (étape {n}), ni délégué de l'un d'eux.",
        f"You are not an assignee of the current step (step {n}), nor the delegate of one.",
    )


def _wrong_kind(step: StepState) -> TransitionRefused:
    n = step.index + 1
    if step.kind is StepKind.SIGNATURE:
        return TransitionRefused(
            "wrong_kind",
            f"L'étape {n} est une étape de signature : elle se signe, elle ne se vise pas.",
            f"Step {n} is a signature step: it must be signed, not approved.",
        )
    return TransitionRefused(
        "wrong_kind",
        f"L'étape {n} est une étape de visa : elle se vise, elle ne se signe pas.",
        f"Step {n} is a visa step: it must be approved, not signed.",
    )


def _already_acted(step: StepState, actor: str, now: datetime, directory: Directory) -> TransitionRefused:
    n = step.index + 1
    if actor in involved(step):
        return TransitionRefused(
            "already_acted",
            f"Vous avez déjà agi sur l'étape {n} (directement ou par délégation).",
            f"You have already acted on step {n} (yourself or through a delegate).",
        )
    slots = ", ".join(sorted({str(claim.slot) for claim in claims(step, actor, now, directory)}))
    return TransitionRefused(
        "already_acted",
        f"L'étape {n} a déjà reçu l'action attendue de {slots}.",
        f"Step {n} already has the act expected from {slots}.",
    )
