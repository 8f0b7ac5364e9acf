"""Unit tests of aggregation (judgekit.stats.aggregate): Wilson intervals and per-group summaries."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.stats import norm

from judgekit.io.records import Judgment
from judgekit.stats.aggregate import GroupSummary, summarize, wilson_interval


def wilson_closed_form(s: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval without continuity correction, written out."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = s / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17,
# Table I, method 3 (Wilson score interval, no continuity correction); also quoted on Wikipedia.
PUBLISHED = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("s", "n", "low", "high"), PUBLISHED)
def test_wilson_matches_published_values(s: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(s, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(("s", "n"), [(81, 263), (15, 148), (1, 29), (0, 20), (20, 20), (1, 1), (0, 1),
                                      (3, 10), (50, 100), (999, 1000), (7, 9)])
@pytest.mark.parametrize("confidence", [0.95, 0.90, 0.99])
def test_wilson_matches_closed_form(s: int, n: int, confidence: float) -> None:
    lo, hi = wilson_interval(s, n, confidence=confidence)
    elo, ehi = wilson_closed_form(s, n, confidence)
    assert lo == pytest.approx(max(elo, 0.0), abs=1e-9)
    assert hi == pytest.approx(min(ehi, 1.0), abs=1e-9)
    assert 0.0 <= lo <= s / n <= hi <= 1.0


def test_wilson_equals_scipy_binomtest_on_a_grid() -> None:
    """The interval is written out with the standard library (no scipy at summary time); scipy's Wilson
    interval is the reference, to rounding."""
    from scipy.stats import binomtest

    for n in [*range(1, 41), 97, 1000, 50_000]:
        for s in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for confidence in (0.8, 0.95, 0.99):
                ci = binomtest(s, n).proportion_ci(confidence_level=confidence, method="wilson")
                assert wilson_interval(s, n, confidence=confidence) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_refuses_a_confidence_outside_0_1() -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1.0)


def test_wilson_wider_with_more_confidence_and_narrower_with_more_data() -> None:
    lo90, hi90 = wilson_interval(30, 100, confidence=0.90)
    lo99, hi99 = wilson_interval(30, 100, confidence=0.99)
    assert lo99 < lo90 and hi99 > hi90
    lo_big, hi_big = wilson_interval(300, 1000)
    lo_small, hi_small = wilson_interval(30, 100)
    assert hi_big - lo_big < hi_small - lo_small


def test_wilson_symmetry() -> None:
    lo, hi = wilson_interval(3, 17)
    lo2, hi2 = wilson_interval(14, 17)
    assert lo == pytest.approx(1 - hi2, abs=1e-12)
    assert hi == pytest.approx(1 - lo2, abs=1e-12)


def test_wilson_n_zero_is_nan() -> None:
    lo, hi = wilson_interval(0, 0)
    assert math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize(("s", "n"), [(5, 4), (-1, 4)])
def test_wilson_rejects_impossible_counts(s: int, n: int) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.n"):
        wilson_interval(s, n)


# ---- summarize ----------------------------------------------------------------------------------------

CRITERIA = ["accuracy", "clarity"]


def scored(model: str, accuracy: float, clarity: float, overall: float, passed: bool, **kw: Any) -> Judgment:
    return Judgment(id=kw.pop("id", "x"), model=model, judge="j", status="scored",
                    scores={"accuracy": accuracy, "clarity": clarity}, overall=overall, passed=passed, **kw)


def unscored(model: str, **kw: Any) -> Judgment:
    return Judgment(id=kw.pop("id", "x"), model=model, judge="j", status="unscored", reason="no valid reply",
                    **kw)


def test_summarize_by_model() -> None:
    js = [
        scored("b", 4, 5, 4.0, True),
        scored("a", 2, 3, 2.0, False),
        scored("a", 4, 4, 4.0, True),
        scored("a", 5, 2, 3.0, True),
        unscored("a"),
        scored("b", 2, 1, 1.0, False),
    ]
    out = summarize(js, ["model"], CRITERIA)
    assert [g.key for g in out] == [("a",), ("b",)]
    a, b = out
    assert isinstance(a, GroupSummary)
    assert (a.n, a.scored, a.unscored) == (4, 3, 1)
    assert a.means == {"accuracy": pytest.approx(11 / 3), "clarity": pytest.approx(3.0)}
    assert a.mean_overall == pytest.approx(3.0)
    assert a.passed == 2
    assert a.pass_rate == pytest.approx(2 / 3)  # over scored judgments only, not 2/4
    assert a.pass_ci == pytest.approx(wilson_closed_form(2, 3))
    assert (b.n, b.scored, b.unscored, b.passed) == (2, 2, 0, 1)
    assert b.means == {"accuracy": 3.0, "clarity": 3.0}
    assert b.mean_overall == 2.5
    assert b.pass_rate == 0.5


def test_unscored_never_moves_a_score() -> None:
    base = [scored("m", 4, 4, 4.0, True), scored("m", 2, 2, 2.0, False)]
    with_failures = [*base, unscored("m"), unscored("m"), unscored("m")]
    (g0,) = summarize(base, ["model"], CRITERIA)
    (g1,) = summarize(with_failures, ["model"], CRITERIA)
    assert (g1.means, g1.mean_overall, g1.passed, g1.pass_rate, g1.pass_ci) == (
        g0.means, g0.mean_overall, g0.passed, g0.pass_rate, g0.pass_ci)
    assert (g1.n, g1.unscored) == (5, 3)


def test_all_unscored_group() -> None:
    (g,) = summarize([unscored("m"), unscored("m")], ["model"], CRITERIA)
    assert (g.n, g.scored, g.unscored, g.passed) == (2, 0, 2, 0)
    assert g.means == {}
    assert math.isnan(g.mean_overall) and math.isnan(g.pass_rate)
    assert all(math.isnan(x) for x in g.pass_ci)


def test_summarize_by_two_keys_with_missing_values() -> None:
    js = [
        scored("m", 5, 5, 5.0, True, category="objects"),
        scored("m", 1, 1, 1.0, False, category=None),
        scored("m", 3, 3, 3.0, True, category="objects"),
        scored("n", 4, 4, 4.0, True, category="defects", condition="blur"),
    ]
    out = summarize(js, ["model", "category"], CRITERIA)
    assert [g.key for g in out] == [("m", "-"), ("m", "objects"), ("n", "defects")]
    assert out[1].means == {"accuracy": 4.0, "clarity": 4.0}
    assert out[1].pass_rate == 1.0
    assert out[0].pass_rate == 0.0
    by_cond = summarize(js, ["condition"], CRITERIA)
    assert [(g.key, g.n) for g in by_cond] == [(("-",), 3), (("blur",), 1)]


def test_summarize_overall_group_and_empty_input() -> None:
    js = [scored("a", 4, 4, 4.0, True), scored("b", 2, 2, 2.0, False)]
    (g,) = summarize(js, [], CRITERIA)
    assert g.key == ()
    assert g.n == 2 and g.mean_overall == 3.0 and g.pass_rate == 0.5
    assert summarize([], ["model"], CRITERIA) == []


def test_summarize_means_are_exact_sums() -> None:
    js = [scored("m", 0.1, 0.1, 0.1, False) for _ in range(10)]
    (g,) = summarize(js, ["model"], CRITERIA)
    assert g.means["accuracy"] == 0.1  # fsum: no drift
    assert g.mean_overall == 0.1
