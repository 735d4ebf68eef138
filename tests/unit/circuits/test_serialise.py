"""Templates and snapshots to and from JSON-able dicts, including the YAML form of the setup file."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
import yaml
from hypothesis import given, settings

from circuits import (
    ALL,
    Approve,
    Assignee,
    Delegation,
    Launch,
    Level,
    Reject,
    StampBox,
    StepKind,
    StepTemplate,
    Template,
    TemplateError,
    apply,
    snapshot_from_dict,
    snapshot_to_dict,
    template_from_dict,
    template_to_dict,
    validate_template,
)
from tests.unit.circuits.builders import T0, directory, draft, launched, signature, visa
from tests.unit.circuits.strategies import templates

SETUP_YAML = """
code: contrat
name: Contrat de travail
min_level: advanced
steps:
  - {kind: visa, assignees: [desk:drh]}
  - kind: signature
    level: advanced
    assignees: [user:dgs.martin, desk:elus]
    quorum: 1
    deadline_days: 5
    name: Signature DGS
    stamp: {page: -1, box: [350, 60, 550, 130.5]}
"""


def test_reads_a_document_type_of_the_setup_file():
    template = template_from_dict(yaml.safe_load(SETUP_YAML))
    assert template == Template((
        StepTemplate(StepKind.VISA, None, (Assignee.parse("desk:drh"),)),
        StepTemplate(StepKind.SIGNATURE, Level.ADVANCED, (Assignee.parse("user:dgs.martin"), Assignee.parse("desk:elus")),
                     1, 5, "Signature DGS", StampBox(-1, 350.0, 60.0, 550.0, 130.5)),
    ))
    validate_template(template, Level.ADVANCED)


def test_defaults_of_the_short_form():
    step = template_from_dict({"steps": [{"kind": "visa", "assignees": ["user:a"], "level": None}]}).steps[0]
    assert (step.quorum, step.deadline_days, step.name, step.stamp) == (ALL, None, None, None)
    stamp = template_from_dict({"steps": [{"kind": "signature", "assignees": ["user:a"], "level": "simple",
                                           "stamp": {"box": [0, 0, 10, 10]}}]}).steps[0].stamp
    assert stamp.page == -1


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ({"kind": "visa", "asignees": ["user:a"]}, "asignees"),
        ({"kind": "review", "assignees": ["user:a"]}, "review"),
        ({"assignees": ["user:a"]}, "kind"),
        ({"kind": "signature", "level": "gold", "assignees": ["user:a"]}, "gold"),
        ({"kind": "visa", "assignees": "user:a"}, "assignees"),
        ({"kind": "visa", "assignees": ["group:a"]}, "group:a"),
        ({"kind": "visa", "assignees": ["user:a"], "quorum": "2"}, "quorum"),
        ({"kind": "visa", "assignees": ["user:a"], "deadline_days": "3"}, "deadline_days"),
        ({"kind": "visa", "assignees": ["user:a"], "name": 3}, "name"),
        ({"kind": "signature", "assignees": ["user:a"], "stamp": {"page": 1, "box": [1, 2, 3]}}, "stamp"),
        ({"kind": "signature", "assignees": ["user:a"], "stamp": {"page": 1, "x": 1}}, "stamp"),
        ("visa", "mapping"),
    ],
)
def test_bad_yaml_steps_are_named_with_the_key(step, fragment):
    with pytest.raises(TemplateError) as error:
        template_from_dict({"steps": [{"kind": "visa", "assignees": ["user:a"]}, step]})
    assert error.value.code == "bad_format" and error.value.index == 1
    assert error.value.message_fr.startswith("étape 2 : ")
    assert fragment in error.value.message_en


@pytest.mark.parametrize("data", [{}, {"steps": "visa"}, [], None])
def test_template_needs_a_list_of_steps(data):
    with pytest.raises(TemplateError, match="steps"):
        template_from_dict(data)


@settings(max_examples=200, deadline=None)
@given(templates())
def test_template_round_trip(template):
    assert template_from_dict(json.loads(json.dumps(template_to_dict(template)))) == template


def test_snapshot_round_trip_with_acts_delegation_and_rejection():
    dirx = directory({"drh": {"rh.lefevre"}}, [Delegation("maire", "adjoint", T0, T0 + timedelta(days=2))])
    snap = launched(visa("desk:drh", "user:maire", deadline_days=2), signature("user:dgs.martin", level=Level.QUALIFIED))
    snap = apply(snap, Approve(), "adjoint", T0 + timedelta(hours=1), dirx).snapshot
    snap = apply(snap, Reject("incomplet"), "rh.lefevre", T0 + timedelta(hours=2), dirx).snapshot
    data = snapshot_to_dict(snap)
    assert data["steps"][0]["acts"][0] == {
        "actor": "adjoint", "on_behalf_of": "maire", "action": "approve",
        "at": "2025-03-03T10:00:00+00:00", "satisfies": "user:maire",
    }
    assert snapshot_from_dict(json.loads(json.dumps(data))) == snap


def test_datetimes_are_written_in_utc():
    paris = timezone(timedelta(hours=1))
    snap = apply(draft(visa("user:a")), Launch(), "rh.dupont", T0.astimezone(paris), directory()).snapshot
    assert snapshot_to_dict(snap)["steps"][0]["activated_at"] == "2025-03-03T09:00:00+00:00"


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(format=99),
        lambda d: d.pop("status"),
        lambda d: d.update(status="lost"),
        lambda d: d.update(steps=[]),
        lambda d: d.update(version="3"),
        lambda d: d["steps"][0].update(activated_at="2025-03-03T09:00:00"),
        lambda d: d["steps"][0].update(kind="review"),
        lambda d: d.update(initiator=None),
    ],
)
def test_damaged_snapshot_is_a_value_error(damage):
    data = snapshot_to_dict(launched(visa("user:a")))
    damage(data)
    with pytest.raises(ValueError):
        snapshot_from_dict(data)
