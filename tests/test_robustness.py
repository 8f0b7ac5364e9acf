"""Unit tests of the clean-vs-degraded comparison (judgekit.stats.robustness): pairing, paired bootstrap
intervals, Wilcoxon (Pratt) and exact McNemar tests, pooled conditions, rendering."""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from scipy.stats import bootstrap, norm, rankdata, wilcoxon

from judgekit.io.records import Judgment
from judgekit.stats.robustness import (
    ALL_CATEGORIES,
    POOLED,
    RobustnessRow,
    bootstrap_mean_ci,
    compare_conditions,
    mcnemar_exact,
    robustness_markdown,
    robustness_table,
    rows_to_dicts,
    wilcoxon_pratt,
)

CRITERIA = ["acc", "style"]


def J(i: str | int, cond: str | None, overall: float | None, *, model: str = "m", judge: str = "j",
      cat: str | None = "general", status: str = "scored", acc: float | None = None,
      passed: bool | None = None) -> Judgment:
    """A judgment whose criteria default to the overall score and which passes when overall >= 3."""
    if status != "scored":
        return Judgment(id=str(i), model=model, condition=cond, category=cat, judge=judge, status="unscored",
                        reason="parse error")
    assert overall is not None
    return Judgment(id=str(i), model=model, condition=cond, category=cat, judge=judge, status="scored",
                    scores={"acc": overall if acc is None else acc, "style": overall}, overall=overall,
                    passed=overall >= 3 if passed is None else passed)


def find(rows: list[RobustnessRow], **kw: Any) -> RobustnessRow:
    kw = {"category": ALL_CATEGORIES, "criterion": "overall", **kw}
    hits = [r for r in rows if all(getattr(r, k) == v for k, v in kw.items())]
    assert len(hits) == 1, (kw, hits)
    return hits[0]


def minus_one(n: int = 12) -> list[Judgment]:
    clean = [2, 3, 4, 5, 3, 4, 5, 2, 4, 3, 5, 4][:n]
    out = [J(i, "clean", float(s)) for i, s in enumerate(clean)]
    out += [J(i, "low_light", float(s - 1)) for i, s in enumerate(clean)]
    return out


# ---------------------------------------------------------------------------------------- hand-made cases


def test_constant_drop_of_one() -> None:
    rows = compare_conditions(minus_one(), CRITERIA, n_boot=500)
    for crit in ["acc", "style", "overall"]:
        r = find(rows, condition="low_light", criterion=crit)
        assert r.n == 12 and r.n_dropped == 0
        assert r.clean == pytest.approx(44 / 12)
        assert r.degraded == pytest.approx(32 / 12)
        assert r.diff == -1.0
        assert (r.ci_low, r.ci_high) == (-1.0, -1.0)
        assert r.test == "wilcoxon-pratt"
        # all 12 differences tie at -1: exhaustive sign-flip permutation, only the all-negative and the
        # all-positive of the 2**12 flips are as extreme -> p = 2 / 4096
        assert r.p_value == pytest.approx(2 / 4096)
        assert (r.n_worse, r.n_better) == (12, 0)
        assert r.significant
    # pass: clean passes where s >= 3 (10 items), degraded where s - 1 >= 3 (7): 3 discordant, all worse
    p = find(rows, condition="low_light", criterion="pass")
    assert (p.clean, p.degraded) == (pytest.approx(10 / 12), pytest.approx(7 / 12))
    assert (p.n_worse, p.n_better) == (3, 0)
    assert p.test == "mcnemar-exact"
    assert p.p_value == pytest.approx(0.25)  # 2 * P[X <= 0], X ~ Bin(3, 1/2)


def test_constant_drop_large_sample_small_p() -> None:
    js = [J(i, None, float(2 + i % 4)) for i in range(40)] + [J(i, "blur", float(1 + i % 4)) for i in range(40)]
    r = find(compare_conditions(js, CRITERIA, n_boot=200), condition="blur")
    assert r.diff == -1.0 and (r.ci_low, r.ci_high) == (-1.0, -1.0)
    assert r.p_value < 1e-6


