"""Checks on circuit templates, with messages an administrator can act on.

Templates come from YAML files (``parapheur setup``) and admin forms, so every refusal names the step
(counted from 1) and the value at fault, in French for the screens and in English for the API and logs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NoReturn

from circuits.errors import TemplateError
from circuits.model import ALL, Assignee, Level, StampBox, StepKind, StepTemplate, Template


def validate_template(template: Template, min_level: Level) -> None:
    """Raise :class:`TemplateError` on the first thing wrong with ``template`` for a type of ``min_level``."""
    if not template.steps:
        raise TemplateError(
            "no_steps", "le circuit doit compter au moins une étape", "the circuit must have at least one step"
        )
    for index, step in enumerate(template.steps):
        validate_step(step, index, min_level)


def validate_step(step: StepTemplate, index: int, min_level: Level) -> None:
    """Raise :class:`TemplateError` if step number ``index + 1`` is not acceptable."""
    if not isinstance(step, StepTemplate):
        _fail(index, "bad_step", "la définition de l'étape est invalide", "the step definition is invalid")
    if not isinstance(step.kind, StepKind):
        _fail(index, "bad_kind", f"le type d'étape doit être visa ou signature, pas {step.kind!r}",
              f"the step kind must be visa or signature, not {step.kind!r}")
    _check_level(step, index, Level(min_level))
    check_assignees(step.assignees, step.quorum, index)
    _check_deadline(step.deadline_days, index)
    if step.name is not None and (not isinstance(step.name, str) or not step.name.strip()):
        _fail(index, "bad_name", "le nom de l'étape ne peut pas être vide", "the step name cannot be blank")
    if step.stamp is not None:
        if step.kind is StepKind.VISA:
            _fail(index, "stamp_on_visa", "une étape de visa ne porte pas de tampon de signature",
                  "a visa step has no signature stamp")
        _check_stamp(step.stamp, index)


def check_assignees(assignees: Sequence[Assignee], quorum: object, index: int) -> None:
    """Check a step's assignees and quorum together (also used when an initiator changes assignees).

    A desk is one slot, however many members it has: the quorum counts slots, not people.
    """
    if not assignees:
        _fail(index, "no_assignees", "au moins un intervenant est requis", "at least one assignee is required")
    seen: set[Assignee] = set()
    for assignee in assignees:
        if not isinstance(assignee, Assignee):
            _fail(index, "bad_assignee", f"intervenant invalide : {assignee!r}", f"invalid assignee: {assignee!r}")
        if assignee in seen:
            _fail(index, "duplicate_assignee", f"l'intervenant {assignee} figure deux fois",
                  f"assignee {assignee} is listed twice")
        seen.add(assignee)
    count = len(assignees)
    if quorum == ALL:
        return
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= count:
        _fail(index, "bad_quorum",
              f"le quorum doit être « all » ou un nombre entre 1 et {count} (le nombre d'intervenants), "
              f"pas {quorum!r}",
              f"the quorum must be 'all' or a number from 1 to {count} (the number of assignees), not {quorum!r}")


def _check_level(step: StepTemplate, index: int, min_level: Level) -> None:
    if step.kind is StepKind.VISA:
        if step.level is not None:
            _fail(index, "level_on_visa", "une étape de visa n'a pas de niveau de signature",
                  "a visa step has no signature level")
        return
    if step.level is None:
        _fail(index, "level_missing", f"une étape de signature doit indiquer un niveau (au moins {min_level})",
              f"a signature step needs a level (at least {min_level})")
    if not isinstance(step.level, Level):
        _fail(index, "bad_level", f"niveau inconnu {step.level!r} (simple, advanced ou qualified)",
              f"unknown level {step.level!r} (simple, advanced or qualified)")
    if step.level < min_level:
        _fail(index, "level_too_low",
              f"le niveau {step.level} est inférieur au minimum {min_level} du type",
              f"level {step.level} is below the document type's minimum {min_level}")


def _check_deadline(deadline_days: object, index: int) -> None:
    if deadline_days is None:
        return
    if isinstance(deadline_days, bool) or not isinstance(deadline_days, int) or deadline_days < 1:
        _fail(index, "bad_deadline", f"le délai doit être un nombre de jours d'au moins 1, pas {deadline_days!r}",
              f"the deadline must be a number of days of at least 1, not {deadline_days!r}")


def _check_stamp(stamp: StampBox, index: int) -> None:
    page_ok = isinstance(stamp.page, int) and not isinstance(stamp.page, bool) and (stamp.page >= 1 or stamp.page == -1)
    if not page_ok:
        _fail(index, "bad_stamp", f"la page du tampon doit être un numéro ≥ 1 ou -1 (dernière), pas {stamp.page!r}",
              f"the stamp page must be a number ≥ 1 or -1 (last page), not {stamp.page!r}")
    coords = (stamp.x1, stamp.y1, stamp.x2, stamp.y2)
    numeric = all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in coords)
    if not numeric or min(coords) < 0 or stamp.x1 >= stamp.x2 or stamp.y1 >= stamp.y2:
        _fail(index, "bad_stamp",
              f"le cadre du tampon doit être [x1, y1, x2, y2] avec 0 ≤ x1 < x2 et 0 ≤ y1 < y2, pas {list(coords)}",
              f"the stamp box must be [x1, y1, x2, y2] with 0 ≤ x1 < x2 and 0 ≤ y1 < y2, not {list(coords)}")


def _fail(index: int, code: str, message_fr: str, message_en: str) -> NoReturn:
    raise TemplateError(code, f"étape {index + 1} : {message_fr}", f"step {index + 1}: {message_en}", index)
