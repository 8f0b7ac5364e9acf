"""The prompt settings of ``judgekit generate`` through judging and reporting (issue 15.3): each setting is its
own entry "MODEL [SETTING]", one responses file may hold several settings, and ``judgekit report`` gives each
setting's paired gain over the baseline setting (terminal, JSON, Markdown, HTML); and the fact-check section of
the report (issue 15.1): per model and check, passed / checked with Wilson intervals, in every output."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer

import judgekit
from judgekit.io.dataio import read_judgments, read_responses
from judgekit.io.errors import JudgekitError
from judgekit.io.records import CheckResult, Judgment, entry_name, setting_label
from judgekit.reporting.tables import check_rates
from judgekit.stats.paired_tests import paired_difference
from judgekit.stats.settings import compare_settings, setting_rows_to_dicts

ROOT = Path(__file__).resolve().parent.parent
FORGE = ROOT / "judgekit" / "sample_data" / "forge_sample" / "responses.jsonl"


def report_cli(*args: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "judgekit.cli", "report", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)


def gen(shots: str, knowledge: bool = False) -> dict[str, Any]:
    return {"generation": {"model": "m", "preset": "plain", "shots": shots, "knowledge": knowledge}}


def test_setting_names_and_entries() -> None:
    assert setting_label(None) is None and setting_label({"model": "m"}) is None
    assert [setting_label(gen(s)["generation"]) for s in ("0", "1", "3", "1+")] == ["0-shot", "1-shot", "3-shot",
                                                                                    "1-shot+"]
    assert setting_label(gen("1+", True)["generation"]) == "1-shot+ + knowledge"
    assert entry_name("m", None) == "m" and entry_name("m", "0-shot") == "m"
    assert entry_name("m", "1-shot+") == "m [1-shot+]"
    j = Judgment(id="1", model="m [1-shot+]", judge="j", status="unscored", setting="1-shot+")
    assert j.base_model == "m"
    assert Judgment(id="1", model="m [x]", judge="j", status="unscored").base_model == "m [x]"  # no setting: kept


def test_one_file_may_hold_several_settings_but_not_one_twice(tmp_path: Path) -> None:
    rows = [{"id": "q1", "model": "m", "question": "q", "reference": "r", "response": "a", "meta": gen(s)}
            for s in ("0", "1+")]
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r.setting for r in read_responses(f)] == ["0-shot", "1-shot+"]
    f.write_text("".join(json.dumps(r) + "\n" for r in [*rows, rows[1]]))
    with pytest.raises(JudgekitError) as err:
        read_responses(f)
    assert str(err.value).endswith(f"{f}:3: duplicate response: id='q1' model='m' condition=None setting='1-shot+' "
                                   "already given at 2")
    with pytest.raises(JudgekitError, match="setting='1-shot\\+' already given at responses\\[1\\]"):
        judgekit.judge([*rows, rows[1]], "robustmad", "openai/x", api_base="http://127.0.0.1:9/v1")


def _responses() -> list[dict[str, Any]]:
    """Twelve items answered by one model in 0-shot and 1-shot+, and by another in 0-shot only; the scripted
    judge scores by length (1 + characters // 40), and the 1-shot+ answers are longer on most items."""
    out = []
    for i in range(12):
        base = "x" * (30 + 17 * i)
        for shots, text in (("0", base), ("1+", base + "y" * (25 if i % 3 else 0))):
            out.append({"id": f"q{i:02d}", "model": "m", "question": "Any defect?", "reference": "a scratch",
                        "category": "bottle" if i % 2 else "screw", "meta": gen(shots),
                        "response": f"{text} [[script:bylength=40]]"})
        out.append({"id": f"q{i:02d}", "model": "other", "question": "Any defect?", "reference": "a scratch",
                    "meta": gen("0"), "response": f"{'z' * (40 + i)} [[script:bylength=40]]"})
    return out


@pytest.fixture
def settings_results(scripted_server: ScriptedServer, tmp_path: Path) -> Path:
    src = tmp_path / "responses.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _responses()))
    out = tmp_path / "results.jsonl"
    judgekit.judge(src, "robustmad", "openai/scripted", api_base=scripted_server.base_url, backend="lean",
                   store=tmp_path / "s.db", out=out)
    return out


def test_each_setting_is_its_own_entry_and_its_gain_is_paired(settings_results: Path) -> None:
    js = read_judgments(settings_results)
    assert sorted({j.model for j in js}) == ["m", "m [1-shot+]", "other"]
    assert {j.setting for j in js if j.model == "m [1-shot+]"} == {"1-shot+"}
    rep = judgekit.report(settings_results)
    assert [e["model"] for e in rep.leaderboard if e["model"].startswith("m")] != []
    assert {e["model"] for e in rep.leaderboard} == {"m", "m [1-shot+]", "other"}
    rows = {(s.row.category, s.row.criterion): s for s in rep.settings}
    assert {s.row.model for s in rep.settings} == {"m"}  # "other" has one setting: nothing to compare
    overall = rows[("all", "overall")]
    by = {(j.setting, j.id): j for j in js if j.base_model == "m"}
    ids = sorted({i for _, i in by})
    base = [by[("0-shot", i)].overall for i in ids]
    after = [by[("1-shot+", i)].overall for i in ids]
    direct = paired_difference(base, after)  # the same bootstrap and test, computed directly
    r = overall.row
    assert (r.condition, r.baseline, r.n) == ("1-shot+", "0-shot", 12)
    assert r.diff == pytest.approx(direct.diff) and r.diff > 0
    assert (r.ci_low, r.ci_high, r.p_value) == pytest.approx((direct.ci_low, direct.ci_high, direct.p_value))
    passed = rows[("all", "pass")].row
    d = paired_difference([float(by[("0-shot", i)].passed) for i in ids],
                          [float(by[("1-shot+", i)].passed) for i in ids], binary=True)
    assert (passed.diff, passed.p_value, passed.test) == (pytest.approx(d.diff), pytest.approx(d.p_value),
                                                          "mcnemar-exact")
    assert ("bottle", "overall") in rows and rows[("bottle", "overall")].row.n == 6


def test_settings_in_every_output(settings_results: Path, tmp_path: Path) -> None:
    out = {k: tmp_path / f"rep.{k}" for k in ("json", "md", "html")}
    r = report_cli(settings_results, "--json", out["json"], "--markdown", out["md"], "--html", out["html"])
    assert r.returncode == 0, r.stderr
    assert "Prompt settings: gain over the baseline setting" in r.stdout and "1-shot+" in r.stdout
    data = json.loads(out["json"].read_text())
    rows = data["settings"]
    assert rows == json.loads(json.dumps(setting_rows_to_dicts(judgekit.report(settings_results).settings)))
    overall = next(x for x in rows if x["category"] == "all" and x["criterion"] == "overall")
    assert (overall["model"], overall["setting"], overall["baseline"], overall["condition"]) == (
        "m", "1-shot+", "0-shot", "clean")
    md = out["md"].read_text()
    assert "## Prompt settings: gain over the baseline setting" in md and "| m | scripted |" in md.replace(
        "openai/scripted", "scripted")
    page = out["html"].read_text()
    i = rows.index(overall)
    cell = re.search(r'<td[^>]*data-field="diff" data-path="([^"]*)" data-value="([^"]*)"', page.split(
        "Prompt settings")[1])
    assert cell is not None
    paths = json.loads(cell.group(1).replace("&quot;", '"'))
    assert paths[0] == ["settings", i, "diff"]
    assert json.loads(cell.group(2).replace("&quot;", '"'))[0] == pytest.approx(overall["diff"])


def test_a_file_without_settings_has_no_settings_part(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    rows = [r for r in _responses() if r["model"] == "other"]
    res = judgekit.judge(rows, "robustmad", "openai/scripted", api_base=scripted_server.base_url, backend="lean",
                         store=tmp_path / "s.db")
    rep = judgekit.report(res)
    assert rep.settings == [] and "settings" not in rep.to_dict() and "Prompt settings" not in rep.markdown()
    assert compare_settings(res.judgments, ["accuracy"]) == []


# ---- fact checks in the report ----------------------------------------------------------------------------

def _checked(model: str, i: int, part: bool, bore: bool, reason: str = "") -> Judgment:
    return Judgment(id=f"f{i}", model=model, judge="j", status="scored", overall=4.0, passed=part, scores={"a": 4},
                    checks={"part_number": CheckResult(passed=part, gate=True, reason="" if part else "wrong id"),
                            "bore": CheckResult(passed=bore, reason=reason)})


def test_check_rates_count_each_answer_once_across_judges() -> None:
    js = [_checked("m", i, part=i != 0, bore=i % 2 == 0, reason="out of tolerance") for i in range(4)]
    js += [j.model_copy(update={"judge": "k"}) for j in js]  # a second judge: the same answers
    rows = {r["check"]: r for r in check_rates(js)}
    assert (rows["part_number"]["passed"], rows["part_number"]["checked"], rows["part_number"]["gate"]) == (3, 4, True)
    assert rows["bore"]["failed_reasons"] == [["out of tolerance", 2]] and not rows["bore"]["gate"]
    assert (rows["(any gate)"]["passed"], rows["(any gate)"]["checked"]) == (3, 4)
    lo, hi = rows["bore"]["wilson_ci"]
    # Wilson 95 % for 2/4, by hand: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z = 1.959963984540054
    centre, half = (0.5 + z * z / 8) / (1 + z * z / 4), z * math.sqrt(0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert check_rates([Judgment(id="1", model="m", judge="j", status="unscored")]) == []


def test_the_report_shows_the_fact_checks(scripted_server: ScriptedServer, tmp_path: Path) -> None:
    responses = [r.model_copy(update={"response": f"{r.response} [[script:valid=4]]"}) for r in read_responses(FORGE)]
    out = tmp_path / "results.jsonl"
    judgekit.judge(responses, "forge", "openai/scripted", api_base=scripted_server.base_url, backend="lean",
                   store=tmp_path / "s.db", out=out)
    files = {k: tmp_path / f"rep.{k}" for k in ("json", "md", "html")}
    r = report_cli(out, "--json", files["json"], "--markdown", files["md"], "--html", files["html"])
    assert r.returncode == 0, r.stderr
    assert "Fact checks (deterministic, no judge call)" in r.stdout and "part_number (gate)" in r.stdout
    rows = json.loads(files["json"].read_text())["checks"]
    got = {(x["model"], x["check"]): (x["passed"], x["checked"]) for x in rows}
    assert got[("careful-llm", "part_number")] == (8, 8) and got[("sloppy-llm", "part_number")] == (6, 8)
    assert got[("sloppy-llm", "bore_diameter")] == (4, 8) and got[("sloppy-llm", "(any gate)")] == (6, 8)
    assert "## Fact checks (no judge call)" in files["md"].read_text()
    page = files["html"].read_text()
    assert '<section id="checks">' in page and 'href="#checks"' in page
    section = page.split('<section id="checks">')[1].split("</section>")[0]
    cells = re.findall(r'data-field="passed" data-path="([^"]*)" data-value="([^"]*)"', section)
    assert len(cells) == len(rows)
    for path, value in cells:
        (p1, p2), (passed, checked) = json.loads(path.replace("&quot;", '"')), json.loads(value)
        assert rows[p1[1]]["passed"] == passed and rows[p2[1]]["checked"] == checked


def test_the_setting_gains_are_one_family_for_the_correction(settings_results: Path) -> None:
    from judgekit.stats.multiple import adjust_pvalues

    for method in ("holm", "bh", "none"):
        rows = judgekit.report(settings_results, correction=method).settings
        raw = [s.row.p_value for s in rows]
        tested = [p for p in raw if not math.isnan(p)]
        assert len(tested) >= 6  # overall, pass and the criteria, over all and two categories
        want = adjust_pvalues(raw, method)
        got = [s.row.p_adjusted for s in rows]
        assert all((math.isnan(a) and math.isnan(b)) or a == pytest.approx(b) for a, b in zip(got, want, strict=True))
        assert {s.row.family_size for s in rows} == {len(tested)} and {s.row.correction for s in rows} == {method}
        assert all(s.significant_adjusted == (s.row.p_adjusted < 0.05) for s in rows)