def test_no_effect() -> None:
    js = [J(i, "clean", float(1 + i % 5)) for i in range(20)] + [J(i, "blur", float(1 + i % 5)) for i in range(20)]
    rows = compare_conditions(js, CRITERIA, n_boot=300)
    for crit in ["acc", "overall"]:
        r = find(rows, condition="blur", criterion=crit)
        assert r.diff == 0.0 and (r.ci_low, r.ci_high) == (0.0, 0.0)
        assert r.p_value == 1.0  # documented: every difference 0 -> p = 1.0
        assert "all differences are 0" in r.note
        assert not r.significant
    p = find(rows, condition="blur", criterion="pass")
    assert p.p_value == 1.0 and p.test == "mcnemar-exact" and "no discordant" in p.note


def test_none_empty_and_clean_are_the_baseline() -> None:
    js = [J(0, None, 4.0), J(1, "", 4.0), J(2, "clean", 4.0), J(3, None, 4.0), J(4, "", 4.0)]
    js += [J(i, "jpeg@2", 3.0) for i in range(5)]
    rows = compare_conditions(js, CRITERIA, n_boot=100)
    assert {r.condition for r in rows} == {"jpeg@2"}
    assert find(rows, condition="jpeg@2").n == 5
    # another baseline: "clean" becomes a compared condition
    rows = compare_conditions(js, CRITERIA, baseline="jpeg@2", n_boot=100)
    r = find(rows, condition="clean")
    assert r.baseline == "jpeg@2" and r.diff == 1.0


# ------------------------------------------------------------------------------------------------ pairing


def test_pairing_missing_and_unscored() -> None:
    js = [J(i, "clean", 4.0) for i in range(10)]  # ids 0-9 clean
    js += [J(i, "blur", 3.0) for i in range(2, 12)]  # ids 2-11 degraded: 0,1 clean only; 10,11 degraded only
    js[3] = J(3, "clean", None, status="unscored")  # clean side unscored
    js[10 + 3] = J(5, "blur", None, status="unscored")  # degraded side unscored (id 5 is the 4th degraded)
    js.append(J(3, "blur", 1.0, model="other"))  # another model: never paired with model m
    r = find(compare_conditions(js, CRITERIA, n_boot=100), model="m", condition="blur")
    assert r.n == 6  # ids 2, 4, 6, 7, 8, 9
    assert r.n_dropped == 2  # ids 3 and 5: never imputed
    assert (r.n_baseline_only, r.n_degraded_only) == (2, 2)
    assert (r.clean, r.degraded, r.diff) == (4.0, 3.0, -1.0)


def test_pairs_within_judge() -> None:
    js = [J(i, "clean", 4.0, judge="A") for i in range(6)] + [J(i, "blur", 2.0, judge="A") for i in range(6)]
    js += [J(i, "clean", 5.0, judge="B") for i in range(6)] + [J(i, "blur", 5.0, judge="B") for i in range(6)]
    js += [J(i, "blur", 1.0, judge="C") for i in range(6)]  # judge C has no clean judgments
    rows = compare_conditions(js, CRITERIA, n_boot=100)
    assert find(rows, judge="A", condition="blur").diff == -2.0
    assert find(rows, judge="B", condition="blur").diff == 0.0
    c = find(rows, judge="C", condition="blur")
    assert c.n == 0 and c.n_degraded_only == 6 and math.isnan(c.diff) and "no scored pairs" in c.note


def test_duplicates_and_reserved_names_raise() -> None:
    with pytest.raises(ValueError, match="two judgments"):
        compare_conditions([J(1, None, 3.0), J(1, "clean", 4.0)], CRITERIA)
    with pytest.raises(ValueError, match="always reported"):
        compare_conditions(minus_one(), ["acc", "pass"])
    with pytest.raises(ValueError, match="reserved"):
        compare_conditions([J(1, None, 3.0, cat="all")], CRITERIA)


def test_small_groups_give_nan_not_a_crash() -> None:
    js = [J(i, "clean", 4.0) for i in range(3)] + [J(i, "blur", 3.0) for i in range(3)]
    r = find(compare_conditions(js, CRITERIA), condition="blur")
    assert r.n == 3 and r.diff == -1.0
    assert math.isnan(r.ci_low) and math.isnan(r.ci_high) and math.isnan(r.p_value) and r.test == ""
    assert "fewer than 5 pairs" in r.note and not r.significant
    assert compare_conditions([], CRITERIA) == []


