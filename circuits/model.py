"""The circuit's vocabulary: templates, the snapshot of one dossier's circuit, and who may act for whom.

Everything is a frozen dataclass or a ``str`` enum so that a snapshot can be compared, hashed into an
audit trail, stored as JSON and handed between threads without anyone changing it under our feet; the
engine produces new snapshots instead of mutating old ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

ALL: Literal["all"] = "all"
"""The quorum meaning "every listed assignee"."""

Quorum = Literal["all"] | int


class StepKind(StrEnum):
    """What a step asks of its assignees: an approval (visa) or a signature on the documents."""

    VISA = "visa"
    SIGNATURE = "signature"


class ActKind(StrEnum):
    """What an assignee does to move a step on: approve a visa step, sign a signature step."""

    APPROVE = "approve"
    SIGN = "sign"

    @classmethod
    def for_step(cls, kind: StepKind) -> ActKind:
        """The act a step of this kind expects."""
        return cls.APPROVE if kind is StepKind.VISA else cls.SIGN


class Level(StrEnum):
    """Signature level, ordered simple < advanced < qualified.

    The comparison operators are overridden because a ``str`` enum would otherwise compare alphabetically,
    which puts ``"simple"`` above ``"advanced"``: exactly the check (``level >= minimum``) that must not
    be wrong.
    """

    SIMPLE = "simple"
    ADVANCED = "advanced"
    QUALIFIED = "qualified"

    @property
    def rank(self) -> int:
        """Position in the order: 0 for simple, 2 for qualified."""
        return _LEVEL_RANK[self]

    def _other_rank(self, other: object) -> int | None:
        if isinstance(other, Level):
            return other.rank
        if isinstance(other, str):  # refuse rather than fall back to alphabetical order
            if other not in _LEVEL_RANK:
                raise TypeError(f"cannot compare a signature level with {other!r}")
            return _LEVEL_RANK[Level(other)]
        return None

    def __lt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank < rank

    def __le__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank > rank

    def __ge__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank >= rank


_LEVEL_RANK = {Level.SIMPLE: 0, Level.ADVANCED: 1, Level.QUALIFIED: 2}


def level_at_least(level: Level, minimum: Level) -> bool:
    """Whether ``level`` meets ``minimum`` (a qualified signature satisfies an advanced requirement)."""
    return Level(level).rank >= Level(minimum).rank


class StepStatus(StrEnum):
    """Life of a step: ``pending → active → done | rejected``.

    ``skipped`` is reserved for an administrator's "skip this step" and is never produced by the engine yet.
    """

    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    REJECTED = "rejected"
    SKIPPED = "skipped"


class DossierStatus(StrEnum):
    """Life of a dossier's circuit: ``draft → in_progress → completed | rejected | recalled``."""

    DRAFT = "draft"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    RECALLED = "recalled"


class AssigneeKind(StrEnum):
    """A step names either one user or a desk (any one of its members may act for it)."""

    USER = "user"
    DESK = "desk"


@dataclass(frozen=True)
class Assignee:
    """One assignee slot of a step, written ``user:dgs.martin`` or ``desk:drh`` in templates and JSON."""

    kind: AssigneeKind
    """``user`` or ``desk``; a plain string is accepted and converted."""
    ref: str
    """The username or the desk code."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", AssigneeKind(self.kind))
        except ValueError:
            raise ValueError(
                f"assignee kind must be 'user' or 'desk', not {self.kind!r}"
            ) from None
        if not isinstance(self.ref, str) or not self.ref or any(c.isspace() or c == ":" for c in self.ref):
            raise ValueError(f"assignee reference must be a non-empty name without spaces or ':', not {self.ref!r}")

    @classmethod
    def parse(cls, text: str) -> Assignee:
        """Read ``user:NAME`` or ``desk:CODE``; anything else raises ValueError saying what was expected."""
        if not isinstance(text, str):
            raise ValueError(f"assignee must be a string like 'user:dgs.martin' or 'desk:drh', not {text!r}")
        kind, sep, ref = text.partition(":")
        try:
            if not sep:
                raise ValueError
            return cls(AssigneeKind(kind), ref)
        except ValueError:
            raise ValueError(f"assignee must look like 'user:dgs.martin' or 'desk:drh', not {text!r}") from None

    @classmethod
    def user(cls, username: str) -> Assignee:
        return cls(AssigneeKind.USER, username)

    @classmethod
    def desk(cls, code: str) -> Assignee:
        return cls(AssigneeKind.DESK, code)

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"


@dataclass(frozen=True)
class StampBox:
    """Where a signature step's visible stamp goes, in PDF points from the bottom-left corner of the page."""

    page: int
    """1-based page number; -1 means the last page (the usual place for signatures)."""
    x1: float
    """Left edge."""
    y1: float
    """Bottom edge."""
    x2: float
    """Right edge (> x1)."""
    y2: float
    """Top edge (> y1)."""


