"""Multiple-comparison control (:mod:`judgekit.stats.multiple`): Holm and Benjamini-Hochberg checked against
statsmodels, and the adjusted p-values in the robustness, compare, MCQ-gain and HTML tables and on the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from test_cli_e2e import flat, jk, write_jsonl

import judgekit
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment
from judgekit.stats.multiple import adjust_pvalues, check_correction, family_text, is_significant
from judgekit.stats.robustness import compare_conditions, robustness_markdown, robustness_table, rows_to_dicts

SAMPLE = Path(judgekit.__file__).parent / "sample_data" / "robustmad_sample" / "responses.jsonl"


# ---------------------------------------------------------------------------------------- the adjustments


def _vectors() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = [rng.uniform(size=n) for n in (1, 2, 5, 17, 60)]
    out += [rng.uniform(size=30) ** 4]  # many small ones
    out += [np.round(rng.uniform(size=40), 1)]  # heavy ties
    out += [np.array([0.01, 0.01, 0.01, 0.04, 0.04, 1.0, 1.0, 0.0])]  # ties, 0 and 1
    out += [np.array([0.2] * 10)]
    return out


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_matches_statsmodels(method: str, sm: str) -> None:
    for p in _vectors():
        ours = adjust_pvalues(p, method)
        ref = multipletests(p, method=sm)[1]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
        assert np.all(ours <= 1) and np.all(ours >= p - 1e-15)  # capped, never below the raw p
        order = np.argsort(p)  # monotone: a smaller raw p never gets a larger adjusted p
        assert np.all(np.diff(ours[order]) >= -1e-15)


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_nan_left_out_of_the_family(method: str, sm: str) -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=25) ** 2
    p[[0, 3, 11, 24]] = np.nan
    ours = adjust_pvalues(p, method)
    ok = ~np.isnan(p)
    assert np.all(np.isnan(ours[~ok]))
    np.testing.assert_allclose(ours[ok], multipletests(p[ok], method=sm)[1], rtol=0, atol=1e-12)  # family of 21


def test_none_empty_all_nan_and_refusals() -> None:
    p = [0.5, math.nan, 0.01]
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), np.array(p))
    assert adjust_pvalues([], "holm").shape == (0,)
    assert np.all(np.isnan(adjust_pvalues([math.nan, math.nan], "bh")))
    assert check_correction("BH") == "bh"
    with pytest.raises(ValueError, match="holm, bh, none"):
        adjust_pvalues([0.1], "bonferroni")
    with pytest.raises(ValueError, match="within"):
        adjust_pvalues([1.5], "holm")
    assert is_significant(0.049) and not is_significant(0.05) and not is_significant(math.nan)
    assert not is_significant(None)
    assert "Holm-Bonferroni" in family_text("holm", 12, "x") and "12 tests" in family_text("holm", 12, "x")
    assert "false discovery rate" in family_text("bh", 3, "x")


# ------------------------------------------------------------------------------------- robustness tables


def _null_judgments(n_models: int = 10, n_items: int = 30, seed: int = 0) -> list[Judgment]:
    """Clean and degraded judgments drawn from the same distribution: every difference is noise."""
    rng = np.random.default_rng(seed)
    js = []
    for m in range(n_models):
        for i in range(n_items):
            for cond in ("clean", "blur", "dark"):
                s = float(rng.integers(1, 6))
                js.append(Judgment(id=f"q{i}", model=f"m{m}", judge="j", condition=cond, rubric="r",
                                   rubric_version="1", status="scored", scores={"acc": s}, overall=s,
                                   passed=s >= 3))
    return js


def test_many_null_tests_far_fewer_stars_after_holm() -> None:
    """40 null comparisons per metric: raw p < 0.05 fires by chance; Holm keeps the family-wise rate."""
    js = _null_judgments()
    raw = compare_conditions(js, ["acc"], n_boot=100, correction="none")
    holm = compare_conditions(js, ["acc"], n_boot=100)  # the default
    tested = [r for r in raw if not math.isnan(r.p_value)]
    assert len(tested) >= 40
    raw_stars = sum(r.significant_adjusted for r in raw)
    holm_stars = sum(r.significant_adjusted for r in holm)
    assert raw_stars >= 3 and holm_stars == 0, (raw_stars, holm_stars)
    assert all(r.correction == "holm" and r.family_size == len(tested) for r in holm)
    assert all(a.p_adjusted >= a.p_value for a in holm if not math.isnan(a.p_value))
    assert [r.p_value for r in raw] == [r.p_value for r in holm]  # the raw p-values are untouched
    bh = compare_conditions(js, ["acc"], n_boot=100, correction="bh")
    assert all(b.p_adjusted <= h.p_adjusted + 1e-12 for b, h in zip(bh, holm, strict=True)
               if not math.isnan(b.p_value))  # BH is never stricter than Holm
    md = robustness_markdown(holm)
    assert "| p | p adj | test |" in md and "Holm-Bonferroni (family-wise error rate) over a family of" in md
    assert f"{len(tested)} tests" in md and "*" not in md.split("\n\n")[0].replace("**", "")
    d = rows_to_dicts(holm)[0]
    assert {"p_adjusted", "correction", "family_size", "family", "significant_adjusted"} <= set(d)
    json.dumps(rows_to_dicts(holm))  # JSON-ready


def test_stars_follow_the_adjusted_p() -> None:
    """A real effect stays starred after Holm; the rich table shows the p adj column and the family."""
    js = _null_judgments(n_models=2, n_items=40, seed=3)
    js = [j.model_copy(update={"scores": {"acc": 1.0}, "overall": 1.0, "passed": False})
          if j.model == "m0" and j.condition == "dark" else j for j in js]
    rows = compare_conditions(js, ["acc"], n_boot=200)
    dark = next(r for r in rows if r.model == "m0" and r.condition == "dark" and r.criterion == "overall")
    assert dark.p_adjusted < 0.001 and dark.significant_adjusted and dark.significant
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(robustness_table(rows, metrics=("overall",)))
    text = flat(console.export_text())
    assert "p adj" in text and "family-wise error rate" in text and "shown here" in text


def test_bad_correction_refused() -> None:
    with pytest.raises(ValueError, match="correction"):
        compare_conditions(_null_judgments(1, 6), ["acc"], correction="bogus")


# ----------------------------------------------------------------------------------------------- the CLI


def _sample_results(tmp: Path) -> Path:
    """The shipped sample's answers judged on clean images and on a low-light copy (scores drawn at random, the
    dark ones one point lower for the strong model)."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for r in (json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()):
        for cond in ("clean", "low_light", "motion_blur"):
            s = int(rng.integers(2, 6))
            if cond == "low_light" and r["model"] == "strong-vlm":
                s = 1
            rows.append({"id": r["id"], "model": r["model"], "category": r["category"], "condition": cond,
                         "judge": "judge/a", "rubric": "robustmad", "rubric_version": "1.0", "status": "scored",
                         "scores": {"relevance": s}, "overall": float(s), "passed": s >= 3})
    return write_jsonl(tmp / "results.jsonl", rows)