def test_per_category_rows() -> None:
    js = []
    for i in range(10):
        cat = "general" if i < 6 else "pairwise"
        js += [J(i, "clean", 4.0, cat=cat), J(i, "blur", 4.0 - (i >= 6) * 2, cat=cat)]
    rows = compare_conditions(js, CRITERIA, n_boot=200)
    assert {r.category for r in rows} == {ALL_CATEGORIES, "general", "pairwise"}
    g, p, a = (find(rows, condition="blur", category=c) for c in ("general", "pairwise", ALL_CATEGORIES))
    assert (g.n, g.diff) == (6, 0.0)
    assert (p.n, p.diff) == (4, -2.0) and math.isnan(p.ci_low)  # 4 < min_pairs
    assert (a.n, a.diff) == (10, pytest.approx(-0.8))
    # "all" rows first, then categories by name; metrics in the order criteria, overall, pass
    assert [(r.category, r.criterion) for r in rows][:5] == [("all", "acc"), ("all", "style"), ("all", "overall"),
                                                             ("all", "pass"), ("general", "acc")]


def test_pooled_condition_row() -> None:
    js = []
    for i in range(8):
        js.append(J(i, "clean", 4.0))
        js.append(J(i, "blur", 2.0))
        js.append(J(i, "low_light", 3.0 if i < 6 else 4.0))
    js.append(J(8, "clean", 5.0))  # only clean
    js.append(J(9, "clean", 5.0))
    js.append(J(9, "blur", None, status="unscored"))  # one degraded side unscored -> pooled pair dropped
    js.append(J(9, "low_light", 5.0))
    rows = compare_conditions(js, CRITERIA, n_boot=200)
    r = find(rows, condition=POOLED)
    assert r.n == 8 and r.n_dropped == 1 and r.n_baseline_only == 1
    # per item: mean(2, 3) = 2.5 (6 items), mean(2, 4) = 3 (2 items)
    assert r.degraded == pytest.approx((6 * 2.5 + 2 * 3.0) / 8)
    assert r.diff == pytest.approx(-1.375)
    assert "mean over its 2 degraded" in r.note
    assert find(rows, condition="low_light").n == 9  # item 9 is paired there
    # pass in the pooled row is a fraction per item, so the test is Wilcoxon, not McNemar
    assert find(rows, condition=POOLED, criterion="pass").test == "wilcoxon-pratt"
    assert find(rows, condition="blur", criterion="pass").test == "mcnemar-exact"
    # pooled rows come last within a model and category
    conds = [r.condition for r in rows if r.category == ALL_CATEGORIES and r.criterion == "overall"]
    assert conds == ["blur", "low_light", POOLED]
    # only one degraded condition: no pooled row
    single = compare_conditions([j for j in js if j.condition != "low_light"], CRITERIA, n_boot=50)
    assert all(r.condition != POOLED for r in single)


def test_pooled_one_degradation_per_item_uses_mcnemar() -> None:
    # RobustMAD design: every item gets ONE of the degradations
    js = [J(i, "clean", 3.0 + (i % 3 == 0)) for i in range(12)]
    js += [J(i, "low_light" if i % 2 else "motion_blur", 2.0 + (i % 4 == 0)) for i in range(12)]
    r = find(compare_conditions(js, CRITERIA, n_boot=100), condition=POOLED, criterion="pass")
    assert r.test == "mcnemar-exact" and r.n == 12
    assert "mean over its 1 degraded" in r.note


# ------------------------------------------------------------------------------------------- determinism


def noisy(seed: int = 3, n: int = 30, models: tuple[str, ...] = ("m1", "m2")) -> list[Judgment]:
    rnd = random.Random(seed)
    js = []
    for m in models:
        for i in range(n):
            c = float(rnd.randint(1, 5))
            cat = "general" if i % 3 else "pairwise"
            js.append(J(i, None, c, model=m, cat=cat))
            for cond in ("blur", "low_light"):
                js.append(J(i, cond, float(min(5, max(1, c + rnd.choice([-2, -1, -1, 0, 0, 0, 1])))), model=m,
                            cat=cat, acc=float(rnd.randint(1, 5))))
    return js


