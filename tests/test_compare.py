"""`judgekit compare` / `judgekit.compare`: two judgings of the same answers, on small results files whose
differences are known (flipped verdicts, swapped models, unmatched and unscored answers), and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest
from test_cli_e2e import flat, jk, write_jsonl

import judgekit
from judgekit.io.errors import JudgekitError

N = 20


def _row(i: int, model: str, overall: float | None, judge: str = "judge/a", cond: str = "clean") -> dict[str, Any]:
    base = {"id": f"q{i}", "model": model, "condition": cond, "category": "cA" if i % 2 else "cB", "judge": judge,
            "rubric": "robustmad", "rubric_version": "1.0"}
    if overall is None:
        return {**base, "status": "unscored", "reason": "invalid reply", "scores": {}, "overall": None,
                "passed": None}
    samples = ([{"sample": 0, "status": "scored", "scores": {"relevance": int(overall), "overall": int(overall)}}]
               if overall == int(overall) else [])
    return {**base, "status": "scored", "scores": {"relevance": overall}, "overall": overall, "passed": overall >= 3,
            "samples": samples}


def _overalls(n_pass: int, offset: int = 0) -> list[float]:
    """N integer overall scores, the first ``n_pass`` passing (3-5), the rest failing (1-2)."""
    return [float(3 + (i + offset) % 3) if i < n_pass else float(1 + (i + offset) % 2) for i in range(N)]


def _run(scores: dict[str, list[float | None]], judge: str = "judge/a") -> list[dict[str, Any]]:
    return [_row(i, m, s, judge) for m, values in scores.items() for i, s in enumerate(values)]


A_SCORES: dict[str, list[float | None]] = {"m1": _overalls(15), "m2": _overalls(10, 1), "m3": _overalls(5, 2)}


def test_identical_runs(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES))
    b = write_jsonl(tmp_path / "b.jsonl", _run(A_SCORES, judge="judge/b"))
    comp = judgekit.compare(a, b, boot=300)
    assert comp.judge_a == "judge/a" and comp.judge_b == "judge/b"
    assert [m.model for m in comp.models] == ["m1", "m2", "m3"]
    for m in comp.models:
        assert m.n == N and m.pass_diff == 0 and m.overall_diff == 0
        assert m.pass_ci == (0, 0) and m.overall_ci == (0, 0) and m.mcnemar_p == 1 and m.wilcoxon_p == 1
        assert m.rank_a == m.rank_b and m.rank_change == 0
    assert [m.rank_a for m in comp.models] == [1, 2, 3]
    ag = comp.agreement
    assert ag.n == 3 * N and ag.kappa == pytest.approx(1) and ag.percent == 1
    assert ag.weighted_kappa == pytest.approx(1) and ag.spearman == pytest.approx(1)
    r = comp.result
    assert (r.matched, r.only_a, r.only_b, r.unscored, r.compared) == (3 * N, 0, 0, 0, 3 * N)


def test_flipped_verdicts_exact_difference_and_mcnemar(tmp_path: Path) -> None:
    b_scores = {m: list(v) for m, v in A_SCORES.items()}
    flips = [0, 1, 2, 3, 4, 10, 12]  # m2: items 0-4 pass under A (-> fail), 10 and 12 fail (-> pass)
    for i in flips:
        b_scores["m2"][i] = 2.0 if A_SCORES["m2"][i] >= 3 else 4.0  # type: ignore[operator]
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES))
    b = write_jsonl(tmp_path / "b.jsonl", _run(b_scores, judge="judge/b"))
    comp = judgekit.compare(a, b, boot=2000, seed=3)
    m2 = next(m for m in comp.models if m.model == "m2")
    assert (m2.a_only_pass, m2.b_only_pass) == (5, 2)
    assert m2.pass_a == pytest.approx(10 / N) and m2.pass_b == pytest.approx(7 / N)
    assert m2.pass_diff == pytest.approx(-3 / N)
    assert m2.mcnemar_p == pytest.approx(binomtest(2, 7, 0.5).pvalue)
    assert m2.pass_ci[0] <= m2.pass_diff <= m2.pass_ci[1] and m2.pass_ci[0] < m2.pass_ci[1]
    oa = np.array(A_SCORES["m2"], float)
    ob = np.array(b_scores["m2"], float)
    assert m2.overall_diff == pytest.approx(float((ob - oa).mean()))
    assert m2.overall_ci[0] <= m2.overall_diff <= m2.overall_ci[1]
    assert 0 < m2.wilcoxon_p < 1  # the exact conditional test itself is checked in the stats tests
    for m in comp.models:
        if m.model != "m2":
            assert m.pass_diff == 0 and m.mcnemar_p == 1
    # agreement over the 60 answers: 53 equal verdicts
    ag = comp.agreement
    assert ag.percent == pytest.approx(53 / 60)
    pa = np.array([s >= 3 for v in A_SCORES.values() for s in v], float)  # type: ignore[operator]
    pb = np.array([s >= 3 for v in b_scores.values() for s in v], float)  # type: ignore[operator]
    po, pe = float((pa == pb).mean()), pa.mean() * pb.mean() + (1 - pa.mean()) * (1 - pb.mean())
    assert ag.kappa == pytest.approx((po - pe) / (1 - pe))
    # the same seed gives the same intervals
    again = judgekit.compare(a, b, boot=2000, seed=3)
    assert again.to_dict() == comp.to_dict()


def test_rank_change_when_two_models_swap(tmp_path: Path) -> None:
    b_scores = {"m1": _overalls(10, 1), "m2": _overalls(15), "m3": _overalls(5, 2)}
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES))
    b = write_jsonl(tmp_path / "b.jsonl", _run(b_scores, judge="judge/b"))
    comp = judgekit.compare(a, b, boot=300)
    ranks = {m.model: (m.rank_a, m.rank_b, m.rank_change) for m in comp.models}
    assert ranks == {"m1": (1, 2, -1), "m2": (2, 1, 1), "m3": (3, 3, 0)}
    d = {m["model"]: m for m in comp.to_dict()["models"]}
    assert d["m1"]["rank_change"] == -1 and d["m2"]["pass_rate_diff"] == pytest.approx(0.25)


def test_unmatched_and_unscored_are_counted_not_failed(tmp_path: Path) -> None:
    a_rows = _run(A_SCORES)
    a_rows.append(_row(99, "m1", 4.0))  # in A only
    b_scores = {m: list(v) for m, v in A_SCORES.items()}
    b_scores["m1"][0] = None  # unscored in B (passed under A): excluded, not a fail
    b_scores["m1"][1] = None
    b_rows = _run(b_scores, judge="judge/b")
    a_rows[2] = _row(2, "m1", None)  # unscored in A
    b_rows += [_row(98, "m1", 4.0, "judge/b"), _row(97, "m3", 1.0, "judge/b")]  # in B only
    a = write_jsonl(tmp_path / "a.jsonl", a_rows)
    b = write_jsonl(tmp_path / "b.jsonl", b_rows)
    comp = judgekit.compare(a, b, boot=300)
    r = comp.result
    assert (r.matched, r.only_a, r.only_b) == (3 * N, 1, 2)
    assert (r.unscored_a, r.unscored_b, r.unscored, r.compared) == (1, 2, 3, 3 * N - 3)
    m1 = next(m for m in comp.models if m.model == "m1")
    assert (m1.matched, m1.unscored, m1.n) == (N, 3, N - 3)
    assert m1.pass_diff == 0 and m1.pass_a == pytest.approx(12 / 17)
    counts = comp.to_dict()["counts"]
    assert counts == {"matched": 60, "only_a": 1, "only_b": 2, "unscored_a": 1, "unscored_b": 2,
                      "unscored_either": 3, "compared": 57}


def test_fractional_overall_has_no_weighted_kappa(tmp_path: Path) -> None:
    scores = {"m1": [s + 0.5 if s < 5 else s for s in _overalls(12)]}  # type: ignore[operator]
    a = write_jsonl(tmp_path / "a.jsonl", _run(scores))  # type: ignore[arg-type]
    b = write_jsonl(tmp_path / "b.jsonl", _run(scores, judge="judge/b"))  # type: ignore[arg-type]
    comp = judgekit.compare(a, b, boot=100)
    assert comp.agreement.weighted_kappa is None and "not all integers" in comp.agreement.note
    assert comp.to_dict()["agreement"]["overall_quadratic_kappa"] is None


def test_several_judges_need_a_pick(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES) + _run(A_SCORES, judge="judge/x"))
    b = write_jsonl(tmp_path / "b.jsonl", _run(A_SCORES, judge="judge/b"))
    with pytest.raises(JudgekitError, match=r"a\.jsonl.*several judges.*--judge-a"):
        judgekit.compare(a, b)
    comp = judgekit.compare(a, b, judge_a="judge/x", boot=100)
    assert comp.judge_a == "judge/x" and comp.result.compared == 3 * N
    with pytest.raises(JudgekitError, match=r"b\.jsonl.*judge/zz"):
        judgekit.compare(a, b, judge_a="judge/x", judge_b="judge/zz")


def test_exported() -> None:
    assert "compare" in judgekit.__all__ and judgekit.compare is judgekit.api.compare
    assert "compare" in judgekit.api.__all__


# ---- the console script ------------------------------------------------------------------------------------

def test_cli_prints_and_writes(tmp_path: Path) -> None:
    b_scores = {"m1": _overalls(10, 1), "m2": _overalls(15), "m3": _overalls(5, 2)}
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES))
    b = write_jsonl(tmp_path / "b.jsonl", _run(b_scores, judge="judge/b"))
    out_json, out_md = tmp_path / "out" / "cmp.json", tmp_path / "cmp.md"
    r = jk("compare", a, b, "--boot", "200", "--seed", "1", "--json", out_json, "--markdown", out_md)
    assert r.returncode == 0, r.stderr
    text = flat(r.stdout)
    assert "McNemar" in text and "Cohen's kappa" in text and "Spearman" in text and "m2" in text
    assert f"comparison -> {out_json}" in text
    data = json.loads(out_json.read_text())
    assert data == judgekit.compare(a, b, boot=200, seed=1).to_dict()
    assert data["agreement"]["level"] == "sample" and data["counts"]["compared"] == 3 * N
    md = out_md.read_text()
    assert md.startswith("# Comparison of two runs") and "| m1 |" in md and "Wilcoxon p" in md


@pytest.mark.parametrize("case", ["missing", "several_judges", "no_match", "bad_json_suffix"])
def test_cli_bad_input_exit_2_nothing_written(tmp_path: Path, case: str) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES))
    b = write_jsonl(tmp_path / "b.jsonl", _run(A_SCORES, judge="judge/b"))
    out_json, out_md = tmp_path / "cmp.json", tmp_path / "cmp.md"
    named = {"missing": "gone.jsonl", "several_judges": "a.jsonl", "no_match": "b.jsonl",
             "bad_json_suffix": "cmp.txt"}[case]
    json_out: Path = out_json
    if case == "missing":
        b = tmp_path / "gone.jsonl"
    elif case == "several_judges":
        write_jsonl(a, _run(A_SCORES) + _run(A_SCORES, judge="judge/x"))
    elif case == "no_match":
        write_jsonl(b, [_row(i, "other", 4.0, "judge/b") for i in range(3)])
    else:
        json_out = tmp_path / "cmp.txt"
    r = jk("compare", a, b, "--json", json_out, "--markdown", out_md)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert named in r.stderr and "Traceback" not in r.stderr
    assert not out_json.exists() and not out_md.exists() and not (tmp_path / "cmp.txt").exists()


def test_results_objects_and_bad_options(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", _run(A_SCORES))
    b = write_jsonl(tmp_path / "b.jsonl", _run(A_SCORES, judge="judge/b"))
    comp = judgekit.compare(judgekit.Results.read(a), judgekit.Results.read(b), boot=100)
    assert comp.source_a == "run A" and comp.result.compared == 3 * N
    for kwargs in ({"boot": 0}, {"seed": -1}, {"boot": 1.5}):
        with pytest.raises(JudgekitError, match="whole number"):
            judgekit.compare(a, b, **kwargs)  # type: ignore[arg-type]