@dataclass(frozen=True)
class StepTemplate:
    """One step as an administrator defines it; checked by :func:`circuits.validation.validate_template`."""

    kind: StepKind
    """Visa or signature."""
    level: Level | None = None
    """Signature level, required on signature steps (never below the document type's minimum), None on visas."""
    assignees: tuple[Assignee, ...] = ()
    """Who must act: users and/or desks; each is one slot of the quorum."""
    quorum: Quorum = ALL
    """``"all"``: every slot; an int N: any N distinct slots (1 ≤ N ≤ number of assignees)."""
    deadline_days: int | None = None
    """Days the step may stay active before it is overdue (reminders); None for no deadline."""
    name: str | None = None
    """Label shown to users ("Visa DRH"); the kind is shown when absent."""
    stamp: StampBox | None = None
    """Where the visible signature of this step goes; signature steps only."""


@dataclass(frozen=True)
class Template:
    """An ordered circuit, as attached to a document type."""

    steps: tuple[StepTemplate, ...]
    """The steps in the order the dossier travels through them."""


@dataclass(frozen=True)
class Act:
    """One approval or signature by one person on a step, counting for one assignee slot."""

    actor: str
    """Username of the person who acted (the authenticated user)."""
    on_behalf_of: str | None
    """Username of the person the actor stood in for through a delegation, or None when acting in own right."""
    action: ActKind
    """``approve`` or ``sign``."""
    at: datetime
    """When (timezone-aware)."""
    satisfies: Assignee
    """The assignee slot of the step this act fills."""


@dataclass(frozen=True)
class StepState:
    """One step of a dossier's circuit: the template's settings (copied) plus where the step stands."""

    index: int
    """0-based position in the circuit."""
    kind: StepKind
    """Visa or signature."""
    level: Level | None
    """Signature level of a signature step; None on visas."""
    assignees: tuple[Assignee, ...]
    """The slots to fill (possibly adjusted by the initiator in draft)."""
    quorum: Quorum
    """``"all"`` or the number of distinct slots that complete the step."""
    deadline_days: int | None
    """Days after activation before the step is overdue, or None."""
    name: str | None
    """Label for users."""
    stamp: StampBox | None
    """Position of the visible signature, signature steps only."""
    status: StepStatus = StepStatus.PENDING
    """Where the step stands."""
    acts: tuple[Act, ...] = ()
    """Approvals or signatures given on this step since the last (re)launch, in order."""
    activated_at: datetime | None = None
    """When the step last became active; None while it has never been (or is no longer) reached."""
    completed_at: datetime | None = None
    """When the step was done or rejected."""

    @classmethod
    def from_template(cls, index: int, template: StepTemplate) -> StepState:
        """A pending step carrying a copy of the template step's settings."""
        return cls(
            index=index,
            kind=template.kind,
            level=template.level,
            assignees=tuple(template.assignees),
            quorum=template.quorum,
            deadline_days=template.deadline_days,
            name=template.name,
            stamp=template.stamp,
        )

    def to_template(self) -> StepTemplate:
        """The settings of this step, without its progress."""
        return StepTemplate(
            kind=self.kind,
            level=self.level,
            assignees=self.assignees,
            quorum=self.quorum,
            deadline_days=self.deadline_days,
            name=self.name,
            stamp=self.stamp,
        )

    @property
    def required(self) -> int:
        """How many distinct slots must be filled to complete the step."""
        return len(self.assignees) if self.quorum == ALL else int(self.quorum)

    @property
    def satisfied(self) -> frozenset[Assignee]:
        """Slots already filled by an act."""
        return frozenset(act.satisfies for act in self.acts)

    @property
    def quorum_met(self) -> bool:
        return len(self.satisfied) >= self.required