def test_deterministic_and_order_independent() -> None:
    js = noisy()
    a = compare_conditions(js, CRITERIA, n_boot=300, seed=5)
    b = compare_conditions(list(reversed(js)), CRITERIA, n_boot=300, seed=5)
    assert rows_to_dicts(a) == rows_to_dicts(b)
    # one model's intervals do not depend on the other models being present
    # (the adjusted p-values do depend on the family, i.e. on every row present: compared unadjusted)
    solo = compare_conditions([j for j in js if j.model == "m1"], CRITERIA, n_boot=300, seed=5, correction="none")
    a_none = compare_conditions(js, CRITERIA, n_boot=300, seed=5, correction="none")
    family_keys = ("p_adjusted", "family_size", "family", "significant_adjusted")
    strip = lambda ds: [{k: v for k, v in d.items() if k not in family_keys} for d in ds]  # noqa: E731
    assert strip(rows_to_dicts(solo)) == strip([d for d in rows_to_dicts(a_none) if d["model"] == "m1"])
    c = compare_conditions(js, CRITERIA, n_boot=300, seed=6)
    assert [(r.ci_low, r.ci_high) for r in a] != [(r.ci_low, r.ci_high) for r in c]
    assert [r.diff for r in a] == [r.diff for r in c]


# -------------------------------------------------------------------------------- statistics vs references


def test_bootstrap_matches_slow_loop() -> None:
    d = np.round(np.random.default_rng(11).normal(-0.3, 1.0, size=23), 2)
    ci = bootstrap_mean_ci(d, n_boot=400, confidence=0.9, rng=np.random.default_rng(7))
    # the documented scheme, written out: one block of indices, then one resample at a time
    idx = np.random.default_rng(7).integers(0, 23, size=(400, 23))
    means = sorted(math.fsum(d[i] for i in row) / 23 for row in idx)

    def quantile(q: float) -> float:  # linear interpolation between order statistics
        pos = (len(means) - 1) * q
        lo = math.floor(pos)
        return means[lo] + (pos - lo) * (means[min(lo + 1, len(means) - 1)] - means[lo])

    assert ci[0] == pytest.approx(quantile(0.05), abs=1e-12)
    assert ci[1] == pytest.approx(quantile(0.95), abs=1e-12)


def test_row_interval_follows_the_seed_scheme() -> None:
    js = noisy(n=25, models=("m1",))
    rows = compare_conditions(js, CRITERIA, n_boot=250, seed=9)
    clean = {j.id: j for j in js if j.condition is None}
    blur = {j.id: j for j in js if j.condition == "blur"}
    ids = sorted(clean)
    diffs = np.array([[blur[i].scores["acc"] - clean[i].scores["acc"], blur[i].overall - clean[i].overall,  # type: ignore[operator]
                       float(blur[i].passed) - float(clean[i].passed)] for i in ids])  # type: ignore[arg-type]
    # the group's columns in metric order: acc, style (= overall in these records), overall, pass
    ci = bootstrap_mean_ci(diffs[:, [0, 1, 1, 2]], n_boot=250, rng=np.random.default_rng(9))
    for k, crit in [(0, "acc"), (2, "overall"), (3, "pass")]:
        r = find(rows, condition="blur", criterion=crit)
        assert (r.ci_low, r.ci_high) == (pytest.approx(ci[0, k]), pytest.approx(ci[1, k]))


