"""Hypothesis strategies: small worlds of users, desks and delegations, and templates over them.

The pools are small on purpose so that random actors often turn out to be assignees, desk members or
delegates, and random dossiers get all the way to completion.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

from circuits import ALL, Assignee, Delegation, Directory, Level, StampBox, StepKind, StepTemplate, Template
from tests.unit.circuits.builders import T0

USERS = ("u0", "u1", "u2", "u3", "u4")
DESKS = ("d0", "d1", "d2")  # d2 stays empty: a slot nobody can fill
DELEGATE_ONLY = "dg"  # belongs to no desk, acts only as a delegate
STRANGER = "x"
SLOTS = tuple(Assignee.user(u) for u in USERS) + tuple(Assignee.desk(d) for d in DESKS)

slots = st.sampled_from(SLOTS)
step_names = st.none() | st.text(min_size=1).filter(str.strip)


@st.composite
def stamps(draw) -> StampBox:
    x1 = draw(st.floats(0, 500, allow_nan=False))
    y1 = draw(st.floats(0, 700, allow_nan=False))
    width = draw(st.floats(1, 200, allow_nan=False))
    height = draw(st.floats(1, 100, allow_nan=False))
    return StampBox(draw(st.sampled_from([-1, 1, 2, 7])), x1, y1, x1 + width, y1 + height)


@st.composite
def step_templates(draw, names: st.SearchStrategy[str | None] = step_names) -> StepTemplate:
    kind = draw(st.sampled_from(StepKind))
    assignees = tuple(draw(st.lists(slots, min_size=1, max_size=4, unique=True)))
    quorum = draw(st.just(ALL) | st.integers(1, len(assignees)))
    signature = kind is StepKind.SIGNATURE
    return StepTemplate(
        kind=kind,
        level=draw(st.sampled_from(Level)) if signature else None,
        assignees=assignees,
        quorum=quorum,
        deadline_days=draw(st.none() | st.integers(1, 30)),
        name=draw(names),
        stamp=draw(st.none() | stamps()) if signature else None,
    )


def templates(max_steps: int = 4, **kwargs) -> st.SearchStrategy[Template]:
    return st.lists(step_templates(**kwargs), min_size=1, max_size=max_steps).map(lambda s: Template(tuple(s)))


@st.composite
def delegations(draw) -> Delegation:
    delegator = draw(st.sampled_from(USERS))
    delegate = draw(st.sampled_from([u for u in USERS if u != delegator] + [DELEGATE_ONLY]))
    start = T0 + timedelta(hours=draw(st.integers(-24, 200)))
    return Delegation(delegator, delegate, start, start + timedelta(hours=draw(st.integers(1, 200))))


@st.composite
def directories(draw) -> Directory:
    desks = {desk: frozenset(draw(st.sets(st.sampled_from(USERS), min_size=1, max_size=3))) for desk in DESKS[:2]}
    desks[DESKS[2]] = frozenset()
    return Directory(desks, tuple(draw(st.lists(delegations(), max_size=4))))