def test_report_correction_bh_on_sample_data(tmp_path: Path) -> None:
    results = _sample_results(tmp_path)
    md, js, html = tmp_path / "r.md", tmp_path / "r.json", tmp_path / "r.html"
    r = jk("report", results, "--correction", "bh", "--boot", "200", "--markdown", md, "--json", js, "--html", html)
    assert r.returncode == 0, r.stderr
    out = flat(r.stdout)
    assert "p adj" in out and "Benjamini-Hochberg (false discovery rate)" in out
    body = md.read_text()
    assert "| p | p adj | test |" in body and "Benjamini-Hochberg" in body
    rows = json.loads(js.read_text())["robustness"]
    assert rows and all(x["correction"] == "bh" for x in rows)
    tested = [x for x in rows if x["p_value"] is not None]
    assert all(x["family_size"] == len(tested) for x in rows)
    api = judgekit.report(results, boot=200, correction="bh")
    ours = adjust_pvalues([x.p_value for x in api.robustness], "bh")
    np.testing.assert_allclose([x["p_adjusted"] if x["p_adjusted"] is not None else np.nan for x in rows], ours)
    page = html.read_text()
    assert "p adj" in page and "Benjamini-Hochberg" in page
    # the default is Holm
    r = jk("report", results, "--boot", "200", "--json", js)
    assert r.returncode == 0 and all(x["correction"] == "holm" for x in json.loads(js.read_text())["robustness"])


