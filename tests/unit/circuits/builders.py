"""Small builders so that each test states only the circuit it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from circuits import (
    ALL,
    Assignee,
    Directory,
    Launch,
    Level,
    Snapshot,
    StepKind,
    StepTemplate,
    Template,
    apply,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
INITIATOR = "rh.dupont"


def at(hours: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, days=days)


def visa(*assignees: str, quorum: object = ALL, **kwargs) -> StepTemplate:
    return StepTemplate(StepKind.VISA, None, tuple(Assignee.parse(a) for a in assignees), quorum, **kwargs)


def signature(*assignees: str, level: Level = Level.SIMPLE, quorum: object = ALL, **kwargs) -> StepTemplate:
    return StepTemplate(StepKind.SIGNATURE, Level(level), tuple(Assignee.parse(a) for a in assignees), quorum, **kwargs)


def draft(*steps: StepTemplate, allow_assignee_change: bool = False) -> Snapshot:
    return Snapshot.from_template(Template(steps), INITIATOR, allow_assignee_change=allow_assignee_change)


def launched(*steps: StepTemplate, directory: Directory | None = None) -> Snapshot:
    return apply(draft(*steps), Launch(), INITIATOR, T0, directory or Directory()).snapshot


def directory(desks: dict[str, set[str]] | None = None, delegations=()) -> Directory:
    return Directory({code: frozenset(members) for code, members in (desks or {}).items()}, tuple(delegations))
