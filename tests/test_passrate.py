"""Unit tests of judgekit.stats.passrate: per-group pass rates (Wilson, i.i.d. and cluster bootstrap intervals) and
prediction-powered inference of the human pass rate (PPI, PPI++), with a seeded coverage simulation."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from scipy.stats import binomtest, norm

from judgekit.io.records import Judgment
from judgekit.stats.passrate import (
    PassRate,
    PPIEstimate,
    _ppi_core,
    pass_rate_table,
    pass_rates,
    ppi_pass_rate,
    ppi_pass_rates,
    ppi_table,
)
from judgekit.stats.robustness import bootstrap_mean_ci

Z95 = float(norm.ppf(0.975))


def J(i: str | int, passed: bool | None, *, model: str = "m", judge: str = "j", cat: str | None = "general",
      cond: str | None = None, overall: float | None = None) -> Judgment:
    """A scored judgment (overall 4 for a pass, 2 for a fail unless given); ``passed=None``: unscored."""
    if passed is None:
        return Judgment(id=str(i), model=model, condition=cond, category=cat, judge=judge, status="unscored",
                        reason="parse error")
    if overall is None:
        overall = 4.0 if passed else 2.0
    return Judgment(id=str(i), model=model, condition=cond, category=cat, judge=judge, status="scored",
                    overall=overall, passed=passed)


def scipy_wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def slow_bootstrap(values: list[float], n_resamples: int, seed: int, confidence: float = 0.95) -> tuple[float, float]:
    """The documented scheme, one resample at a time: fresh default_rng(seed), values sorted (fails first),
    m indices drawn uniformly with replacement per resample, percentile bounds (linear quantiles)."""
    v = sorted(values)
    m = len(v)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, m, size=m)
        stats.append(sum(v[i] for i in idx) / m)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [a, 1 - a])
    return float(lo), float(hi)


def slow_cluster_bootstrap(items: dict[str, list[bool]], n_resamples: int, seed: int,
                           confidence: float = 0.95) -> tuple[float, float]:
    """Cluster bootstrap by item, one resample at a time: items sorted by id, K item indices drawn with
    replacement, rate = passes of the drawn items / their scored answers."""
    ids = sorted(items)
    k = len(ids)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, k, size=k)
        stats.append(sum(sum(items[ids[i]]) for i in idx) / sum(len(items[ids[i]]) for i in idx))
    a = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [a, 1 - a])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------ pass rates


def test_rates_counts_and_wilson_by_hand() -> None:
    js = [J(1, True), J(2, True), J(3, False), J(4, True), J(5, None),  # m: 3 of 4 scored pass, 1 unscored
          J(1, False, model="k"), J(2, None, model="k"), J(3, None, model="k"),  # k: 0 of 1
          J(1, None, model="z"), J(2, None, model="z")]  # z: nothing scored
    rows = pass_rates(js, n_resamples=200)
    assert [r.key for r in rows] == [("k",), ("m",), ("z",)]
    k, m, z = rows
    assert (m.n, m.scored, m.unscored, m.passed, m.rate) == (5, 4, 1, 3, 0.75)
    assert (m.wilson_low, m.wilson_high) == pytest.approx(scipy_wilson(3, 4), abs=1e-12)
    # closed form for 3/4: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    p, n = 0.75, 4
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    assert (m.wilson_low, m.wilson_high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert (m.wilson_low, m.wilson_high) == pytest.approx((0.300642, 0.954413), abs=1e-6)
    assert (k.n, k.scored, k.unscored, k.passed, k.rate) == (3, 1, 2, 0, 0.0)
    assert (k.wilson_low, k.wilson_high) == pytest.approx(scipy_wilson(0, 1), abs=1e-12)
    assert (k.boot_low, k.boot_high) == (0.0, 0.0) and "is a point" in k.note
    assert (z.n, z.scored, z.unscored, z.passed) == (2, 0, 2, 0)
    assert all(math.isnan(x) for x in (z.rate, z.wilson_low, z.wilson_high, z.boot_low, z.boot_high))
    assert z.note == "no scored answers"


def test_unscored_is_neither_pass_nor_fail() -> None:
    base = [J(i, i % 3 != 0) for i in range(30)]  # 20 of 30 pass
    # an unscored judgment that (wrongly) carries a pass verdict and a high score must still be excluded
    # (validation refuses such a record since issue 10; built unvalidated, it is still excluded here)
    odd = Judgment.model_construct(samples=[], panel=[], scores={}, flags={}, spread={}, id="x", model="m",
                                   judge="j", category="general", status="unscored", overall=5.0, passed=True)
    fail_like = Judgment.model_construct(samples=[], panel=[], scores={}, flags={}, spread={}, id="y", model="m",
                                         judge="j", category="general", status="unscored", overall=1.0, passed=False)
    r0 = pass_rates(base)[0]
    r1 = pass_rates([*base, odd, fail_like])[0]
    assert (r1.n, r1.scored, r1.unscored, r1.passed) == (32, 30, 2, 20)
    assert (r1.rate, r1.wilson_low, r1.wilson_high, r1.boot_low, r1.boot_high) == (
        r0.rate, r0.wilson_low, r0.wilson_high, r0.boot_low, r0.boot_high)


def test_threshold_uses_overall_and_missing_verdict_raises() -> None:
    js = [J(1, True, overall=3.0), J(2, True, overall=2.5), J(3, False, overall=4.5), J(4, False, overall=1.0)]
    assert pass_rates(js)[0].passed == 2  # the rubric's verdicts
    assert pass_rates(js, threshold=3)[0].passed == 2  # overall >= 3: ids 1 and 3
    assert pass_rates(js, threshold=2.5)[0].passed == 3
    no_verdict = Judgment(id="1", model="m", judge="j", status="scored", overall=4.0)
    with pytest.raises(ValueError, match="no pass verdict"):
        pass_rates([no_verdict])
    assert pass_rates([no_verdict], threshold=3)[0].passed == 1


@pytest.mark.parametrize(("m", "k", "n_resamples", "seed"), [(37, 23, 500, 7), (5, 1, 300, 0), (120, 119, 1000, 3)])
def test_bootstrap_equals_slow_reference_loop(m: int, k: int, n_resamples: int, seed: int) -> None:
    verdicts = [True] * k + [False] * (m - k)
    random.Random(seed).shuffle(verdicts)
    row = pass_rates([J(i, v) for i, v in enumerate(verdicts)], n_resamples=n_resamples, seed=seed)[0]
    assert row.resampled == "answers" and row.n_resamples == n_resamples
    expected = slow_bootstrap([float(v) for v in verdicts], n_resamples, seed)
    assert (row.boot_low, row.boot_high) == pytest.approx(expected, abs=1e-12)
    # the same draws as the sibling module's vectorised bootstrap of a mean
    ci = bootstrap_mean_ci(np.sort(np.array(verdicts, dtype=float)), n_boot=n_resamples,
                           rng=np.random.default_rng(seed))
    assert (row.boot_low, row.boot_high) == (float(ci[0]), float(ci[1]))


def test_bootstrap_in_several_blocks_equals_slow_loop() -> None:
    # 5,000 answers x 2,000 resamples exceeds one block of 2**22 indices: three blocks, same numbers
    rng = random.Random(1)
    verdicts = [rng.random() < 0.3 for _ in range(5000)]
    row = pass_rates([J(i, v) for i, v in enumerate(verdicts)], n_resamples=2000, seed=11)[0]
    m = len(verdicts)
    r = np.random.default_rng(11)
    v = np.sort(np.array(verdicts, dtype=float))
    stats = [v[r.integers(0, m, size=m)].sum() / m for _ in range(2000)]
    assert (row.boot_low, row.boot_high) == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])), abs=1e-12)
    assert row.boot_low < row.rate < row.boot_high


def test_row_depends_only_on_its_own_data_and_the_seed() -> None:
    a = [J(i, i % 4 != 0, model="m") for i in range(40)]
    b = [J(i, i % 2 == 0, model="b") for i in range(25)]  # sorts before "m"
    alone = pass_rates(a, seed=5)[0]
    shuffled = list(a + b)
    random.Random(2).shuffle(shuffled)
    together = {r.key: r for r in pass_rates(shuffled, seed=5)}
    assert list(together) == [("b",), ("m",)] and together[("m",)] == alone
    # a group with the same counts gets the same interval; another seed gives another interval
    same_counts = [J(i, i >= 10, model="c") for i in range(40)]
    c = pass_rates(same_counts, seed=5)[0]
    assert (c.boot_low, c.boot_high) == (alone.boot_low, alone.boot_high)
    other = pass_rates(a, seed=6)[0]
    assert (other.boot_low, other.boot_high) != (alone.boot_low, alone.boot_high)


def test_group_by_several_fields() -> None:
    js = [J(1, True, model="a", cat="x", judge="j1"), J(2, False, model="a", cat="x", judge="j1"),
          J(3, True, model="a", cat="y", judge="j2"), J(4, None, model="a", cat=None, judge="j1"),
          J(1, True, model="b", cat="x", judge="j2"), J(2, True, model="b", cat=None, judge="j2")]
    rows = pass_rates(js, by=("model", "category"), n_resamples=100)
    got = {r.key: (r.n, r.scored, r.unscored, r.passed) for r in rows}
    assert got == {("a", "-"): (1, 0, 1, 0), ("a", "x"): (2, 2, 0, 1), ("a", "y"): (1, 1, 0, 1),
                   ("b", "-"): (1, 1, 0, 1), ("b", "x"): (1, 1, 0, 1)}
    assert [r.key for r in rows] == sorted(got)
    assert all(r.by == ("model", "category") for r in rows)
    by_judge = {r.key: r.passed for r in pass_rates(js, by=("judge",), n_resamples=100)}
    assert by_judge == {("j1",): 1, ("j2",): 3}
    everything = pass_rates(js, by=(), n_resamples=100)
    assert len(everything) == 1 and everything[0].key == () and (everything[0].scored, everything[0].passed) == (5, 4)
    assert [r.key for r in pass_rates(js, by=("condition", "judge"), n_resamples=100)] == [("-", "j1"), ("-", "j2")]
    with pytest.raises(ValueError, match="cannot group by"):
        pass_rates(js, by=("rubric",))
    with pytest.raises(ValueError, match="twice"):
        pass_rates(js, by=("model", "model"))


def test_cluster_bootstrap_by_item() -> None:
    # 30 items, each answered clean and degraded with the same verdict: 60 answers, perfectly clustered
    verdicts = {f"q{i:02d}": i % 3 != 0 for i in range(30)}
    js = [J(i, v, cond=c) for i, v in verdicts.items() for c in ("clean", "low_light")]
    auto = pass_rates(js, seed=4)[0]
    assert (auto.resampled, auto.n_items, auto.scored, auto.passed) == ("items", 30, 60, 40)
    assert "Wilson assumes independent answers" in auto.note
    items = {i: [v, v] for i, v in verdicts.items()}
    assert (auto.boot_low, auto.boot_high) == pytest.approx(slow_cluster_bootstrap(items, 2000, 4), abs=1e-12)
    iid = pass_rates(js, seed=4, resample="answers")[0]
    assert iid.resampled == "answers" and "so does the answer bootstrap" in iid.note
    assert (iid.boot_low, iid.boot_high) == pytest.approx(
        slow_bootstrap([float(j.passed) for j in js], 2000, 4), abs=1e-12)
    # duplicated answers carry no new information: the cluster interval is about sqrt(2) wider
    ratio = (auto.boot_high - auto.boot_low) / (iid.boot_high - iid.boot_low)
    assert 1.2 < ratio < 1.7
    # unequal cluster sizes and an unscored answer: the ratio estimator
    js2 = [J("a", True), J("a", True, cond="blur"), J("a", None, cond="noise"), J("b", False), J("c", True),
           J("c", False, cond="blur"), J("d", False), J("d", False, cond="blur"), J("d", True, cond="noise")]
    row = pass_rates(js2, n_resamples=400, seed=9)[0]
    assert (row.resampled, row.n_items, row.scored, row.unscored, row.passed) == ("items", 4, 8, 1, 4)
    ref = slow_cluster_bootstrap({"a": [True, True], "b": [False], "c": [True, False], "d": [False, False, True]},
                                 400, 9)
    assert (row.boot_low, row.boot_high) == pytest.approx(ref, abs=1e-12)
    # one answer per item: auto resamples answers
    assert pass_rates([J(i, True) for i in range(5)])[0].resampled == "answers"


def test_pass_rates_argument_checks() -> None:
    js = [J(1, True)]
    for kw in ({"n_resamples": 0}, {"confidence": 1.0}, {"seed": -1}, {"resample": "clusters"}):
        with pytest.raises(ValueError):
            pass_rates(js, **kw)


def test_pass_rate_rendering_and_json() -> None:
    js = [J(1, True), J(2, False), J(3, None), J(1, None, model="z")]
    rows = pass_rates(js, n_resamples=100)
    d = [r.to_dict() for r in rows]
    text = json.dumps(d, allow_nan=False)  # nan must have become None
    assert d[0]["key"] == {"model": "m"} and d[0]["by"] == ["model"]
    assert d[1]["rate"] is None and d[1]["wilson_low"] is None and d[1]["unscored"] == 1
    assert set(d[0]) == {*PassRate.__dataclass_fields__}
    assert '"passed": 1' in text
    console = Console(record=True, width=200)
    console.print(pass_rate_table(rows))
    out = console.export_text()
    assert "50.0 %" in out and "no scored answers" in out and "Model" in out


# ------------------------------------------------------------------------------------------------- PPI

F_UNL = [1, 1, 1, 0, 1, 0, 1, 1]  # N = 8, 6 judge passes
F_LAB = [1, 1, 0, 1, 0]  # n = 5
Y_LAB = [1, 0, 0, 1, 0]  # the judge is lenient once (item 2)


def test_ppi_classic_by_hand() -> None:
    e = ppi_pass_rate(F_UNL, F_LAB, Y_LAB, power_tuning=False)
    assert e.lam == 1.0 and not e.power_tuning
    # theta = mean f(X~) + mean(Y - f(X)) = 6/8 + (0 - 1 + 0 + 0 + 0)/5 = 0.55
    assert e.estimate == pytest.approx(0.55, abs=1e-15)
    assert e.correction == pytest.approx(-0.2, abs=1e-15)
    # s2 of f(X~) (ddof=1): 6 ones, 2 zeros -> sum of squares 6*(1/4)^2 + 2*(3/4)^2 = 1.5, / 7
    # s2 of Y - f(X) = [0, -1, 0, 0, 0] (ddof=1): mean -0.2, sum of squares 4*0.04 + 0.64 = 0.8, / 4
    var = (1.5 / 7) / 8 + (0.8 / 4) / 5
    assert e.std_error == pytest.approx(math.sqrt(var), rel=1e-12)
    assert e.ci_low == pytest.approx(0.55 - Z95 * math.sqrt(var), rel=1e-12)
    assert e.ci_high == 1.0 and "interval clipped to [0, 1]" in e.note  # 0.55 + 0.5065 > 1
    assert (e.n_labeled, e.n_unlabeled) == (5, 8)
    assert e.human_rate == 0.4 and (e.human_ci_low, e.human_ci_high) == pytest.approx(scipy_wilson(2, 5))
    assert e.judge_rate == 9 / 13 and (e.judge_ci_low, e.judge_ci_high) == pytest.approx(scipy_wilson(9, 13))
    assert e.agreement == 0.8
    # n_eff = s2(Y) / var: Y has 2 ones of 5 -> s2 = 2*3/(5*4) = 0.3
    assert e.n_effective == pytest.approx(0.3 / var, rel=1e-12)
    assert e.gain == pytest.approx(0.3 / var / 5, rel=1e-12)


def test_ppi_power_tuned_by_hand() -> None:
    e = ppi_pass_rate(F_UNL, F_LAB, Y_LAB)
    fr = Fraction
    # c_Yf (ddof=1) on the labelled pairs: fbar = 3/5, ybar = 2/5
    f, y = [fr(v) for v in F_LAB], [fr(v) for v in Y_LAB]
    c = sum((a - fr(3, 5)) * (b - fr(2, 5)) for a, b in zip(f, y, strict=True)) / 4
    assert c == fr(1, 5)
    # s2_f (ddof=1) over all 13 judge verdicts, 9 of them passes: 9 * 4 / (13 * 12)
    s2_f = fr(9 * 4, 13 * 12)
    lam = c / ((1 + fr(5, 8)) * s2_f)
    assert lam == fr(8, 15)
    assert e.lam == pytest.approx(float(lam), rel=1e-14) and e.power_tuning
    theta = lam * fr(6, 8) + sum(b - lam * a for a, b in zip(f, y, strict=True)) / 5
    assert theta == fr(12, 25)
    assert e.estimate == pytest.approx(0.48, rel=1e-14)
    d = [b - lam * a for a, b in zip(f, y, strict=True)]
    d_bar = sum(d) / 5
    s2_d = sum((x - d_bar) ** 2 for x in d) / 4
    var = lam**2 * fr(3, 2) / 7 / 8 + s2_d / 5
    assert e.correction == pytest.approx(float(d_bar), rel=1e-14)
    assert e.std_error == pytest.approx(math.sqrt(var), rel=1e-12)
    assert (e.ci_low, e.ci_high) == pytest.approx((0.48 - Z95 * math.sqrt(var), 0.48 + Z95 * math.sqrt(var)),
                                                  rel=1e-12)
    # the tuned variance is below classic PPI's on this example
    assert e.std_error < ppi_pass_rate(F_UNL, F_LAB, Y_LAB, power_tuning=False).std_error


def test_ppi_confidence_level_and_inputs_as_bools() -> None:
    e95 = ppi_pass_rate(np.array(F_UNL, dtype=bool), [bool(v) for v in F_LAB], tuple(Y_LAB))
    e90 = ppi_pass_rate(F_UNL, F_LAB, Y_LAB, confidence=0.90)
    assert e95.estimate == e90.estimate and e95.std_error == e90.std_error
    z90 = float(norm.ppf(0.95))
    assert e90.ci_high - e90.estimate == pytest.approx(z90 * e90.std_error, rel=1e-12)
    assert e90.ci_low > e95.ci_low


def test_ppi_judge_equal_to_humans() -> None:
    rng = np.random.default_rng(0)
    f_unl = rng.random(1000) < 0.7
    y = rng.random(100) < 0.7
    e = ppi_pass_rate(f_unl, y, y, power_tuning=False)
    # no correction: the estimate is the judge's rate on the unlabelled answers, its variance s2(f~)/N
    assert e.correction == 0.0
    assert e.estimate == f_unl.mean()
    assert e.std_error == pytest.approx(math.sqrt(np.var(f_unl, ddof=1) / 1000), rel=1e-12)
    assert e.agreement == 1.0
    human_width = e.human_ci_high - e.human_ci_low
    assert e.ci_high - e.ci_low < 0.4 * human_width  # about sqrt(100 / 1000) of it
    assert e.n_effective == pytest.approx(np.var(y, ddof=1) / np.var(f_unl, ddof=1) * 1000, rel=1e-12)
    tuned = ppi_pass_rate(f_unl, y, y)
    # lambda = s2_f(labelled) / ((1 + n/N) s2_f(all)) ~ N / (N + n): about the judge's rate on all answers
    all_f = np.r_[f_unl, y]
    assert tuned.lam == pytest.approx(np.var(y, ddof=1) / (1.1 * np.var(all_f, ddof=1)), rel=1e-12)
    assert tuned.estimate == pytest.approx(tuned.lam * f_unl.mean() + (1 - tuned.lam) * y.mean(), rel=1e-12)
    assert abs(tuned.estimate - all_f.mean()) < 0.005
    assert tuned.ci_high - tuned.ci_low < e.ci_high - e.ci_low


def test_ppi_constant_judge_and_tiny_samples() -> None:
    # a judge that passes everything carries no information: lambda = 0, the human-only mean and variance
    y = [1, 0, 1, 1, 0, 1]
    e = ppi_pass_rate([1] * 50, [1] * 6, y)
    assert e.lam == 0.0 and "carries no information" in e.note
    assert e.estimate == pytest.approx(4 / 6, rel=1e-14)
    assert e.std_error == pytest.approx(math.sqrt(np.var(y, ddof=1) / 6), rel=1e-12)
    assert e.n_effective == pytest.approx(6.0, rel=1e-12)
    # one label: no variance, no interval, lambda untuned
    one = ppi_pass_rate([1, 0, 1], [1], [0])
    assert one.lam == 1.0 and math.isnan(one.std_error) and math.isnan(one.ci_low)
    assert one.estimate == 0.0 and "estimate -0.3333 clipped" in one.note and "no interval" in one.note
    # every label and verdict passes: zero variance, the CLT interval is a point
    allpass = ppi_pass_rate([1] * 10, [1] * 5, [1] * 5, power_tuning=False)
    assert (allpass.estimate, allpass.ci_low, allpass.ci_high) == (1.0, 1.0, 1.0)
    assert "zero estimated variance" in allpass.note and math.isnan(allpass.n_effective)


def test_ppi_input_checks() -> None:
    with pytest.raises(ValueError, match="no human labels"):
        ppi_pass_rate([1, 0], [], [])
    with pytest.raises(ValueError, match="no unlabelled"):
        ppi_pass_rate([], [1, 0], [1, 1])
    with pytest.raises(ValueError, match="differ in length"):
        ppi_pass_rate([1, 0], [1, 0], [1])
    with pytest.raises(ValueError, match="pass/fail"):
        ppi_pass_rate([1, 0.5], [1, 0], [1, 1])
    with pytest.raises(ValueError, match="pass/fail"):
        ppi_pass_rate([1, None], [1, 0], [1, 1])
    with pytest.raises(ValueError, match="one-dimensional"):
        ppi_pass_rate([[1, 0]], [1, 0], [1, 1])
    with pytest.raises(ValueError, match="confidence"):
        ppi_pass_rate([1, 0], [1, 0], [1, 1], confidence=95)


def test_ppi_pass_rates_aligns_by_key_per_group() -> None:
    rng = random.Random(3)
    judge: dict[Any, bool] = {}
    human: dict[Any, bool] = {}
    groups: dict[Any, str] = {}
    for model, lenient in (("m1", 0.2), ("m2", 0.5)):
        for i in range(300):
            key = (f"q{i}", model)
            truth = rng.random() < 0.6
            judge[key] = truth or rng.random() < lenient
            groups[key] = model
            if i % 7 == 0:
                human[key] = truth
    groups[("unjudged", "m1")] = "m1"  # ignored
    rows = ppi_pass_rates(dict(reversed(list(judge.items()))), human, groups)
    assert [r.group for r in rows] == ["m1", "m2"]
    for r in rows:
        keys = [k for k in judge if groups[k] == r.group]
        lab = [k for k in keys if k in human]
        unl = [k for k in keys if k not in human]  # the paper's setting: unlabelled = judged without a label
        assert (r.n_labeled, r.n_unlabeled) == (len(lab), len(unl)) == (43, 257)
        ref = ppi_pass_rate([judge[k] for k in unl], [judge[k] for k in lab], [human[k] for k in lab])
        assert r == PPIEstimate(**{**ref.__dict__, "group": r.group})
    assert rows[1].judge_rate - rows[1].human_rate > rows[0].judge_rate - rows[0].human_rate


def test_ppi_pass_rates_checks_and_groups_without_labels() -> None:
    judge = {"a": True, "b": False, "c": True, "d": True, "e": False}
    groups = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "y"}
    with pytest.raises(ValueError, match="subset of the judged"):
        ppi_pass_rates(judge, {"a": True, "zz": False}, groups)
    with pytest.raises(ValueError, match="no group"):
        ppi_pass_rates(judge, {"a": True}, {"a": "x"})
    with pytest.raises(ValueError, match="leave unscored"):
        ppi_pass_rates({**judge, "f": None}, {"a": True}, {**groups, "f": "y"})  # type: ignore[dict-item]
    rows = ppi_pass_rates(judge, {"a": True, "b": True, "d": False, "e": False}, groups)
    x, y = rows
    assert x.group == "x" and (x.n_labeled, x.n_unlabeled) == (2, 1) and not x.note.startswith("no human")
    assert y.group == "y" and (y.n_labeled, y.n_unlabeled) == (2, 0) and math.isnan(y.estimate)
    assert "every judged answer is labelled" in y.note and y.human_rate == 0.0 and y.judge_rate == 0.5
    none = ppi_pass_rates(judge, {}, groups)
    assert all(math.isnan(r.estimate) and "no human labels" in r.note for r in none)
    assert none[0].judge_rate == 2 / 3 and math.isnan(none[0].human_rate)
    mixed = ppi_pass_rates({1: True, "k": False}, {}, {1: 2, "k": "g"})  # groups of mixed types still sort
    assert len(mixed) == 2


def test_ppi_rendering_and_json() -> None:
    rows = [ppi_pass_rate(F_UNL, F_LAB, Y_LAB), ppi_pass_rate([1] * 10, [1] * 5, [1] * 5)]
    rows.append(PPIEstimate(**{**rows[0].__dict__, "group": ("m", "cat"), "n_effective": math.inf}))
    d = [r.to_dict() for r in rows]
    json.dumps(d, allow_nan=False)
    assert d[0]["estimate"] == pytest.approx(0.48) and d[0]["gain"] == pytest.approx(rows[0].gain)
    assert d[1]["n_effective"] is None and d[2]["n_effective"] is None and d[2]["group"] == ["m", "cat"]
    console = Console(record=True, width=250)
    console.print(ppi_table(rows))
    out = console.export_text()
    assert "48.0 %" in out and "m / cat" in out and "inf" in out and "λ" in out


# --------------------------------------------------------------------------------------- simulation


def simulate(judge: str, *, reps: int = 2000, big_n: int = 2000, n: int = 200, p: float = 0.6,
             seed: int = 20231110) -> dict[str, np.ndarray]:
    """``reps`` independent studies: ``n + N`` answers i.i.d. with human verdict Y ~ Bernoulli(p); the first
    ``n`` are labelled (a uniform random sample, since the answers are i.i.d.). Judge ``"biased"``: passes
    90 % of the good answers and 30 % of the bad (lenient: its rate is 0.66 for a human rate of 0.6);
    ``"random"``: a coin flip independent of Y. Returns the sufficient statistics."""
    rng = np.random.default_rng(seed)
    y = rng.random((reps, n + big_n)) < p
    u = rng.random((reps, n + big_n))
    f = np.where(y, u < 0.9, u < 0.3) if judge == "biased" else u < 0.5
    fl, yl = f[:, :n], y[:, :n]
    cells = np.stack([(~fl & ~yl).sum(1), (~fl & yl).sum(1), (fl & ~yl).sum(1), (fl & yl).sum(1)], axis=1)
    return {"k_unl": f[:, n:].sum(1), "cells": cells, "f": f, "y": y}


def wilson_arrays(k: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson interval in closed form, vectorised (checked against scipy in the first test)."""
    ph = k / m
    centre = (ph + Z95**2 / (2 * m)) / (1 + Z95**2 / m)
    half = Z95 / (1 + Z95**2 / m) * np.sqrt(ph * (1 - ph) / m + Z95**2 / (4 * m * m))
    return centre - half, centre + half