def test_bogus_correction_exits_2_naming_the_flag(tmp_path: Path) -> None:
    results = _sample_results(tmp_path)
    for cmd in (["report", results], ["compare", results, results]):
        r = jk(*cmd, "--correction", "bogus")
        assert r.returncode == 2 and "--correction" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with pytest.raises(JudgekitError) as err:
        judgekit.report(results, correction="bogus")
    assert err.value.field == "--correction"


def test_compare_adjusts_every_models_two_tests(tmp_path: Path) -> None:
    results = _sample_results(tmp_path)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    flipped = [{**x, "passed": not x["passed"]} if x["model"] == "weak-vlm" and x["condition"] == "clean" else x
               for x in rows]
    other = write_jsonl(tmp_path / "other.jsonl", flipped)
    comp = judgekit.compare(results, other, boot=100)
    r = comp.result
    raw = [p for m in r.models for p in (m.mcnemar_p, m.wilcoxon_p)]
    adj = [p for m in r.models for p in (m.mcnemar_p_adj, m.wilcoxon_p_adj)]
    np.testing.assert_allclose(adj, multipletests(raw, method="holm")[1])
    assert r.correction == "holm" and r.family_size == 2 * len(r.models)
    d = comp.to_dict()
    assert d["correction"] == "holm" and "McNemar and Wilcoxon of every model" in d["family"]
    assert "mcnemar_p_adj" in d["models"][0] and "wilcoxon_p_adj" in d["models"][0]
    md = comp.markdown()
    assert "McNemar p adj" in md and "Wilcoxon p adj" in md
    none = judgekit.compare(results, other, boot=100, correction="none").result
    assert [m.mcnemar_p_adj for m in none.models] == [m.mcnemar_p for m in none.models]
    out = jk("compare", results, other, "--boot", "100", "--correction", "bh")
    assert out.returncode == 0, out.stderr
    assert "Benjamini-Hochberg" in flat(out.stdout) and "p adj" in flat(out.stdout)


def test_judge_flag_and_mcq_gains() -> None:
    r = jk("judge", "--help")
    assert r.returncode == 0 and "--correction" in r.stdout and "holm" in r.stdout
    from judgekit.api.pipeline import correct_gains
    from judgekit.generation.mcq_settings import GAIN_HEAD, SettingGain, gain_rows

    p = [0.001, 0.02, 0.04, math.nan, 0.3]
    gains = [SettingGain(model="m", condition=None, baseline="0-shot", setting=f"s{k}", n=10, baseline_accuracy=0.5,
                         accuracy=0.6, diff=0.1, ci_low=0.0, ci_high=0.2, p_value=x) for k, x in enumerate(p)]
    out = correct_gains(gains)
    ok = [x for x in p if not math.isnan(x)]
    np.testing.assert_allclose([g.p_adjusted for g in out if not math.isnan(g.p_value)],
                               multipletests(ok, method="holm")[1])
    assert math.isnan(out[3].p_adjusted) and all(g.family_size == 4 and g.correction == "holm" for g in out)
    rows = gain_rows(out)
    assert GAIN_HEAD[-1] == "p adj" and rows[0][-1].endswith(" *") and rows[2][-1] == "0.08" and rows[3][-1] == "-"