def test_bootstrap_close_to_scipy_paired_percentile() -> None:
    rnd = np.random.default_rng(2)
    clean = rnd.integers(1, 6, size=40).astype(float)
    deg = np.clip(clean + rnd.choice([-2, -1, -1, 0, 0, 1], size=40), 1, 5)
    js = [J(i, None, c) for i, c in enumerate(clean)] + [J(i, "blur", x) for i, x in enumerate(deg)]
    r = find(compare_conditions(js, CRITERIA, n_boot=20000, seed=1), condition="blur")
    ref = bootstrap((clean, deg), lambda c, d, axis: np.mean(d - c, axis=axis), paired=True, vectorized=True,
                    method="percentile", n_resamples=20000, confidence_level=0.95, rng=np.random.default_rng(0))
    se = float(np.std(deg - clean) / math.sqrt(40))
    assert r.diff == pytest.approx(float(np.mean(deg - clean)))
    assert r.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.1 * se)
    assert r.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.1 * se)


def test_mcnemar_exact_against_hand_values() -> None:
    # 8 pass->fail, 2 fail->pass: 2 * (C(10,0) + C(10,1) + C(10,2)) / 2**10 = 112 / 1024
    assert mcnemar_exact(8, 2) == pytest.approx(112 / 1024, abs=1e-15)
    assert mcnemar_exact(2, 8) == pytest.approx(112 / 1024, abs=1e-15)
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    # through compare_conditions: 8 items pass -> fail, 2 fail -> pass, 5 pass both, 3 fail both
    clean = [4.0] * 8 + [2.0] * 2 + [4.0] * 5 + [1.0] * 3
    deg = [2.0] * 8 + [3.0] * 2 + [5.0] * 5 + [2.0] * 3
    js = [J(i, None, c) for i, c in enumerate(clean)] + [J(i, "blur", x) for i, x in enumerate(deg)]
    r = find(compare_conditions(js, CRITERIA, n_boot=100), condition="blur", criterion="pass")
    assert (r.n_worse, r.n_better, r.test) == (8, 2, "mcnemar-exact")
    assert r.p_value == pytest.approx(112 / 1024, abs=1e-15)
    assert r.diff == pytest.approx(-6 / 18)


def brute_force_pratt(d: np.ndarray) -> float:
    """Two-sided exact p of Pratt's T+ by enumerating every sign assignment of the non-zero differences."""
    ranks = rankdata(np.abs(d))  # Pratt: zeros are ranked, then left out of the sums
    t_obs = ranks[d > 0].sum()
    r_nz = ranks[d != 0]
    null = np.array([sum(r for r, s in zip(r_nz, signs, strict=True) if s > 0)
                     for signs in itertools.product([-1, 1], repeat=len(r_nz))])
    return min(1.0, 2 * min(np.mean(null <= t_obs + 1e-9), np.mean(null >= t_obs - 1e-9)))


@pytest.mark.parametrize("d", [
    [-1.0, -1.0, 0.0, 0.0, -2.0, 1.0, -1.0, 0.0, -0.5],
    [0.0] * 20 + [-1.0, -1.0, -1.0, 1.0, -2.0, -2.0, 2.0, -1.0, -3.0, -1.0, 1.0 / 3.0],  # n = 31, 11 non-zero
    [-4.0] * 10 + [4.0],
    [1.0, 1.0, 0.0, 0.0, 2.0, -1.0, 1.0, 0.0, 0.5, 3.0],  # the upper tail
    [2.0] * 9 + [-2.0, 0.0],
])
def test_wilcoxon_exact_is_sign_flip_enumeration(d: list[float]) -> None:
    p, note = wilcoxon_pratt(d)
    assert note == "" and p == pytest.approx(brute_force_pratt(np.array(d)), rel=1e-12)
    assert wilcoxon_pratt([-x for x in d])[0] == pytest.approx(p, rel=1e-12)  # symmetric in the sign


def test_wilcoxon_exact_without_ties_matches_scipy() -> None:
    d = np.random.default_rng(8).normal(-0.4, 1.0, size=30)
    assert wilcoxon_pratt(d)[0] == pytest.approx(wilcoxon(d, method="exact").pvalue, rel=1e-12)
    p, _ = wilcoxon_pratt([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0])  # all 6 negative, distinct: 2 / 2**6
    assert p == pytest.approx(2 / 64)
    assert wilcoxon_pratt([0.1 + 0.2 - 0.3, 0.0]) == (1.0, "all differences are 0")  # float noise is 0
    assert math.isnan(wilcoxon_pratt([])[0])


