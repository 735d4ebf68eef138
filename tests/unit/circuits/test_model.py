"""The vocabulary: assignees, levels, delegations, and template validation messages."""

from __future__ import annotations

import pytest

from circuits import (
    Assignee,
    AssigneeKind,
    Delegation,
    Level,
    StampBox,
    StepKind,
    StepTemplate,
    Template,
    TemplateError,
    level_at_least,
    validate_template,
)
from tests.unit.circuits.builders import T0, at, directory, signature, visa


@pytest.mark.parametrize("text", ["user:dgs.martin", "desk:drh", "user:claire.dupont@example.fr"])
def test_assignee_round_trips_through_text(text):
    assert str(Assignee.parse(text)) == text


def test_assignee_parse_gives_kind_and_ref():
    assert Assignee.parse("desk:drh") == Assignee(AssigneeKind.DESK, "drh") == Assignee("desk", "drh")


@pytest.mark.parametrize("text", ["dgs.martin", "group:drh", "user:", ":x", "user:a b", "user:a:b", "", "USER:x"])
def test_bad_assignee_text_is_refused_with_the_expected_form(text):
    with pytest.raises(ValueError, match="user:dgs.martin"):
        Assignee.parse(text)


def test_assignee_parse_refuses_non_strings():
    with pytest.raises(ValueError):
        Assignee.parse(None)  # type: ignore[arg-type]


def test_levels_are_ordered_not_alphabetical():
    assert Level.SIMPLE < Level.ADVANCED < Level.QUALIFIED
    assert Level.QUALIFIED >= Level.ADVANCED and not Level.SIMPLE >= Level.ADVANCED
    assert [level.rank for level in Level] == [0, 1, 2]
    assert sorted([Level.QUALIFIED, Level.SIMPLE, Level.ADVANCED]) == list(Level)
    assert level_at_least(Level.QUALIFIED, Level.ADVANCED)
    assert not level_at_least(Level.SIMPLE, Level.ADVANCED)
    assert Level.ADVANCED > "simple"


def test_level_does_not_compare_with_unrelated_strings():
    with pytest.raises(TypeError):
        assert Level.SIMPLE < "zzz"


def test_delegation_checks_its_own_consistency():
    with pytest.raises(ValueError, match="end after"):
        Delegation("a", "b", at(days=2), at(days=1))
    with pytest.raises(ValueError, match="themselves"):
        Delegation("a", "a", T0, at(days=1))
    with pytest.raises(ValueError, match="timezone"):
        Delegation("a", "b", T0.replace(tzinfo=None), at(days=1))


def test_directory_lists_valid_delegators_once():
    dirx = directory(
        {"drh": {"x"}},
        [Delegation("a", "d", T0, at(days=2)), Delegation("a", "d", at(days=1), at(days=3)),
         Delegation("b", "d", at(days=5), at(days=6))],
    )
    assert dirx.delegators_of("d", at(days=1)) == ("a",)
    assert dirx.delegators_of("d", at(days=5)) == ("b",)
    assert dirx.members("inconnu") == frozenset()


# --- validate_template -----------------------------------------------------------------------------

ok_visa = visa("desk:drh")


def _error(*steps: StepTemplate, min_level: Level = Level.ADVANCED) -> TemplateError:
    with pytest.raises(TemplateError) as error:
        validate_template(Template(steps), min_level)
    return error.value


def test_a_good_template_passes():
    validate_template(
        Template((ok_visa, signature("user:dgs.martin", "desk:drh", level=Level.QUALIFIED, quorum=2,
                                     deadline_days=5, name="Signature", stamp=StampBox(-1, 50, 50, 250, 120)))),
        Level.ADVANCED,
    )


def test_level_below_minimum_names_the_step():
    error = _error(ok_visa, signature("user:maire", level=Level.SIMPLE))
    assert str(error) == "étape 2 : le niveau simple est inférieur au minimum advanced du type"
    assert error.message_en == "step 2: level simple is below the document type's minimum advanced"
    assert (error.code, error.index) == ("level_too_low", 1)


@pytest.mark.parametrize(
    ("step", "code"),
    [
        (StepTemplate(StepKind.SIGNATURE, None, (Assignee.parse("user:x"),)), "level_missing"),
        (StepTemplate(StepKind.VISA, Level.SIMPLE, (Assignee.parse("user:x"),)), "level_on_visa"),
        (StepTemplate(StepKind.SIGNATURE, "gold", (Assignee.parse("user:x"),)), "bad_level"),
        (StepTemplate("review", None, (Assignee.parse("user:x"),)), "bad_kind"),
        (visa(), "no_assignees"),
        (visa("user:x", "user:x"), "duplicate_assignee"),
        (StepTemplate(StepKind.VISA, None, ("user:x",)), "bad_assignee"),
        (visa("user:x", "desk:drh", quorum=3), "bad_quorum"),
        (visa("user:x", quorum=0), "bad_quorum"),
        (visa("user:x", quorum=True), "bad_quorum"),
        (visa("user:x", quorum="most"), "bad_quorum"),
        (visa("user:x", deadline_days=0), "bad_deadline"),
        (visa("user:x", deadline_days=2.5), "bad_deadline"),
        (visa("user:x", name="  "), "bad_name"),
        (visa("user:x", stamp=StampBox(1, 0, 0, 10, 10)), "stamp_on_visa"),
        (signature("user:x", level=Level.QUALIFIED, stamp=StampBox(0, 0, 0, 10, 10)), "bad_stamp"),
        (signature("user:x", level=Level.QUALIFIED, stamp=StampBox(1, 10, 0, 5, 10)), "bad_stamp"),
        (signature("user:x", level=Level.QUALIFIED, stamp=StampBox(1, 0, 0, float("inf"), 10)), "bad_stamp"),
        ("not a step", "bad_step"),
    ],
)
def test_each_template_fault_has_its_code(step, code):
    error = _error(ok_visa, ok_visa, step)
    assert (error.code, error.index) == (code, 2)
    assert error.message_fr.startswith("étape 3 : ") and error.message_en.startswith("step 3: ")


def test_desk_counts_as_one_slot_for_the_quorum():
    validate_template(Template((visa("desk:drh", "user:x", quorum=2),)), Level.SIMPLE)
    assert _error(visa("desk:drh", quorum=2)).code == "bad_quorum"


def test_a_template_needs_steps():
    error = _error()
    assert (error.code, error.index) == ("no_steps", None)
