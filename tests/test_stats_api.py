"""The public surface of judgekit.stats: each name is the statistic of its module (the same values on small
examples), documented, and importing the package stays cheap (no numpy, no scipy)."""

from __future__ import annotations

import doctest
import importlib
import math
import subprocess
import sys

import numpy as np
import pytest

import judgekit.stats as js
from judgekit.io.records import Judgment
from judgekit.stats import aggregate, paired_tests, passrate, ppi, robustness
from judgekit.stats import agreement as ag

nan = math.nan
JUDGE = np.array([1, 2, 3, 4, 5, 3, 2, 4, 5, 1, 3, 4], dtype=float)
HUMAN = np.array([1, 3, 3, 4, 4, 3, 2, 5, 5, 2, 2, 4], dtype=float)
RATINGS = np.array([[1, 1, 2], [2, 3, 3], [3, 3, 3], [4, 4, 5], [5, 4, 4], [2, nan, 2], [1, 2, 1], [4, 4, 4]])
GROUPS = np.array(["a", "a", "a", "a", "b", "b", "b", "b", "c", "c", "c", "c"])
SYSTEMS = np.array(["s1", "s2", "s3"] * 4)


def test_all_names_resolve_to_the_module_functions() -> None:
    assert js.__all__ == sorted(js.__all__) and set(js.__all__) == set(js._SOURCES)
    for name in js.__all__:
        assert getattr(js, name) is getattr(importlib.import_module(js._SOURCES[name]), name), name
    # the objects the older modules export are the same functions
    assert js.ppi_pass_rate is passrate.ppi_pass_rate is ppi.ppi_pass_rate
    assert js.bootstrap_mean_ci is robustness.bootstrap_mean_ci is paired_tests.bootstrap_mean_ci
    assert js.wilcoxon_pratt is robustness.wilcoxon_pratt and js.mcnemar_exact is robustness.mcnemar_exact
    assert js.wilson_interval is aggregate.wilson_interval
    with pytest.raises(AttributeError):
        js.no_such_statistic  # noqa: B018


def test_every_public_name_has_a_docstring() -> None:
    for name in js.__all__:
        doc = getattr(js, name).__doc__
        assert doc and len(doc.strip()) > 40, name
    assert js.__doc__ and "sklearn" in js.__doc__