def test_wilcoxon_large_sample_is_pratt_normal_approximation() -> None:
    rnd = np.random.default_rng(4)
    d = rnd.choice([-2.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0], size=60)
    # Pratt's statistic with Cureton's variance and the tie correction over non-zero ties, written out
    n, z0 = len(d), int((d == 0).sum())
    ranks = rankdata(np.abs(d))
    t_plus = ranks[d > 0].sum()
    mean = (n * (n + 1) - z0 * (z0 + 1)) / 4
    _, counts = np.unique(np.abs(d[d != 0]), return_counts=True)
    var = (n * (n + 1) * (2 * n + 1) - z0 * (z0 + 1) * (2 * z0 + 1) - np.sum(counts**3 - counts) / 2) / 24
    expected = 2 * norm.sf(abs(t_plus - mean) / math.sqrt(var))
    p, _ = wilcoxon_pratt(d)
    assert p == pytest.approx(expected, rel=1e-9)
    ref = wilcoxon(d, zero_method="pratt", correction=False, method="asymptotic").pvalue
    assert p == pytest.approx(ref, rel=1e-9)
    assert wilcoxon_pratt(-d)[0] == pytest.approx(p, rel=1e-12)


def test_published_robustmad_example_as_scenario() -> None:
    # RobustMAD: gemini-3-flash, general category, mean overall 4.0976 clean -> 4.0512 degraded. Both are
    # k / 410 (410 images): 1680 / 410 and 1661 / 410. A scenario with those sums: 40 answers lose a point
    # and 21 gain one.
    clean = [5.0] * 100 + [4.0] * 250 + [3.0] * 60
    deg = [5.0] * 100 + [3.0] * 40 + [4.0] * 210 + [4.0] * 21 + [3.0] * 39
    js = [J(i, None, c, model="gemini-3-flash") for i, c in enumerate(clean)]
    js += [J(i, "low_light", x, model="gemini-3-flash") for i, x in enumerate(deg)]
    r = find(compare_conditions(js, CRITERIA), condition="low_light")
    assert (r.n, r.n_worse, r.n_better) == (410, 40, 21)
    assert r.clean == pytest.approx(4.0976, abs=5e-5) and r.degraded == pytest.approx(4.0512, abs=5e-5)
    assert r.diff == pytest.approx(-19 / 410)
    assert r.ci_low < r.diff < r.ci_high
    # every non-zero difference is +-1 (one tie group) and 349 are 0: Pratt's z written out
    n, z0 = 410, 349
    mean = (n * (n + 1) - z0 * (z0 + 1)) / 4
    var = (n * (n + 1) * (2 * n + 1) - z0 * (z0 + 1) * (2 * z0 + 1) - (61**3 - 61) / 2) / 24
    t_plus = 21 * (z0 + 31)  # the 61 tied |1| share the average rank 350 + 30 = 380
    assert r.p_value == pytest.approx(2 * norm.sf(abs(t_plus - mean) / math.sqrt(var)), rel=1e-9)


# ---------------------------------------------------------------------------------------------- rendering


def test_rendering() -> None:
    rows = compare_conditions([*minus_one(), J(0, "blur", 2.0)], CRITERIA, n_boot=200)
    console = Console(width=200, record=True, color_system=None)
    console.print(robustness_table(rows))
    text = console.export_text()
    assert "low_light" in text and "-1.000 [-1.000, -1.000] *" in text
    assert "acc" not in text.split("Δ =")[0]  # default: overall and pass rows only
    assert "general" in text and "Judge" not in text  # one judge: no judge column
    md = robustness_markdown(rows)
    assert "**-1.000 [-1.000, -1.000]** *" in md
    assert "| m | j | general | low_light | acc |" in md
    assert "-25.0 pp" in md  # pass rate 83.3 % -> 58.3 %
    data = rows_to_dicts(rows)
    json.dumps(data, allow_nan=False)
    blur = next(d for d in data if d["condition"] == "blur")
    assert blur["n"] == 1 and blur["ci_low"] is None and blur["significant"] is False
    only_all = robustness_table(rows, metrics=None, categories=False)
    assert only_all.row_count == len([r for r in rows if r.category == ALL_CATEGORIES])
