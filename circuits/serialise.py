"""Templates and snapshots to and from plain JSON-able dicts.

The service layer keeps each dossier's snapshot as JSON in the database and reads templates from the
organisation's YAML file, so both directions live here, next to the model they mirror. Datetimes are
ISO 8601 in UTC. Template input comes from people and gets :class:`TemplateError` messages naming the step
and the key; snapshot input comes from our own database and a bad one is a plain ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from circuits.errors import TemplateError
from circuits.model import (
    ALL,
    Act,
    ActKind,
    Assignee,
    DossierStatus,
    Level,
    Snapshot,
    StampBox,
    StepKind,
    StepState,
    StepStatus,
    StepTemplate,
    Template,
)

SNAPSHOT_FORMAT = 1
"""Written into every snapshot dict so that a later format can migrate stored ones."""

_STEP_KEYS = ("kind", "level", "assignees", "quorum", "deadline_days", "name", "stamp")

# --- templates -------------------------------------------------------------------------------------


def template_to_dict(template: Template) -> dict[str, Any]:
    """``{"steps": [...]}`` in the form :func:`template_from_dict` (and the YAML setup file) reads."""
    return {"steps": [step_template_to_dict(step) for step in template.steps]}


def step_template_to_dict(step: StepTemplate) -> dict[str, Any]:
    return {
        "kind": str(step.kind),
        "level": None if step.level is None else str(step.level),
        "assignees": [str(assignee) for assignee in step.assignees],
        "quorum": step.quorum,
        "deadline_days": step.deadline_days,
        "name": step.name,
        "stamp": None if step.stamp is None else {
            "page": step.stamp.page, "box": [step.stamp.x1, step.stamp.y1, step.stamp.x2, step.stamp.y2],
        },
    }


def template_from_dict(data: Mapping[str, Any]) -> Template:
    """Read ``{"steps": [{kind: visa, assignees: [desk:drh], ...}, ...]}``.

    Keys other than ``steps`` at the top are ignored, so a ``document_types`` entry of the setup file can be
    passed as is. Only the shape is checked here; call ``validate_template`` with the type's minimum level.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
        raise TemplateError(
            "bad_format", "le circuit doit être une liste d'étapes sous la clé « steps »",
            "the circuit must be a list of steps under the key 'steps'",
        )
    return Template(tuple(step_template_from_dict(step, i) for i, step in enumerate(data["steps"])))


def step_template_from_dict(data: Mapping[str, Any], index: int = 0) -> StepTemplate:
    """Read one step; ``index`` (0-based) is only used to name the step in error messages."""
    if not isinstance(data, Mapping):
        _bad(index, "l'étape doit être un dictionnaire de clés", "the step must be a mapping of keys")
    unknown = sorted(str(key) for key in data if key not in _STEP_KEYS)
    if unknown:
        _bad(index, f"clé(s) inconnue(s) {', '.join(unknown)} (clés possibles : {', '.join(_STEP_KEYS)})",
             f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_STEP_KEYS)})")
    kind = _enum(StepKind, data.get("kind"), index, "kind")
    level = None if data.get("level") is None else _enum(Level, data["level"], index, "level")
    raw_assignees = data.get("assignees", [])
    if not isinstance(raw_assignees, list):
        _bad(index, "« assignees » doit être une liste (par ex. [user:dgs.martin, desk:drh])",
             "'assignees' must be a list (e.g. [user:dgs.martin, desk:drh])")
    assignees = []
    for text in raw_assignees:
        try:
            assignees.append(Assignee.parse(text))
        except ValueError:
            _bad(index, f"intervenant {text!r} invalide : attendu user:IDENTIFIANT ou desk:CODE",
                 f"invalid assignee {text!r}: expected user:USERNAME or desk:CODE")
    quorum = data.get("quorum")
    quorum = ALL if quorum is None else quorum
    if quorum != ALL and (isinstance(quorum, bool) or not isinstance(quorum, int)):
        _bad(index, f"« quorum » doit être « all » ou un nombre, pas {quorum!r}",
             f"'quorum' must be 'all' or a number, not {quorum!r}")
    deadline = data.get("deadline_days")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, int)):
        _bad(index, f"« deadline_days » doit être un nombre de jours, pas {deadline!r}",
             f"'deadline_days' must be a number of days, not {deadline!r}")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        _bad(index, f"« name » doit être un texte, pas {name!r}", f"'name' must be text, not {name!r}")
    stamp = None if data.get("stamp") is None else _stamp(data["stamp"], index)
    return StepTemplate(kind, level, tuple(assignees), quorum, deadline, name, stamp)