@dataclass(frozen=True)
class Snapshot:
    """The circuit instance of one dossier; the engine turns one snapshot into the next.

    It is a copy of the template made when the dossier is created, so later edits of the template (or of
    the document type) never change a dossier already under way.
    """

    status: DossierStatus
    """Where the dossier's circuit stands."""
    initiator: str
    """Username of the person who created the dossier: the only one who may launch, recall or relaunch it."""
    steps: tuple[StepState, ...]
    """The steps, in order."""
    version: int = 0
    """Incremented on every accepted action: the service layer uses it for optimistic locking (409 if stale)."""
    reject_reason: str | None = None
    """Why the dossier was rejected (stripped), while it is rejected."""
    rejected_by: str | None = None
    """Username of who rejected it."""
    rejected_on_behalf_of: str | None = None
    """Whom the rejecter stood in for through a delegation, if anyone."""
    rejected_at: datetime | None = None
    """When it was rejected."""
    allow_assignee_change: bool = False
    """Whether the initiator may change assignees in draft (a setting of the document type, copied here so
    that the engine alone decides and the decision is recorded with the dossier)."""

    @classmethod
    def from_template(cls, template: Template, initiator: str, *, allow_assignee_change: bool = False) -> Snapshot:
        """A draft circuit for a new dossier, copied from ``template``.

        The template is checked for structure (raising :class:`~circuits.errors.TemplateError`); the
        document type's minimum level is the caller's to check with ``validate_template``.
        """
        from circuits.validation import validate_template  # validation imports this module

        validate_template(template, Level.SIMPLE)
        return cls(
            status=DossierStatus.DRAFT,
            initiator=initiator,
            steps=tuple(StepState.from_template(i, step) for i, step in enumerate(template.steps)),
            allow_assignee_change=allow_assignee_change,
        )

    @property
    def active_step(self) -> StepState | None:
        """The step waiting for its assignees, or None when the dossier is not in progress."""
        return next((step for step in self.steps if step.status is StepStatus.ACTIVE), None)

    def to_template(self) -> Template:
        """The circuit's settings (with any assignee changes), without progress."""
        return Template(tuple(step.to_template() for step in self.steps))


@dataclass(frozen=True)
class Delegation:
    """``delegate`` may act for ``delegator`` from ``start`` (included) to ``end`` (excluded).

    Delegations do not chain (a delegate's own delegate cannot act for the delegator) and do not take the
    delegator's rights away: whoever acts first fills the slot.
    """

    delegator: str
    """Username of the absent person."""
    delegate: str
    """Username of the person standing in."""
    start: datetime
    """First instant the delegation is valid (timezone-aware)."""
    end: datetime
    """First instant it is no longer valid (timezone-aware, after ``start``)."""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("delegation dates must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("a delegation must end after it starts")
        if self.delegator == self.delegate:
            raise ValueError("a user cannot delegate to themselves")

    def valid_at(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class Directory:
    """Who belongs to which desk and who stands in for whom: what the engine needs to know about people.

    The service layer builds it from the database for the users concerned; the engine never looks further.
    """

    desks: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Desk code → usernames of its members."""
    delegations: tuple[Delegation, ...] = ()
    """Delegations to consider (expired ones are harmless)."""

    def members(self, desk: str) -> frozenset[str]:
        """Members of a desk; an unknown desk has none."""
        return frozenset(self.desks.get(desk, ()))

    def delegators_of(self, delegate: str, now: datetime) -> tuple[str, ...]:
        """Whom ``delegate`` may act for at ``now``, in the order the delegations are listed."""
        seen: dict[str, None] = {}
        for delegation in self.delegations:
            if delegation.delegate == delegate and delegation.valid_at(now):
                seen.setdefault(delegation.delegator)
        return tuple(seen)
