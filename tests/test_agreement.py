"""Tests of judgekit.stats.agreement: published reference values, hand-computed values, scipy cross-checks, the
bootstrap's seed scheme, and the exactness of every weighted (resampled) form."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from judgekit.stats import agreement as ag
from judgekit.stats.agreement import (
    agreement_report,
    bootstrap_ci,
    cohen_kappa,
    correlation,
    fleiss_kappa,
    icc,
    inter_human_ceiling,
    krippendorff_alpha,
    pass_agreement,
    percent_agreement,
)
from judgekit.stats.agreement import bootstrap as ag_bootstrap
from judgekit.stats.agreement import ceiling as ag_ceiling
from judgekit.stats.agreement import correlations as ag_correlations
from judgekit.stats.agreement import intraclass as ag_intraclass
from judgekit.stats.agreement import multirater as ag_multirater
from judgekit.stats.agreement import paired as ag_paired
from judgekit.stats.agreement import report as ag_report

ROOT = Path(__file__).resolve().parents[1]
nan = np.nan

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the worked example with missing values:
# 4 coders x 12 units (values 1-5), reproduced in the docstring of the krippendorff package (0.9.0)'s `alpha`.
# Rows here are coders; the module's layout is items x raters, hence the .T below.
KRIPP_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]).T

# Fleiss (1971) psychiatric diagnoses, 30 patients x 6 raters, categories 1-5, as distributed in R's irr package
# (`diagnoses`) and statsmodels' tests; kappam.fleiss gives 0.4302445.
DIAGNOSES = np.array([
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
], dtype=float)

# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, counts per category 1-5 -> 0.210.
WIKI_COUNTS = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
                         dtype=float)

# R irr's `anxiety` data (20 subjects x 3 raters), as in statsmodels' tests of cohens_kappa; kappa2 of raters 2
# and 3: unweighted -0.006289308, "equal" (linear) 0.1459075, "squared" (quadratic) 0.2520325.
ANXIETY = np.array([
    3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3, 3, 6, 4, 6, 2, 4, 2, 4, 3, 3,
    2, 3, 3, 3, 2, 2, 1, 3, 3, 4, 2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2,
], dtype=float).reshape(20, 3, order="F")


def counts_to_ratings(counts: np.ndarray) -> np.ndarray:
    """A category-count table (items x categories 1..K) as an items x raters matrix of labels."""
    return np.array([np.repeat(np.arange(1, counts.shape[1] + 1), row) for row in counts], dtype=float)


# ------------------------------------------------------------------------------------ Krippendorff


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849),
                                                 ("ratio", 0.797)])
def test_krippendorff_2011_reference_values(level: str, expected: float) -> None:
    assert round(krippendorff_alpha(KRIPP_2011, level=level), 3) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_weighted_and_closed_forms_equal_package(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import krippendorff

    pkg = krippendorff.alpha(reliability_data=KRIPP_2011.T, level_of_measurement=level)
    assert ag._w_alpha(KRIPP_2011, level)(np.ones((1, 12)))[0] == pytest.approx(pkg, abs=1e-9)
    # force the closed form used for many distinct values (the constant is read in the module that uses it)
    monkeypatch.setattr(ag_multirater, "_KRIPP_DENSE", 0)
    assert krippendorff_alpha(KRIPP_2011, level=level) == pytest.approx(pkg, abs=1e-12)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    mat = np.round(rng.normal(5, 1, (60, 4)), 1)
    mat[rng.random(mat.shape) < 0.2] = nan
    pair = mat[(~np.isnan(mat)).sum(axis=1) >= 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = krippendorff_alpha(mat, level=level)  # type: ignore[arg-type]
    assert ours == pytest.approx(krippendorff.alpha(reliability_data=pair.T, level_of_measurement=level), abs=1e-12)


def test_krippendorff_edge_cases_and_warning() -> None:
    assert math.isnan(krippendorff_alpha([[1, nan], [nan, 2]], level="interval"))  # nothing pairable
    assert krippendorff_alpha([[3, 3], [3, 3, ], [2, nan]], level="ordinal") == 1.0  # every pairable value equal
    with pytest.warns(UserWarning, match="nominal"):
        krippendorff_alpha(np.arange(40.0).reshape(20, 2) / 3, level="nominal")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        krippendorff_alpha([[0, 1], [1, 1], [0, 0]], level="nominal")  # binary labels: no warning
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPP_2011, level="cardinal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha([1, 2, 3])


# ------------------------------------------------------------------------------------------- kappa


def test_cohen_kappa_sklearn_documented_example() -> None:
    y1 = ["negative", "positive", "negative", "neutral", "positive"]
    y2 = ["negative", "positive", "negative", "neutral", "negative"]
    assert cohen_kappa(y1, y2) == pytest.approx(0.6875, abs=1e-12)


def test_cohen_kappa_hand_computed_weighted() -> None:
    # a = 1..5, b = 1,2,4,4,5 on labels 1..5: O has one off-diagonal cell (3, 4); row sums 1,1,1,1,1, column sums
    # 1,1,0,2,1. quadratic: sum w O = 1, sum w E = (30 + 15 + 2 * 15 + 30) / 5 = 21 -> 1 - 1/21;
    # linear: sum w E = (10 + 7 + 2 * 7 + 10) / 5 = 8.2 -> 1 - 1/8.2; unweighted: p_o 0.8, p_e 5/25 -> 0.75.
    a, b, labels = [1, 2, 3, 4, 5], [1, 2, 4, 4, 5], range(1, 6)
    assert cohen_kappa(a, b, weights="quadratic", labels=labels) == pytest.approx(20 / 21, abs=1e-12)
    assert cohen_kappa(a, b, weights="linear", labels=labels) == pytest.approx(1 - 1 / 8.2, abs=1e-12)
    assert cohen_kappa(a, b, labels=labels) == pytest.approx(0.75, abs=1e-12)


@pytest.mark.parametrize(("weights", "expected"), [(None, -0.006289308), ("linear", 0.1459075),
                                                   ("quadratic", 0.2520325)])
def test_cohen_kappa_matches_r_irr(weights: str | None, expected: float) -> None:
    assert cohen_kappa(ANXIETY[:, 1], ANXIETY[:, 2], weights=weights) == pytest.approx(expected, abs=1e-7)  # type: ignore[arg-type]


def test_cohen_kappa_properties_and_errors() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 6, 50).astype(float), rng.integers(1, 6, 50).astype(float)
    for w in (None, "linear", "quadratic"):
        assert cohen_kappa(a, a, weights=w) == 1.0  # type: ignore[arg-type]
        assert cohen_kappa(a, b, weights=w) == pytest.approx(cohen_kappa(b, a, weights=w), abs=1e-12)  # type: ignore[arg-type]
        perm = rng.permutation(50)
        assert cohen_kappa(a[perm], b[perm], weights=w) == pytest.approx(cohen_kappa(a, b, weights=w), abs=1e-12)  # type: ignore[arg-type]
    a2, b2 = a.copy(), b.copy()
    a2[0], b2[1] = nan, nan  # dropped pairs
    assert cohen_kappa(a2, b2) == pytest.approx(cohen_kappa(a[2:], b[2:]), abs=1e-12)
    assert cohen_kappa(["x", None, "y"], ["x", "y", "y"]) == 1.0
    assert math.isnan(cohen_kappa([2, 2, 2], [2, 2, 2]))  # no expected disagreement: undefined, as sklearn
    with pytest.raises(ValueError, match="not among labels"):
        cohen_kappa([1, 2, 6], [1, 2, 3], labels=range(1, 6))
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")  # type: ignore[arg-type]


def test_fleiss_kappa_reference_values() -> None:
    assert round(fleiss_kappa(DIAGNOSES), 3) == 0.430
    assert fleiss_kappa(DIAGNOSES) == pytest.approx(0.4302445, abs=1e-7)
    assert round(fleiss_kappa(counts_to_ratings(WIKI_COUNTS)), 3) == 0.210
    assert fleiss_kappa(counts_to_ratings(WIKI_COUNTS)) == pytest.approx(0.20993070442195522, abs=1e-12)


def test_fleiss_kappa_missing_ratings_generalisation() -> None:
    # items with < 2 ratings skipped; P_i averaged unweighted; p_j pooled over all counted ratings:
    # items: [1,1,nan] P=1, [1,2,2] P=1/3, [2,nan,nan] skipped, [2,2,2] P=1 -> P_bar = 7/9;
    # ratings counted: 1,1,1,2,2,2,2,2 -> p = (3/8, 5/8), P_e = 34/64.
    mat = [[1, 1, nan], [1, 2, 2], [2, nan, nan], [2, 2, 2]]
    p_bar, p_e = 7 / 9, 34 / 64
    assert fleiss_kappa(mat) == pytest.approx((p_bar - p_e) / (1 - p_e), abs=1e-12)
    assert math.isnan(fleiss_kappa([[1, nan], [nan, 2]]))
    assert math.isnan(fleiss_kappa([[3, 3], [3, 3]]))  # P_e = 1
    with pytest.raises(ValueError, match="not among labels"):
        fleiss_kappa(DIAGNOSES, labels=[1, 2, 3])


def test_fleiss_and_alpha_permutation_invariance() -> None:
    rng = np.random.default_rng(1)
    rows, cols = rng.permutation(30), rng.permutation(6)
    shuffled = DIAGNOSES[rows][:, cols]
    assert fleiss_kappa(shuffled) == pytest.approx(fleiss_kappa(DIAGNOSES), abs=1e-12)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        k = KRIPP_2011[rng.permutation(12)][:, rng.permutation(4)]
        assert krippendorff_alpha(k, level=level) == pytest.approx(  # type: ignore[arg-type]
            krippendorff_alpha(KRIPP_2011, level=level), abs=1e-12)  # type: ignore[arg-type]


def test_perfect_agreement_gives_one() -> None:
    x = np.array([1, 2, 3, 4, 5, 3, 2], dtype=float)
    mat = np.column_stack([x, x, x])
    assert percent_agreement(x, x) == 1.0
    assert pass_agreement(x, x, threshold=3) == 1.0
    assert fleiss_kappa(mat) == pytest.approx(1.0)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert krippendorff_alpha(mat, level=level) == pytest.approx(1.0)  # type: ignore[arg-type]
    for kind in ("agreement", "consistency", "oneway"):
        assert icc(mat, kind=kind) == pytest.approx(1.0)  # type: ignore[arg-type]


def test_percent_and_pass_agreement() -> None:
    assert percent_agreement([1, 2, 3, 4], [1, 3, 3, nan]) == pytest.approx(2 / 3)
    assert percent_agreement([1, 2, 3, 4], [2, 3, 1, 4], tolerance=1) == 0.75
    assert percent_agreement([3.0], [3.5], tolerance=0.5) == 1.0
    assert math.isnan(percent_agreement([nan], [1]))
    assert pass_agreement([1, 3, 5, 2], [2, 4, 2, 3], threshold=3) == 0.5  # pass: FTTF vs FTFT
    with pytest.raises(ValueError, match="tolerance"):
        percent_agreement([1], [1], tolerance=-1)
    with pytest.raises(ValueError, match="infinite"):
        percent_agreement([np.inf], [1])


# --------------------------------------------------------------------------------------------- ICC


@pytest.mark.parametrize(("kind", "unit", "expected"), [
    ("oneway", "single", 0.17), ("agreement", "single", 0.29), ("consistency", "single", 0.71),
    ("oneway", "average", 0.44), ("agreement", "average", 0.62), ("consistency", "average", 0.91)])
def test_icc_shrout_fleiss_table(kind: str, unit: str, expected: float) -> None:
    assert round(icc(SHROUT_FLEISS, kind=kind, unit=unit), 2) == expected  # type: ignore[arg-type]


def test_icc_complete_rows_only_and_errors() -> None:
    with_gap = np.vstack([SHROUT_FLEISS, [1, nan, 3, 4]])
    assert icc(with_gap) == pytest.approx(icc(SHROUT_FLEISS), abs=1e-12)
    assert math.isnan(icc([[1, 2], [nan, 3]]))
    with pytest.raises(ValueError, match="2 raters"):
        icc([[1], [2]])


# ------------------------------------------------------------------------------------ correlations


def test_correlation_sample_level_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(1, 6, 80).astype(float)
    y = np.round(x + rng.normal(0, 1, 80), 1)
    x[5] = nan
    ok = ~np.isnan(x)
    assert correlation(x, y).value == pytest.approx(stats.pearsonr(x[ok], y[ok]).statistic, abs=1e-12)
    assert correlation(x, y, method="spearman").value == pytest.approx(stats.spearmanr(x[ok], y[ok]).statistic,
                                                                       abs=1e-12)
    assert correlation(x, y, method="kendall").value == pytest.approx(stats.kendalltau(x[ok], y[ok]).statistic,
                                                                      abs=1e-12)
    res = correlation(x, y, method="kendall")
    assert (res.n_items, res.level, res.method) == (79, "sample", "kendall")
    assert math.isnan(correlation([1, 2, 3], [2, 2, 2]).value)


def test_correlation_summary_level_hand_example() -> None:
    # group a: x = 1,2,3,4, y = 1,3,2,4 -> Pearson 4/5 (sum dx dy = 4, sum dx^2 = sum dy^2 = 5), Spearman
    # 1 - 6 * 2 / (4 * 15) = 0.8, Kendall (5 - 1) / 6; group b: y constant -> skipped; group c: one item -> skipped.
    x = [1, 2, 3, 4, 1, 2, 3, 7]
    y = [1, 3, 2, 4, 2, 2, 2, 1]
    g = ["a", "a", "a", "a", "b", "b", "b", "c"]
    for method, expected in (("pearson", 0.8), ("spearman", 0.8), ("kendall", 4 / 6)):
        r = correlation(x, y, method=method, level="summary", groups=g)  # type: ignore[arg-type]
        assert r.value == pytest.approx(expected, abs=1e-12)
        assert (r.n_groups, r.n_skipped, r.n_items) == (1, 2, 4)
    with pytest.raises(ValueError, match="needs groups"):
        correlation(x, y, level="summary")


def test_correlation_summary_level_matches_scipy_loop() -> None:
    rng = np.random.default_rng(4)
    n = 400
    g = rng.integers(0, 40, n)
    x = rng.integers(1, 6, n).astype(float)
    y = np.round(x + rng.normal(0, 1.2, n))
    y[g == 3] = 2.0  # a constant group: skipped
    x[rng.random(n) < 0.05] = nan
    ok = ~np.isnan(x)
    funcs = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}
    for method, f in funcs.items():
        vals = []
        for k in np.unique(g):
            sel = ok & (g == k)
            if sel.sum() >= 2 and np.ptp(x[sel]) > 0 and np.ptp(y[sel]) > 0:
                vals.append(f(x[sel], y[sel]).statistic)
        r = correlation(x, y, method=method, level="summary", groups=g)  # type: ignore[arg-type]
        assert r.value == pytest.approx(np.mean(vals), abs=1e-12)
        assert r.n_groups == len(vals) and r.n_skipped == 40 - len(vals)
    # many large groups: the scipy fallback for Kendall agrees too
    monkey = ag_correlations._PAIRS_VECTOR
    try:
        ag_correlations._PAIRS_VECTOR = 0
        assert correlation(x, y, method="kendall", level="summary", groups=g).value == pytest.approx(
            correlation(x, y, method="kendall", level="summary", groups=g % 40).value, abs=1e-12)
    finally:
        ag_correlations._PAIRS_VECTOR = monkey


def test_correlation_system_level_hand_example() -> None:
    # per-system means: x 1.5, 2.5, 5; y 1, 2, 3.5 (the NaN pair of system C is dropped)
    x = [1, 2, 2, 3, 5, 5, 9]
    y = [1, 1, 2, 2, 3, 4, nan]
    s = ["A", "A", "B", "B", "C", "C", "C"]
    r = correlation(x, y, level="system", systems=s)
    assert r.value == pytest.approx(stats.pearsonr([1.5, 2.5, 5], [1, 2, 3.5]).statistic, abs=1e-12)
    assert (r.n_groups, r.n_items) == (3, 6)
    assert correlation(x, y, method="spearman", level="system", systems=s).value == pytest.approx(1.0)
    assert correlation(x, y, method="kendall", level="system", systems=s).value == pytest.approx(1.0)


# --------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_percentile_equals_reference_loop() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    ref_rng = np.random.default_rng(7)
    idx = ref_rng.integers(0, 40, size=(300, 40))
    ref = [stats.pearsonr(x[i], y[i]).statistic for i in idx]
    lo, hi = bootstrap_ci(lambda a, b: stats.pearsonr(a, b).statistic, (x, y), n_resamples=300, seed=7)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(ref, [2.5, 97.5])), abs=1e-12)
    # the vectorised path (a weighted Pearson) gives the same interval from the same resamples
    w_stat = ag._w_pearson(x, y, np.ones(40, bool))
    vlo, vhi = bootstrap_ci(lambda a, b, weights: w_stat(weights), (x, y), n_resamples=300, seed=7, vectorized=True)
    assert (vlo, vhi) == pytest.approx((lo, hi), abs=1e-12)


def test_bootstrap_bca_equals_scipy() -> None:
    rng = np.random.default_rng(6)
    x = rng.exponential(size=60)
    ours = bootstrap_ci(np.mean, x, n_resamples=2000, method="bca", seed=11)
    import inspect

    seed_kw = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"  # scipy < 1.15
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", vectorized=False,
                          **{seed_kw: np.random.default_rng(11)}).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), abs=1e-10)
    vec = bootstrap_ci(lambda a, weights: weights @ a / weights.sum(axis=1), x, n_resamples=2000, method="bca",
                       seed=11, vectorized=True)
    assert vec == pytest.approx(ours, abs=1e-10)
    # a share of 0/1 values: many resampled values tie with the estimate (z0 counts ties half)
    b = np.random.default_rng(2).integers(0, 2, 41).astype(float)
    ref_b = stats.bootstrap((b,), np.mean, n_resamples=1000, method="BCa", vectorized=False,
                            **{seed_kw: np.random.default_rng(4)}).confidence_interval
    assert bootstrap_ci(np.mean, b, n_resamples=1000, method="bca", seed=4) == pytest.approx(
        (ref_b.low, ref_b.high), abs=1e-12)


def test_bootstrap_cluster_and_grouped_jackknife() -> None:
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(12), 5)
    x = rng.normal(size=60) + np.repeat(rng.normal(size=12), 5)
    # reference: draw 12 group indices per resample, concatenate their items
    ref_rng = np.random.default_rng(3)
    members = [np.flatnonzero(g == k) for k in range(12)]
    ref = [x[np.concatenate([members[k] for k in row])].mean() for row in ref_rng.integers(0, 12, size=(200, 12))]
    seen = []

    def stat(a: np.ndarray, groups: np.ndarray) -> float:
        seen.append(len(np.unique(groups)))
        return float(a.mean())

    lo, hi = bootstrap_ci(stat, x, n_resamples=200, seed=3, groups=g)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(ref, [2.5, 97.5])), abs=1e-12)
    assert set(seen) == {12}  # a group drawn twice is relabelled as two groups
    # BCa with more than 1,000 units uses 100 jackknife blocks: close to the exact leave-one-out acceleration
    big = rng.exponential(size=1500)
    blocks = bootstrap_ci(lambda a, weights: weights @ a / weights.sum(axis=1), big, n_resamples=2000,
                          method="bca", vectorized=True)
    exact_jack = 1.0 - np.eye(1500)
    vals = exact_jack @ big / exact_jack.sum(axis=1)
    theta = big.mean()
    boot = np.concatenate([w @ big / w.sum(axis=1) for w in ag._resample_counts(np.random.default_rng(0), 1500, 2000)])
    exact = ag._interval(theta, boot, vals, 0.95, "bca")
    assert blocks == pytest.approx(exact, abs=0.01)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(np.mean, x, n_resamples=0)
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(np.mean, x, method="basic")  # type: ignore[arg-type]


def test_bootstrap_undefined_statistic_gives_nan() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci(lambda a: math.nan, np.arange(5.0), n_resamples=20))
    # defined on the data but undefined in most resamples (2 items: resamples with one distinct value)
    def ratio(a: np.ndarray) -> float:
        with np.errstate(invalid="ignore"):
            return float(np.std(a) / np.std(a))

    lo, hi = bootstrap_ci(ratio, np.array([1.0, 2.0]), n_resamples=50)
    assert math.isnan(lo) and math.isnan(hi)


# --------------------------------------------------------------------- weighted forms are exact


def _weighted_specs(prep: ag._Prepared) -> list[ag._Spec]:
    return [s for s in prep.specs if s.weighted is not None and math.isfinite(s.value)]


def _make_data(kind: str, n: int = 120, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.normal(3, 1, n)
    h = q[:, None] + rng.normal(0, 0.8, (n, k))
    j = q + rng.normal(0, 0.9, n)
    if kind == "binary":
        h, j = (h >= 3).astype(float), (j >= 3).astype(float)
    elif kind == "ordinal":
        h, j = np.clip(np.rint(h), 1, 5), np.clip(np.rint(j), 1, 5)
    else:
        h, j = np.round(np.clip(h, 1, 5), 2), np.round(np.clip(j, 1, 5), 2)
    h[rng.random(h.shape) < 0.1] = nan
    j[rng.random(n) < 0.03] = nan
    return j, h


@pytest.mark.parametrize("kind", ["ordinal", "continuous", "binary"])
def test_weighted_forms_equal_point_values_and_duplicated_samples(kind: str) -> None:
    j, h = _make_data(kind)
    n = j.size
    systems = np.arange(n) % 6
    scale = None if kind == "binary" else (1, 5)
    prep = ag._prepare_report(j, h, scale=scale, kind=kind, threshold=3.0, groups=None, systems=systems)
    specs = _weighted_specs(prep)
    assert len(specs) >= (11 if kind == "binary" else 15)
    for s in specs:  # at weights 1 every weighted form is its point value
        assert s.weighted(np.ones((1, n)))[0] == pytest.approx(s.value, abs=1e-9), s.name  # type: ignore[misc]
    # integer weights = a resample: the weighted form equals the statistic recomputed on the duplicated items
    w = np.random.default_rng(1).integers(0, 3, n).astype(float)
    rep_idx = np.repeat(np.arange(n), w.astype(int))
    dup = ag._prepare_report(j[rep_idx], h[rep_idx], scale=scale, kind=kind, threshold=3.0, groups=None,
                             systems=systems[rep_idx])
    dup_values = {(s.name, s.level): s.value for s in dup.specs}
    for s in specs:
        assert s.weighted(w[None, :])[0] == pytest.approx(dup_values[(s.name, s.level)], abs=1e-9), s.name  # type: ignore[misc]


def test_weighted_forms_under_cluster_weights() -> None:
    j, h = _make_data("ordinal", n=150, seed=2)
    g = np.arange(150) // 6
    prep = ag._prepare_report(j, h, scale=(1, 5), kind="ordinal", threshold=None, groups=g, systems=None)
    cw = np.random.default_rng(2).integers(0, 3, 25)
    w = cw[g].astype(float)
    # duplicated data: each copy of a group is a new group
    parts = [np.flatnonzero(g == k) for k in range(25) for _ in range(cw[k])]
    idx = np.concatenate(parts)
    new_g = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    dup = ag._prepare_report(j[idx], h[idx], scale=(1, 5), kind="ordinal", threshold=None, groups=new_g,
                             systems=None)
    dup_values = {(s.name, s.level): s.value for s in dup.specs}
    checked = 0
    for s in _weighted_specs(prep):
        assert s.weighted(w[None, :])[0] == pytest.approx(dup_values[(s.name, s.level)], abs=1e-9), s.name  # type: ignore[misc]
        checked += s.level == "summary"
    assert checked == 3


def test_weighted_rank_correlations_general_paths_match_scipy() -> None:
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(size=300), 1)
    y = np.round(x + rng.normal(size=300), 1)
    x[:3] = nan
    ok = ~np.isnan(x)
    w = rng.integers(0, 3, (4, 300)).astype(float)
    sp, kt = ag._w_spearman_general(x, y, ok), ag._w_kendall_general(x, y, ok)
    for row, r_s, r_k in zip(w, sp(w), kt(w), strict=True):
        xx, yy = np.repeat(x[ok], row[ok].astype(int)), np.repeat(y[ok], row[ok].astype(int))
        assert r_s == pytest.approx(stats.spearmanr(xx, yy).statistic, abs=1e-12)
        assert r_k == pytest.approx(stats.kendalltau(xx, yy).statistic, abs=1e-12)


# ----------------------------------------------------------------------------- inter-human ceiling


def test_inter_human_ceiling_mode_hand_example() -> None:
    # 4 raters, binary: each rater's leave-one-out mode is 1,0,1,0 (no ties with 3 others)
    h = [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1], [0, 1, 0, 0]]
    res = inter_human_ceiling(h, [1, 0, 0, 1], reference="mode", statistics={"accuracy": percent_agreement})
    assert [r.human["accuracy"] for r in res.raters] == [1.0, 0.75, 0.75, 0.75]
    assert [r.judge["accuracy"] for r in res.raters] == [0.5] * 4
    assert res.ceiling["accuracy"] == 0.8125 and res.judge_loo["accuracy"] == 0.5
    assert res.judge_all["accuracy"] == 0.5
    # ties (3 raters, 2 others disagreeing): broken toward 0 and counted
    tied = inter_human_ceiling([[1, 0, 1], [1, 1, 1]], reference="mode", statistics={"acc": percent_agreement})
    assert [r.n_tied for r in tied.raters] == [1, 0, 1]


def test_inter_human_ceiling_mean_hand_example_and_single_rater() -> None:
    def mae(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.abs(a - b)))

    res = inter_human_ceiling([[1, 2], [3, 3], [5, 4]], [2, 3, 5], statistics={"mae": mae})
    assert res.ceiling["mae"] == pytest.approx(2 / 3) and res.judge_loo["mae"] == pytest.approx(1 / 3)
    assert res.judge_all["mae"] == pytest.approx(np.mean([0.5, 0, 0.5]))
    one = inter_human_ceiling([[1], [2], [3]], [1, 2, 3])
    assert math.isnan(one.ceiling["pearson"]) and "at least 2" in one.note
    with pytest.raises(ValueError, match="reference"):
        inter_human_ceiling([[1, 2]], reference="median")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- the report


def test_report_ordinal_picks_documented_statistics() -> None:
    j, h = _make_data("ordinal", n=200)
    g, s = np.arange(200) // 8, np.arange(200) % 5
    rep = agreement_report(j, h, scale=(1, 5), groups=g, systems=s, n_resamples=200)
    names = {(e.name, e.level) for e in rep.entries}
    for name in ("exact_agreement", "within_1_agreement", "pass_agreement", "cohen_kappa_quadratic",
                 "cohen_kappa_linear", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha_ordinal",
                 "krippendorff_alpha_ordinal_with_judge", "krippendorff_alpha_interval", "icc_humans",
                 "icc_judge_vs_human_mean", "ceiling_pearson", "judge_loo_cohen_kappa_quadratic"):
        assert (name, "-") in names, name
    for m in ("pearson", "spearman", "kendall"):
        for level in ("sample", "summary", "system"):
            assert (m, level) in names
    ok = ~np.isnan(j) & ~np.isnan(np.nanmean(h, axis=1))
    ref = np.floor(np.nanmean(h, axis=1) + 0.5)
    assert rep.entry("cohen_kappa_quadratic").value == pytest.approx(
        cohen_kappa(j[ok], ref[ok], weights="quadratic", labels=range(1, 6)), abs=1e-12)
    assert rep.entry("spearman", "summary").value == correlation(j, np.nanmean(h, axis=1), method="spearman",
                                                                 level="summary", groups=g).value
    assert rep.threshold == 3.0 and "cluster bootstrap over 25 groups" in rep.resampling
    for e in rep.entries:
        assert e.ci_low <= e.value <= e.ci_high or not math.isfinite(e.value), e.name
    text = json.dumps(rep.to_dict())
    assert "NaN" not in text and "| cohen_kappa_quadratic |" in rep.to_markdown()


def test_report_continuous_and_binary_kinds() -> None:
    j, h = _make_data("continuous")
    rep = agreement_report(j, h, kind="continuous", n_resamples=100)
    names = {e.name for e in rep.entries}
    assert {"within_0.5_agreement", "within_1_agreement", "pearson", "icc_humans",
            "krippendorff_alpha_interval"} <= names
    assert not any("kappa" in nm for nm in names) and "pass_agreement" not in names
    assert any("no Cohen's kappa" in nt for nt in rep.notes)
    jb, hb = _make_data("binary")
    rb = agreement_report(jb, hb, kind="binary", n_resamples=100, method="bca")
    names_b = {e.name for e in rb.entries}
    assert {"accuracy", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha_nominal", "human_percent_agreement",
            "ceiling_accuracy", "judge_loo_cohen_kappa"} <= names_b
    assert rb.ceiling.reference == "mode"
    assert all(math.isfinite(e.ci_low) for e in rb.entries)


def test_report_single_rater_and_validation() -> None:
    j, h = _make_data("continuous")
    rep = agreement_report(j, h[:, 0], kind="continuous", n_resamples=50)
    assert math.isnan(rep.entry("icc_humans").value) and "2 human raters" in rep.entry("icc_humans").note
    assert math.isnan(rep.entry("ceiling_pearson").value)
    assert math.isfinite(rep.entry("pearson").value)
    with pytest.raises(ValueError, match="0/1"):
        agreement_report([0, 1, 2], [[0], [1], [1]], kind="binary")
    with pytest.raises(ValueError, match="integer ratings"):
        agreement_report([1, 2.5], [[1], [2]], kind="ordinal")
    with pytest.raises(ValueError, match="outside scale"):
        agreement_report([1, 6], [[1], [2]], scale=(1, 5))
    with pytest.raises(ValueError, match="rows"):
        agreement_report([1, 2, 3], [[1], [2]])
    with pytest.raises(ValueError, match="kind"):
        agreement_report([1, 2], [[1], [2]], kind="likert")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- NQ dev data (binary)


def _nq_rows() -> list[dict[str, str]]:
    shared = ROOT.parent / "shared" / "data" / "nq301_dev.tsv"  # the full copy beside the repository, if any
    if shared.exists():
        with shared.open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    with gzip.open(ROOT / "judgekit/local/devsets/nq301_dev.tsv.gz", "rt", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_nq_dev_data_binary_case() -> None:
    rows = _nq_rows()
    label = {"Yes": 1.0, "No": 0.0, "": nan}
    humans = np.array([[label[r[f"annotator{i}"].strip()] for i in (1, 2, 3)] for r in rows])
    human = np.array([label[r["human"].strip()] for r in rows])
    gpt4 = np.array([label[r["gpt4_label"].strip()] for r in rows])
    assert len(rows) == 743  # the dev half (the README's figures are over all 1,490 rows)
    k12 = cohen_kappa(humans[:, 0], humans[:, 1])
    kg = cohen_kappa(gpt4, human)
    # measured on the dev half: 0.745 and 0.725 (README, all rows: 0.735 and 0.70)
    assert round(k12, 3) == 0.745 and abs(k12 - 0.735) < 0.03
    assert round(kg, 3) == 0.725 and abs(kg - 0.70) < 0.05
    assert percent_agreement(gpt4, human) == pytest.approx(0.8625, abs=5e-4)
    rep = agreement_report(gpt4, humans, kind="binary", groups=[r["qid"] for r in rows], n_resamples=200)
    # the file's final label is the annotators' majority: our mode reference reproduces it exactly
    assert rep.entry("accuracy").value == pytest.approx(percent_agreement(gpt4, human), abs=1e-12)
    assert rep.entry("cohen_kappa").value == pytest.approx(kg, abs=1e-12)
    e = rep.entry("cohen_kappa")
    assert 0.6 < e.ci_low < kg < e.ci_high < 0.85


# ------------------------------------------------------------------- docstring examples, benchmark


def test_docstring_examples() -> None:
    import doctest

    attempted = 0
    for mod in (ag_paired, ag_multirater, ag_intraclass, ag_correlations, ag_bootstrap, ag_ceiling, ag_report):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
        attempted += result.attempted
    assert attempted >= 20


def test_bench_agreement_runs_small() -> None:
    spec = importlib.util.spec_from_file_location("bench_agreement", ROOT / "bench" / "bench_agreement.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    for kind in ("ordinal", "continuous", "binary"):
        j, h, g, s = bench.synthetic(300, 3, 20, 4, kind)
        rep = agreement_report(j, h, kind=kind, scale=None if kind == "binary" else (1, 5), groups=g, systems=s,
                               n_resamples=50)
        assert rep.n_items == 300 and len(rep.entries) > 10
