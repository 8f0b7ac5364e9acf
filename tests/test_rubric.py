"""Unit tests of rubric loading and validation (judgekit.judging.rubric, judgekit.io.yamlpos)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from judgekit.io.errors import JudgekitError
from judgekit.judging.rubric import Condition, Rubric, Scale, load_rubric

RUBRICS = Path(__file__).resolve().parents[1] / "rubrics"

LEVELS5 = "{1: a, 2: b, 3: c, 4: d, 5: e}"


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def problems(path: Path) -> list[str]:
    """The problem lines of a failing load_rubric, with the path replaced by ``F``."""
    with pytest.raises(JudgekitError) as info:
        load_rubric(path)
    text = str(info.value)
    assert text.startswith("invalid rubric ("), text
    lines = [ln.strip() for ln in text.splitlines()[1:]]
    m = re.match(r"invalid rubric \((\d+) problem\(s\)\)", text)
    assert m and int(m.group(1)) == len(lines)
    return [ln.replace(str(path), "F") for ln in lines]


def one_problem(path: Path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


def minimal(**extra: str) -> str:
    base = {
        "name": "t",
        "version": "1",
        "criteria": f"\n  - name: accuracy\n    description: d\n    levels: {LEVELS5}",
        "overall": "\n  method: weighted_mean",
    }
    base.update(extra)
    return "".join(f"{k}: {v}\n" for k, v in base.items())


# ---- the shipped rubrics ------------------------------------------------------------------------------


def test_general_rubric_loads() -> None:
    r = load_rubric(RUBRICS / "general.yaml")
    assert r.name == "general"
    assert r.version == "1.0"
    assert r.criterion_names == ["correctness", "completeness", "clarity"]
    assert r.overall.method == "weighted_mean"
    assert r.reply_keys == ["correctness", "completeness", "clarity"]
    assert [c.weight for c in r.criteria] == [2.0, 1.0, 1.0]
    assert str(r.pass_rule) == "overall >= 3"
    assert set(r.flags) == {"is_correct"}
    assert str(r.flags["is_correct"]) == "correctness >= 4"
    assert r.examples == []
    for c in r.criteria:
        assert list(c.levels) == [1, 2, 3, 4, 5]


def test_robustmad_rubric_loads() -> None:
    r = load_rubric(str(RUBRICS / "robustmad.yaml"))  # str paths are accepted too
    assert r.name == "robustmad"
    assert r.criterion_names == ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity"]
    assert r.overall.method == "judge"
    assert r.reply_keys == [*r.criterion_names, "overall"]
    assert r.overall.levels is not None and sorted(r.overall.levels) == [1, 2, 3, 4, 5]
    assert str(r.pass_rule) == "overall >= 3"
    assert str(r.flags["is_accurate"]) == "technical_accuracy >= 3"
    assert len(r.examples) == 2
    assert r.examples[1].scores["overall"] == 1
    assert r.scale.levels == [1, 2, 3, 4, 5]


# ---- every problem with file:line and field path ------------------------------------------------------


def test_bad_criterion_name_at_its_line(tmp_path: Path) -> None:
    p = write(tmp_path, f"""\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: d
            levels: {LEVELS5}
          - name: Bad-Name
            description: d
            levels: {LEVELS5}
        overall:
          method: weighted_mean
        """)
    msg = one_problem(p)
    assert msg.startswith("F:7: field 'criteria.1.name': ")
    assert "'Bad-Name'" in msg and "lower_snake_case" in msg


def test_reserved_criterion_name(tmp_path: Path) -> None:
    p = write(tmp_path, f"""\
        name: t
        version: 1
        criteria:
          - name: overall
            description: d
            levels: {LEVELS5}
        overall:
          method: weighted_mean
        """)
    msg = one_problem(p)
    assert msg.startswith("F:4: field 'criteria.0.name': ")
    assert "reserved" in msg


def test_missing_level_descriptors(tmp_path: Path) -> None:
    p = write(tmp_path, """\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: d
            levels:
              1: bad
              2: poor
        overall:
          method: weighted_mean
        """)
    msg = one_problem(p)
    assert msg.startswith("F:7: field 'criteria.0.levels': ")
    assert "missing descriptor for level(s) [3, 4, 5]" in msg


def test_levels_outside_scale(tmp_path: Path) -> None:
    p = write(tmp_path, """\
        name: t
        version: 1
        scale: [1, 3]
        criteria:
          - name: accuracy
            description: d
            levels: {0: z, 1: a, 2: b, 3: c, 7: g}
        overall:
          method: weighted_mean
        """)
    msg = one_problem(p)
    assert msg.startswith("F:7: field 'criteria.0.levels': ")
    assert "level(s) [0, 7] outside the scale 1-3" in msg


def test_empty_level_descriptor(tmp_path: Path) -> None:
    p = write(tmp_path, """\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: d
            levels: {1: a, 2: b, 3: c, 4: d, 5: "  "}
        overall:
          method: weighted_mean
        """)
    assert one_problem(p) == "F:6: field 'criteria.0.levels': level 5 has an empty descriptor"


def test_unknown_field_in_pass_rule(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(**{"pass": "\n  field: overall\n  op: '>='\n  value: 3\n  colour: red"}))
    msg = one_problem(p)
    assert msg.startswith("F:13: field 'pass.colour': ")
    assert "Extra inputs are not permitted" in msg


def test_pass_rule_refers_to_unknown_criterion(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(**{"pass": "accuracyy >= 3"}))
    msg = one_problem(p)
    assert msg.startswith("F:9: field 'pass': ")
    assert "unknown field 'accuracyy'" in msg


def test_unreadable_pass_condition(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(**{"pass": "overall => 3"}))
    msg = one_problem(p)
    assert msg.startswith("F:9: field 'pass': ")
    assert "cannot read condition 'overall => 3'" in msg


def test_unknown_top_level_field(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(colour="red"))
    assert one_problem(p) == "F:9: field 'colour': Extra inputs are not permitted"


def test_duplicate_criterion_names(tmp_path: Path) -> None:
    p = write(tmp_path, f"""\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: d
            levels: {LEVELS5}
          - name: clarity
            description: d
            levels: {LEVELS5}
          - name: accuracy
            description: again
            levels: {LEVELS5}
        overall:
          method: weighted_mean
        """)
    assert one_problem(p) == "F:10: field 'criteria.2.name': duplicate criterion name 'accuracy'"


def test_flag_refers_to_unknown_criterion(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(flags="\n  is_ok: accuracy >= 4\n  is_clear: clarity >= 3"))
    assert one_problem(p) == "F:11: field 'flags.is_clear': flag 'is_clear' refers to unknown field 'clarity'"


def test_flag_name_must_be_snake_case(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(flags="\n  IsOk: accuracy >= 4"))
    msg = one_problem(p)
    assert msg.startswith("F:10: field 'flags.IsOk': ")
    assert "lower_snake_case" in msg


def test_judge_overall_needs_levels(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(overall="\n  method: judge\n  description: overall verdict"))
    msg = one_problem(p)
    assert re.match(r"F:8: field 'overall': method 'judge' needs overall.levels", msg), msg


def test_overall_levels_with_weighted_mean(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(overall=f"\n  method: weighted_mean\n  levels: {LEVELS5}"))
    assert one_problem(p) == "F:9: field 'overall.levels': levels are only used with method 'judge'"


def test_overall_levels_checked_against_overall_scale(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(overall="\n  method: judge\n  scale: [0, 2]\n  levels: {1: a, 2: b}",
                                **{"pass": "overall >= 1"}))
    assert one_problem(p) == "F:10: field 'overall.levels': missing descriptor for level(s) [0]"


EXAMPLES_RUBRIC = f"""\
    name: t
    version: 1
    criteria:
      - name: accuracy
        description: d
        levels: {LEVELS5}
    overall:
      method: judge
      levels: {LEVELS5}
    examples:
      - question: q1
        reference: r1
        response: a1
        scores: {{accuracy: 4}}
      - question: q2
        reference: r2
        response: a2
        scores:
          accuracy: 9
          overall: 0
      - question: q3
        reference: r3
        response: a3
        scores: {{accuracy: 3, overall: 3}}
    """


def test_examples_missing_and_out_of_range_scores(tmp_path: Path) -> None:
    p = write(tmp_path, EXAMPLES_RUBRIC)
    found = problems(p)
    assert found == [
        "F:14: field 'examples.0.scores': scores must give exactly ['accuracy', 'overall'], got ['accuracy']",
        "F:19: field 'examples.1.scores.accuracy': score 9 is outside 1-5",
        "F:20: field 'examples.1.scores.overall': score 0 is outside 1-5",
    ]


def test_all_cross_field_problems_reported_together(tmp_path: Path) -> None:
    p = write(tmp_path, """\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: d
            levels: {1: a, 2: b}
          - name: accuracy
            description: d
            levels: {1: a, 2: b, 3: c, 4: d, 5: e, 6: f}
        overall:
          method: weighted_mean
        pass: nothing >= 3
        flags:
          f1: nope >= 3
        """)
    found = problems(p)
    assert found == [
        "F:6: field 'criteria.0.levels': missing descriptor for level(s) [3, 4, 5]",
        "F:7: field 'criteria.1.name': duplicate criterion name 'accuracy'",
        "F:9: field 'criteria.1.levels': level(s) [6] outside the scale 1-5",
        "F:12: field 'pass': pass rule refers to unknown field 'nothing' (known: ['accuracy', 'overall'])",
        "F:14: field 'flags.f1': flag 'f1' refers to unknown field 'nope'",
    ]


def test_schema_errors_do_not_hide_cross_field_problems(tmp_path: Path) -> None:
    # A schema error in one criterion (bad name) must not hide the problems elsewhere in the file.
    p = write(tmp_path, f"""\
        name: t
        version: 1
        criteria:
          - name: Bad-Name
            description: d
            levels: {LEVELS5}
          - name: clarity
            description: d
            levels:
              1: a
              2: b
        overall:
          method: weighted_mean
          levels: {LEVELS5}
        flags:
          f1: nope >= 3
        """)
    found = problems(p)
    assert found[0].startswith("F:4: field 'criteria.0.name': criterion name 'Bad-Name'")
    assert "F:10: field 'criteria.1.levels': missing descriptor for level(s) [3, 4, 5]" in found
    assert "F:14: field 'overall.levels': levels are only used with method 'judge'" in found
    assert "F:16: field 'flags.f1': flag 'f1' refers to unknown field 'nope'" in found
    assert len(found) == 4, found


def test_schema_error_does_not_invent_problems(tmp_path: Path) -> None:
    # The flag and the example refer to the criterion whose description is broken: only that is reported.
    p = write(tmp_path, f"""\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: ""
            levels: {LEVELS5}
          - name: clarity
            description: d
            levels: {LEVELS5}
        overall:
          method: weighted_mean
        pass: accuracy >= 3
        flags:
          ok: accuracy >= 4
        examples:
          - question: q
            reference: r
            response: a
            scores: {{accuracy: 3, clarity: 4}}
        """)
    assert len(problems(p)) == 1
    assert one_problem(p).startswith("F:5: field 'criteria.0.description': ")


def test_schema_errors_several_at_once(tmp_path: Path) -> None:
    p = write(tmp_path, """\
        name: t
        version: 1
        colour: red
        criteria:
          - name: accuracy
            description: ""
            weight: 0
            levels:
              1: a
              x: b
          - description: no name
            levels: {1: a, 2: b, 3: c, 4: d, 5: e}
        overall:
          method: weighted_mean
        """)
    found = problems(p)
    assert "F:3: field 'colour': Extra inputs are not permitted" in found
    assert any(f.startswith("F:6: field 'criteria.0.description': ") for f in found)
    assert any(f.startswith("F:7: field 'criteria.0.weight': ") for f in found)
    assert any(f.startswith("F:10: field 'criteria.0.levels.x.[key]': ") for f in found)
    assert "F:11: field 'criteria.1.name': Field required" in found


def test_bad_scale(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(scale="[5, 1]"))
    found = problems(p)
    assert "F:9: field 'scale': scale max (1) must be greater than min (5)" in found


def test_missing_criteria(tmp_path: Path) -> None:
    p = write(tmp_path, "name: t\nversion: 1\n")
    msg = one_problem(p)
    assert msg.startswith("F:1: field 'criteria': Field required")


def test_invalid_yaml_syntax_names_its_line(tmp_path: Path) -> None:
    p = write(tmp_path, """\
        name: t
        version: 1
        criteria:
          - name: accuracy
            description: d
           levels: {1: a}
        """)
    with pytest.raises(JudgekitError) as info:
        load_rubric(p)
    assert str(info.value).startswith(f"{p}:6: invalid YAML: ")
    assert info.value.line == 6
    assert info.value.path == str(p)


def test_invalid_yaml_unclosed_flow(tmp_path: Path) -> None:
    p = write(tmp_path, "name: t\nversion: 1\ncriteria: [\n  {name: a,\n")
    with pytest.raises(JudgekitError, match=r"invalid YAML") as info:
        load_rubric(p)
    assert info.value.line == 5  # end of the stream, after the 4th line


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "", "42\n"])
def test_non_mapping_file(tmp_path: Path, text: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(JudgekitError) as info:
        load_rubric(p)
    assert str(info.value) == f"{p}:1: a rubric file must be a YAML mapping (name, version, criteria, ...)"


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.yaml"
    with pytest.raises(JudgekitError) as info:
        load_rubric(p)
    assert str(info.value) == f"{p}: file not found (shipped rubrics, usable by name: forge, general, robustmad)"


def test_not_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(JudgekitError, match="cannot read file"):
        load_rubric(p)


def test_version_number_becomes_text(tmp_path: Path) -> None:
    r = load_rubric(write(tmp_path, minimal(version="2.5")))
    assert r.version == "2.5"
    r = load_rubric(write(tmp_path, minimal(version="3")))
    assert r.version == "3"


def test_levels_are_sorted(tmp_path: Path) -> None:
    r = load_rubric(write(tmp_path, minimal(criteria="\n  - name: accuracy\n    description: d\n"
                                                      "    levels: {5: e, 3: c, 1: a, 4: d, 2: b}")))
    assert list(r.criteria[0].levels) == [1, 2, 3, 4, 5]
    assert r.criteria[0].levels[5] == "e"


def test_direct_validation_reports_cross_field_problems() -> None:
    data = {"name": "t", "version": "1", "criteria": [{"name": "a", "description": "d", "levels": {1: "x"}}],
            "overall": {"method": "weighted_mean"}}
    with pytest.raises(ValidationError, match=r"criteria\.0\.levels: missing descriptor"):
        Rubric.model_validate(data)


# ---- scales and conditions ----------------------------------------------------------------------------


def test_scale_forms() -> None:
    assert Scale.model_validate([0, 3]).levels == [0, 1, 2, 3]
    assert Scale.model_validate({"min": 2, "max": 4}).levels == [2, 3, 4]
    assert Scale().levels == [1, 2, 3, 4, 5]
    with pytest.raises(ValidationError, match="greater than min"):
        Scale.model_validate([3, 3])
    with pytest.raises(ValidationError, match=r"\[min, max\]"):
        Scale.model_validate([1, 2, 3])
    with pytest.raises(ValidationError, match="at most 101 levels"):
        Scale.model_validate([0, 101])
    assert Scale.model_validate([0, 100]).levels[-1] == 100


@pytest.mark.parametrize(("text", "field", "op", "value"), [
    ("overall >= 3", "overall", ">=", 3.0),
    ("overall>=3", "overall", ">=", 3.0),
    ("  technical_accuracy   <   2.5 ", "technical_accuracy", "<", 2.5),
    ("a == -1", "a", "==", -1.0),
    ("a != 0", "a", "!=", 0.0),
    ("a > 4", "a", ">", 4.0),
    ("a <= 4", "a", "<=", 4.0),
])
def test_condition_parsing(text: str, field: str, op: str, value: float) -> None:
    c = Condition.model_validate(text)
    assert (c.field, c.op, c.value) == (field, op, value)


@pytest.mark.parametrize("text", [
    "overall => 3", "overall = 3", "overall >= three", "overall", ">= 3", "3 >= overall", "overall >= 3 and a",
    "overall >= 1e3", "", "over all >= 3", "overall >= 3.",
])
def test_condition_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValidationError, match="cannot read condition"):
        Condition.model_validate(text)


def test_condition_holds_and_str() -> None:
    c = Condition.model_validate("overall >= 3")
    assert c.holds({"overall": 3.0})
    assert c.holds({"overall": 4.5})
    assert not c.holds({"overall": 2.99})
    assert str(c) == "overall >= 3"
    assert str(Condition.model_validate("a < 2.5")) == "a < 2.5"
    assert not Condition.model_validate("a != 2").holds({"a": 2})
    assert Condition.model_validate("a == 2").holds({"a": 2.0})
    with pytest.raises(KeyError):
        c.holds({"other": 5})


# ---- derived views ------------------------------------------------------------------------------------


def test_weighted_mean_overall() -> None:
    r = load_rubric(RUBRICS / "general.yaml")  # correctness weight 2, completeness 1, clarity 1
    assert r.compute_overall({"correctness": 5, "completeness": 1, "clarity": 3}) == pytest.approx(3.5)
    assert r.compute_overall({"correctness": 2, "completeness": 4, "clarity": 4}) == pytest.approx(3.0)
    assert r.compute_overall({"correctness": 1, "completeness": 1, "clarity": 1}) == pytest.approx(1.0)


def test_judge_overall_is_taken_from_scores() -> None:
    r = load_rubric(RUBRICS / "robustmad.yaml")
    scores = {"technical_accuracy": 5, "comprehensiveness": 5, "relevance": 5, "style_and_clarity": 5,
              "overall": 2}
    assert r.compute_overall(scores) == 2


def test_pass_rule_and_flags() -> None:
    r = load_rubric(RUBRICS / "general.yaml")
    assert r.passed({"overall": 3.0, "correctness": 1})
    assert not r.passed({"overall": 2.75, "correctness": 5})
    assert r.derive_flags({"overall": 3, "correctness": 4}) == {"is_correct": True}
    assert r.derive_flags({"overall": 3, "correctness": 3.5}) == {"is_correct": False}
    m = load_rubric(RUBRICS / "robustmad.yaml")
    assert m.derive_flags({"technical_accuracy": 3, "overall": 1}) == {"is_accurate": True}
    assert m.derive_flags({"technical_accuracy": 2, "overall": 5}) == {"is_accurate": False}


def test_custom_pass_rule_on_a_criterion(tmp_path: Path) -> None:
    r = load_rubric(write(tmp_path, minimal(**{"pass": "accuracy > 4", "flags": "\n  low: overall < 2"})))
    assert r.passed({"accuracy": 5, "overall": 1})
    assert not r.passed({"accuracy": 4, "overall": 5})
    assert r.derive_flags({"accuracy": 1, "overall": 1.5}) == {"low": True}


def test_default_pass_rule(tmp_path: Path) -> None:
    r = load_rubric(write(tmp_path, minimal()))
    assert str(r.pass_rule) == "overall >= 3"
    assert r.flags == {}


def test_reply_schema_judge_overall() -> None:
    r = load_rubric(RUBRICS / "robustmad.yaml")
    schema = r.reply_schema()
    keys = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity", "overall"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == [*keys, "rationale"]
    assert list(schema["properties"]) == [*keys, "rationale"]
    for k in keys:
        assert schema["properties"][k] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert schema["properties"]["rationale"] == {"type": "string"}


def test_reply_schema_weighted_mean_and_own_scales(tmp_path: Path) -> None:
    r = load_rubric(write(tmp_path, """\
        name: t
        version: 1
        scale: [1, 5]
        criteria:
          - name: accuracy
            description: d
            scale: {min: 0, max: 2}
            levels: {0: z, 1: a, 2: b}
          - name: clarity
            description: d
            levels: {1: a, 2: b, 3: c, 4: d, 5: e}
        overall:
          method: weighted_mean
        """))
    schema = r.reply_schema()
    assert schema["required"] == ["accuracy", "clarity", "rationale"]
    assert "overall" not in schema["properties"]
    assert schema["properties"]["accuracy"] == {"type": "integer", "minimum": 0, "maximum": 2}
    assert schema["properties"]["clarity"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert r.scale_of("accuracy").levels == [0, 1, 2]
    assert r.scale_of("overall").levels == [1, 2, 3, 4, 5]
    with pytest.raises(KeyError):
        r.scale_of("nope")


def test_fingerprint_changes_when_a_descriptor_changes(tmp_path: Path) -> None:
    text = (RUBRICS / "robustmad.yaml").read_text(encoding="utf-8")
    a = load_rubric(write(tmp_path, text, "a.yaml"))
    b = load_rubric(write(tmp_path, text, "b.yaml"))
    assert a.fingerprint == b.fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint)
    changed = text.replace("5: Every sentence serves the question.", "5: Every sentence serves the question!")
    assert changed != text
    c = load_rubric(write(tmp_path, changed, "c.yaml"))
    assert c.fingerprint != a.fingerprint
    # comments and layout do not change it; content elsewhere (an example's rationale) does
    d = load_rubric(write(tmp_path, "# another comment\n" + text, "d.yaml"))
    assert d.fingerprint == a.fingerprint
    e = load_rubric(write(tmp_path, text.replace("leaves out that it is on the outer edge",
                                                 "omits the outer edge"), "e.yaml"))
    assert e.fingerprint != a.fingerprint


def test_fingerprint_changes_with_pass_rule_and_weight(tmp_path: Path) -> None:
    base = load_rubric(write(tmp_path, minimal(), "a.yaml")).fingerprint
    other_pass = load_rubric(write(tmp_path, minimal(**{"pass": "overall >= 4"}), "b.yaml")).fingerprint
    weighted = load_rubric(write(tmp_path, minimal(criteria=f"\n  - name: accuracy\n    description: d\n"
                                                            f"    weight: 2\n    levels: {LEVELS5}"),
                                 "c.yaml")).fingerprint
    assert len({base, other_pass, weighted}) == 3


# ---- `judgekit rubric check`, in process --------------------------------------------------------------


def test_cli_rubric_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    from judgekit.cli import main

    assert main(["rubric", "check", str(RUBRICS / "robustmad.yaml")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "rubric 'robustmad' version 1.0" in out
    assert "overall: judge" in out and "pass: overall >= 3" in out
    assert "is_accurate = technical_accuracy >= 3" in out
    assert "2 example(s)" in out


def test_cli_rubric_check_reports_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from judgekit.cli import main

    p = write(tmp_path, minimal(flags="\n  is_clear: clarity >= 3"))
    assert main(["rubric", "check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("judgekit: error: invalid rubric (1 problem(s)):")
    assert f"{p}:10: field 'flags.is_clear': flag 'is_clear' refers to unknown field 'clarity'" in err


@pytest.mark.parametrize(("rule", "outcome"), [("overall >= 9", "False"), ("overall >= 1", "True"),
                                               ("overall < 0", "False"), ("overall != 7", "True")])
def test_pass_rule_that_cannot_vary_is_an_error(tmp_path: Path, rule: str, outcome: str) -> None:
    msg = one_problem(write(tmp_path, minimal(**{"pass": rule})))
    assert msg.startswith("F:9: field 'pass': ")
    assert f"is {outcome} for every score on the scale" in msg


def test_flag_that_cannot_vary_is_an_error(tmp_path: Path) -> None:
    p = write(tmp_path, minimal(flags="\n  always: accuracy >= 1\n  fine: accuracy >= 2.5"))
    msg = one_problem(p)
    assert msg.startswith("F:10: field 'flags.always': ") and "True for every score" in msg