def test_coverage_simulation_biased_judge() -> None:
    big_n, n, p = 2000, 200, 0.6
    s = simulate("biased")
    classic = _ppi_core(s["k_unl"], big_n, s["cells"], z=Z95, power_tuning=False)
    tuned = _ppi_core(s["k_unl"], big_n, s["cells"], z=Z95, power_tuning=True)
    # the vectorised core is what the public function computes
    for r in range(3):
        f, y = s["f"][r], s["y"][r]
        e = ppi_pass_rate(f[n:], f[:n], y[:n])
        assert (e.estimate, e.ci_low, e.ci_high, e.lam) == pytest.approx(
            (tuned["theta"][r], tuned["low"][r], tuned["high"][r], tuned["lam"][r]), rel=1e-12)
    cover = {name: float(np.mean((res["low"] <= p) & (p <= res["high"])))
             for name, res in (("classic", classic), ("tuned", tuned))}
    k_all = s["k_unl"] + s["cells"][:, 2] + s["cells"][:, 3]
    j_low, j_high = wilson_arrays(k_all, big_n + n)
    cover["judge-only"] = float(np.mean((j_low <= p) & (p <= j_high)))
    k_h = s["cells"][:, 1] + s["cells"][:, 3]
    h_low, h_high = wilson_arrays(k_h, n)
    cover["human-only"] = float(np.mean((h_low <= p) & (p <= h_high)))
    # observed with this seed: classic 0.9475, tuned 0.9550, judge-only 0.0000, human-only (Wilson) 0.9530
    assert 0.93 <= cover["classic"] <= 0.97, cover
    assert 0.93 <= cover["tuned"] <= 0.97, cover
    assert 0.93 <= cover["human-only"] <= 0.97, cover
    assert cover["judge-only"] < 0.05, cover  # the judge's rate is 0.66: biased, and its interval misses it
    assert np.mean(k_all / (big_n + n)) == pytest.approx(0.66, abs=0.002)
    assert np.mean(tuned["theta"]) == pytest.approx(p, abs=0.002)  # unbiased whatever the judge's bias
    assert np.mean(classic["theta"]) == pytest.approx(p, abs=0.002)
    w_classic = np.mean(classic["high"] - classic["low"])
    w_tuned = np.mean(tuned["high"] - tuned["low"])
    w_human = np.mean(h_high - h_low)
    # lambda* = Cov(Y, f) / ((1 + n/N) Var f) = 0.144 / (1.1 * 0.66 * 0.34) = 0.583
    assert np.mean(tuned["lam"]) == pytest.approx(0.144 / (1.1 * 0.66 * 0.34), abs=0.01)
    assert w_tuned <= w_classic and w_tuned < w_human
    assert np.mean(tuned["high"] - tuned["low"] <= classic["high"] - classic["low"] + 1e-12) >= 0.99
    # theory: sqrt(var(lambda*) / var(human-only)) = sqrt(7.80e-4 / 1.2e-3) = 0.81 (observed 0.109 / 0.134)
    assert 0.78 < w_tuned / w_human < 0.84