def _stamp(data: Any, index: int) -> StampBox:
    if not isinstance(data, Mapping) or set(data) - {"page", "box"}:
        _bad(index, "« stamp » doit être {page: N, box: [x1, y1, x2, y2]}",
             "'stamp' must be {page: N, box: [x1, y1, x2, y2]}")
    page = data.get("page", -1)
    box = data.get("box")
    numbers_ok = isinstance(box, list) and len(box) == 4 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in box
    )
    if isinstance(page, bool) or not isinstance(page, int) or not numbers_ok:
        _bad(index, f"« stamp » doit être {{page: N, box: [x1, y1, x2, y2]}}, pas {dict(data)!r}",
             f"'stamp' must be {{page: N, box: [x1, y1, x2, y2]}}, not {dict(data)!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    return StampBox(page, x1, y1, x2, y2)


def _enum(enum: type, value: Any, index: int, key: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        _bad(index, f"« {key} » vaut {value!r} ; valeurs possibles : {allowed}",
             f"'{key}' is {value!r}; allowed values: {allowed}")


def _bad(index: int, message_fr: str, message_en: str) -> NoReturn:
    raise TemplateError("bad_format", f"étape {index + 1} : {message_fr}", f"step {index + 1}: {message_en}", index)


# --- snapshots -------------------------------------------------------------------------------------


def snapshot_to_dict(snapshot: Snapshot) -> dict[str, Any]:
    """A JSON-able dict of the whole snapshot, progress included."""
    return {
        "format": SNAPSHOT_FORMAT,
        "status": str(snapshot.status),
        "initiator": snapshot.initiator,
        "version": snapshot.version,
        "allow_assignee_change": snapshot.allow_assignee_change,
        "reject_reason": snapshot.reject_reason,
        "rejected_by": snapshot.rejected_by,
        "rejected_on_behalf_of": snapshot.rejected_on_behalf_of,
        "rejected_at": _time_out(snapshot.rejected_at),
        "steps": [_step_state_to_dict(step) for step in snapshot.steps],
    }


def snapshot_from_dict(data: Mapping[str, Any]) -> Snapshot:
    """Read what :func:`snapshot_to_dict` wrote; ValueError if it is not that."""
    try:
        if data["format"] != SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported snapshot format {data['format']!r}")
        steps = tuple(_step_state_from_dict(step, i) for i, step in enumerate(data["steps"]))
        if not steps:
            raise ValueError("a snapshot has at least one step")
        return Snapshot(
            status=DossierStatus(data["status"]),
            initiator=_str(data["initiator"]),
            steps=steps,
            version=_int(data["version"]),
            reject_reason=_opt_str(data["reject_reason"]),
            rejected_by=_opt_str(data["rejected_by"]),
            rejected_on_behalf_of=_opt_str(data["rejected_on_behalf_of"]),
            rejected_at=_time_in(data["rejected_at"]),
            allow_assignee_change=bool(data["allow_assignee_change"]),
        )
    except (KeyError, TypeError, AttributeError, TemplateError) as error:
        raise ValueError(f"invalid circuit snapshot: {error!r}") from error


def _step_state_to_dict(step: StepState) -> dict[str, Any]:
    return {
        **step_template_to_dict(step.to_template()),
        "status": str(step.status),
        "activated_at": _time_out(step.activated_at),
        "completed_at": _time_out(step.completed_at),
        "acts": [
            {
                "actor": act.actor,
                "on_behalf_of": act.on_behalf_of,
                "action": str(act.action),
                "at": _time_out(act.at),
                "satisfies": str(act.satisfies),
            }
            for act in step.acts
        ],
    }


def _step_state_from_dict(data: Mapping[str, Any], index: int) -> StepState:
    settings = step_template_from_dict({key: data[key] for key in _STEP_KEYS}, index)
    acts = tuple(
        Act(
            actor=_str(act["actor"]),
            on_behalf_of=_opt_str(act["on_behalf_of"]),
            action=ActKind(act["action"]),
            at=_time_in(act["at"]),
            satisfies=Assignee.parse(act["satisfies"]),
        )
        for act in data["acts"]
    )
    if any(act.at is None for act in acts):
        raise ValueError("an act needs its time")
    return replace(
        StepState.from_template(index, settings),
        status=StepStatus(data["status"]),
        acts=acts,
        activated_at=_time_in(data["activated_at"]),
        completed_at=_time_in(data["completed_at"]),
    )


def _time_out(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _time_in(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(_str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"datetime without a timezone: {value!r}")
    return parsed


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value
