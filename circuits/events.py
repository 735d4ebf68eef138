"""What the engine reports happened: one frozen dataclass per fact.

The service layer writes each event to the hash-chained audit trail and sends mail for :class:`StepActivated`;
history lives here, not in the snapshot (a relaunch clears the acts but the events of the first round remain).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from circuits.model import ActKind, Assignee, DossierStatus


@dataclass(frozen=True)
class DossierLaunched:
    """The initiator launched the dossier."""


@dataclass(frozen=True)
class StepActivated:
    """A step is now waiting for its assignees: mail them."""

    index: int
    """0-based step index."""
    assignees: tuple[Assignee, ...]
    """Who to notify (desks to be expanded by the service)."""
    deadline_at: datetime | None
    """When the step becomes overdue, if it has a deadline."""


@dataclass(frozen=True)
class StepActed:
    """One person approved or signed; the step may still wait for others."""

    index: int
    """0-based step index."""
    action: ActKind
    """``approve`` or ``sign``."""
    actor: str
    """Who acted."""
    on_behalf_of: str | None
    """Whom they stood in for, if acting as a delegate."""
    satisfies: Assignee
    """The slot filled."""


@dataclass(frozen=True)
class StepCompleted:
    """A step met its quorum."""

    index: int
    """0-based step index."""


@dataclass(frozen=True)
class DossierCompleted:
    """The last step is done: the circuit is over."""


@dataclass(frozen=True)
class DossierRejected:
    """An assignee rejected the dossier."""

    index: int
    """0-based index of the step where it was rejected."""
    actor: str
    """Who rejected."""
    reason: str
    """Why (stripped)."""
    on_behalf_of: str | None = None
    """Whom the rejecter stood in for, if acting as a delegate."""


@dataclass(frozen=True)
class DossierRecalled:
    """The initiator took the dossier back."""

    index: int
    """0-based index of the step that was active."""


@dataclass(frozen=True)
class DossierRelaunched:
    """The initiator restarted the circuit from its first step."""

    previous: DossierStatus
    """``rejected`` or ``recalled``."""


@dataclass(frozen=True)
class AssigneesChanged:
    """The initiator replaced a step's assignees in draft."""

    index: int
    """0-based step index."""
    before: tuple[Assignee, ...]
    """The previous assignees."""
    after: tuple[Assignee, ...]
    """The new assignees."""


Event = (
    DossierLaunched | StepActivated | StepActed | StepCompleted | DossierCompleted | DossierRejected
    | DossierRecalled | DossierRelaunched | AssigneesChanged
)