def test_useless_judge_degrades_to_human_only() -> None:
    big_n, n, p = 2000, 200, 0.6
    s = simulate("random", seed=7)
    classic = _ppi_core(s["k_unl"], big_n, s["cells"], z=Z95, power_tuning=False)
    tuned = _ppi_core(s["k_unl"], big_n, s["cells"], z=Z95, power_tuning=True)
    y_lab = (s["cells"][:, 1] + s["cells"][:, 3]).astype(float)
    human_clt = 2 * Z95 * np.sqrt(y_lab * (n - y_lab) / (n * (n - 1)) / n)
    ratio_tuned = np.mean(tuned["high"] - tuned["low"]) / np.mean(human_clt)
    ratio_classic = np.mean(classic["high"] - classic["low"]) / np.mean(human_clt)
    assert 0.99 <= ratio_tuned <= 1.03, ratio_tuned  # lambda ~ 0: about the human-only interval
    assert ratio_classic > 1.35, ratio_classic  # classic PPI trusts the coin: sqrt((.49/200 + .25/2000) / (.24/200))
    assert np.mean(tuned["lam"]) < 0.1
    assert np.mean(tuned["high"] - tuned["low"] <= classic["high"] - classic["low"] + 1e-12) >= 0.99
    cover = np.mean((tuned["low"] <= p) & (p <= tuned["high"]))
    assert 0.93 <= cover <= 0.97