def test_import_is_cheap() -> None:
    # what `import judgekit.stats` adds to `import judgekit` (whose own imports are another package's business)
    code = ("import sys, judgekit; before = set(sys.modules); import judgekit.stats; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('numpy', 'scipy', "
            "'krippendorff', 'rich', 'pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_agreement_functions_equal_the_underlying_ones() -> None:
    for w in (None, "linear", "quadratic"):
        assert js.cohen_kappa(JUDGE, HUMAN, weights=w, labels=range(1, 6)) == ag.paired.cohen_kappa(  # type: ignore[arg-type]
            JUDGE, HUMAN, weights=w, labels=range(1, 6))  # type: ignore[arg-type]
    assert js.percent_agreement(JUDGE, HUMAN, tolerance=1) == ag.percent_agreement(JUDGE, HUMAN, tolerance=1)
    assert js.pass_agreement(JUDGE, HUMAN, threshold=3) == ag.pass_agreement(JUDGE, HUMAN, threshold=3)
    assert js.fleiss_kappa(RATINGS) == ag.fleiss_kappa(RATINGS)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert js.krippendorff_alpha(RATINGS, level=level) == ag.krippendorff_alpha(RATINGS, level=level)  # type: ignore[arg-type]
    for kind in ("agreement", "consistency", "oneway"):
        for unit in ("single", "average"):
            assert js.icc(RATINGS, kind=kind, unit=unit) == ag.icc(RATINGS, kind=kind, unit=unit)  # type: ignore[arg-type]
    assert js.inter_human_ceiling(RATINGS).ceiling == ag.inter_human_ceiling(RATINGS).ceiling
    assert js.bootstrap_ci(np.mean, JUDGE, n_resamples=200) == ag.bootstrap_ci(np.mean, JUDGE, n_resamples=200)
    rep = js.agreement_report(JUDGE, np.column_stack([HUMAN, HUMAN[::-1]]), scale=(1, 5), n_resamples=50)
    assert rep.to_dict() == ag.agreement_report(JUDGE, np.column_stack([HUMAN, HUMAN[::-1]]), scale=(1, 5),
                                                n_resamples=50).to_dict()


@pytest.mark.parametrize("level", ["sample", "summary", "system"])
def test_correlation_shorthands_are_correlation_values(level: str) -> None:
    kw = {"level": level, "groups": GROUPS, "systems": SYSTEMS}
    for name in ("pearson", "spearman", "kendall"):
        value = getattr(js, name)(JUDGE, HUMAN, **kw)
        assert value == js.correlation(JUDGE, HUMAN, method=name, **kw).value, (name, level)
        assert not math.isnan(value)
    from scipy import stats

    if level == "sample":
        assert js.spearman(JUDGE, HUMAN) == pytest.approx(stats.spearmanr(JUDGE, HUMAN).statistic, abs=1e-12)
        assert js.kendall(JUDGE, HUMAN) == pytest.approx(stats.kendalltau(JUDGE, HUMAN).statistic, abs=1e-12)
        assert js.pearson(JUDGE, HUMAN) == pytest.approx(stats.pearsonr(JUDGE, HUMAN).statistic, abs=1e-12)


def _judgment(i: int, verdict: bool | None, item: str | None = None, cond: str | None = None,
              overall: float | None = None) -> Judgment:
    if verdict is None:
        return Judgment(id=item or str(i), model="m", judge="j", status="unscored", reason="parse error",
                        condition=cond)
    score = overall if overall is not None else (4.0 if verdict else 2.0)
    return Judgment(id=item or str(i), model="m", judge="j", status="scored", overall=score, passed=verdict,
                    condition=cond)


@pytest.mark.parametrize("resample", ["auto", "answers", "items"])
def test_pass_rate_equals_pass_rates_on_records(resample: str) -> None:
    rng = np.random.default_rng(3)
    verdicts: list[bool | None] = [bool(v) for v in rng.random(40) < 0.6]
    verdicts[3] = verdicts[17] = None
    items = [f"q{i % 15}" for i in range(40)]
    records = [_judgment(i, v, items[i]) for i, v in enumerate(verdicts)]
    row = passrate.pass_rates(records, by=(), n_resamples=300, seed=5, resample=resample)[0]  # type: ignore[arg-type]
    mine = js.pass_rate(verdicts, items=items, n_resamples=300, seed=5, resample=resample)  # type: ignore[arg-type]
    assert mine == row
    # without item ids every answer is its own item; 0/1 and NaN work as bool and None
    plain = js.pass_rate([1, 0, 1, 1, nan], n_resamples=100)
    assert (plain.passed, plain.scored, plain.unscored, plain.resampled) == (3, 4, 1, "answers")
    assert plain == passrate.pass_rates([_judgment(i, v) for i, v in enumerate([True, False, True, True, None])],
                                        by=(), n_resamples=100)[0]
    with pytest.raises(ValueError, match="verdicts"):
        js.pass_rate([1, 2])
    with pytest.raises(ValueError, match="one id per verdict"):
        js.pass_rate([1, 0], items=["a"])
    with pytest.raises(ValueError, match="n_resamples"):
        js.pass_rate([1, 0], n_resamples=0)


def test_ppi_pass_rate_equals_the_module_function() -> None:
    f_unl, f_lab, y_lab = [1, 1, 0, 1, 1, 0, 1, 1], [1, 1, 0, 1, 0], [1, 0, 0, 1, 0]
    assert js.ppi_pass_rate(f_unl, f_lab, y_lab) == ppi.ppi_pass_rate(f_unl, f_lab, y_lab)
    assert js.wilson_interval(3, 10) == aggregate.wilson_interval(3, 10)


def test_paired_difference_equals_a_compare_conditions_row() -> None:
    rng = np.random.default_rng(4)
    clean = rng.integers(1, 6, 30).astype(float)
    deg = np.clip(clean + rng.choice([-2, -1, 0, 0, 1], 30), 1, 5)
    records = ([_judgment(i, c >= 3, cond=None, overall=c) for i, c in enumerate(clean)]
               + [_judgment(i, d >= 3, cond="blur", overall=d) for i, d in enumerate(deg)])
    rows = robustness.compare_conditions(records, [], n_boot=500, seed=2)
    for criterion, base, other, binary in (("overall", clean, deg, False),
                                           ("pass", (clean >= 3) * 1.0, (deg >= 3) * 1.0, True)):
        row = next(r for r in rows if r.criterion == criterion and r.category == robustness.ALL_CATEGORIES)
        pd = js.paired_difference(base, other, binary=binary, n_boot=500, seed=2)
        assert (pd.n, pd.n_dropped, pd.n_worse, pd.n_better, pd.test, pd.note) == (
            row.n, row.n_dropped, row.n_worse, row.n_better, row.test, row.note)
        assert (pd.baseline, pd.degraded, pd.diff, pd.p_value) == pytest.approx(
            (row.clean, row.degraded, row.diff, row.p_value), abs=1e-12)
        assert (pd.ci_low, pd.ci_high) == pytest.approx((row.ci_low, row.ci_high), abs=1e-12)
        assert pd.significant == row.significant
    # a missing side drops the pair; too few pairs: means but no interval or test
    few = js.paired_difference([1, 2, nan], [2, 2, 3])
    assert (few.n, few.n_dropped, few.diff) == (2, 1, 0.5)
    assert math.isnan(few.ci_low) and math.isnan(few.p_value) and "fewer than 5 pairs" in few.note
    with pytest.raises(ValueError, match="same length"):
        js.paired_difference([1, 2], [1])


def test_docstring_examples_of_the_stats_modules() -> None:
    attempted = 0
    for mod in (aggregate, passrate, ppi, paired_tests, robustness):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__
        attempted += result.attempted
    assert attempted >= 5
