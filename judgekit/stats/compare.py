"""Two judgings of the same answers compared (``judgekit compare``): per-model paired differences of pass rate
and mean overall score, rank changes, and the agreement of the two runs.

Conventions:

- an answer is the key ``(id, model, condition)`` (an empty condition counts as ``clean``); the two runs are
  matched on it. Answers in one run only are counted (``only_a``, ``only_b``) and take no part in any figure;
- a matched answer unscored in either run is counted (``unscored``) and left out of every pass and overall
  figure (never counted as a fail); the rest are the *compared* pairs;
- differences are ``B - A``. Their 95 % intervals are paired percentile bootstraps over the compared answers
  of the model (:func:`~judgekit.stats.paired_tests.bootstrap_mean_ci`, the pass indicator and overall score
  resampled together, ``numpy.random.default_rng(seed)`` per model); the tests are McNemar's exact test on
  the discordant pass verdicts and Wilcoxon's signed-rank test with Pratt's zeros on the overall differences;
- multiple comparisons: the family is every test of the per-model table (McNemar and Wilcoxon of every model,
  ``2 x models`` tests, fewer when a test has no p-value); their p-values are adjusted together by
  ``correction`` (:mod:`judgekit.stats.multiple`; Holm by default) into ``mcnemar_p_adj`` / ``wilcoxon_p_adj``,
  and the tables star a test when its adjusted p-value is below 0.05;
- ranks are by pass rate over the compared answers (:func:`~judgekit.stats.ranks.rank_ranges`, ties share the
  better rank, as on the leaderboard), under A and under B; ``rank_change = rank_a - rank_b`` (positive: the
  model moved up under B);
- agreement is computed at the **sample level**: every compared answer is one pair (no grouping by question or
  model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from judgekit.io.records import Judgment

__all__ = ["ModelComparison", "RunAgreement", "RunComparison", "answer_key", "compare_runs"]

Key = tuple[str, str, str]


def answer_key(j: Judgment) -> Key:
    """The key two runs are matched on: ``(id, model, condition)``, an empty condition read as ``clean``."""
    return (j.id, j.model, j.condition or "clean")


@dataclass(frozen=True)
class ModelComparison:
    """One model's figures under run A and run B (differences ``B - A``; nan where nothing was compared).

    ``matched``: answers of the model in both runs; ``unscored``: of those, unscored in either run (excluded);
    ``n``: the compared pairs. ``a_only_pass`` / ``b_only_pass``: pairs passed under A only / under B only (the
    discordant pairs of McNemar's test). ``rank_*``: rank by pass rate (1 = best) and its bootstrap range.
    ``mcnemar_p_adj`` / ``wilcoxon_p_adj``: the p-values adjusted over the family of the comparison (see
    :class:`RunComparison`; nan when not adjusted or no test)."""

    model: str
    matched: int
    unscored: int
    n: int
    pass_a: float
    pass_b: float
    pass_diff: float
    pass_ci: tuple[float, float]
    mcnemar_p: float
    a_only_pass: int
    b_only_pass: int
    overall_a: float
    overall_b: float
    overall_diff: float
    overall_ci: tuple[float, float]
    wilcoxon_p: float
    rank_a: int = 0
    rank_b: int = 0
    rank_range_a: tuple[int, int] = (0, 0)
    rank_range_b: tuple[int, int] = (0, 0)
    mcnemar_p_adj: float = math.nan
    wilcoxon_p_adj: float = math.nan

    @property
    def rank_change(self) -> int:
        """``rank_a - rank_b``: positive when the model ranks better under B."""
        return self.rank_a - self.rank_b


@dataclass(frozen=True)
class RunAgreement:
    """Agreement of the two runs over every compared answer (sample level).

    ``kappa``: Cohen's kappa of the pass verdicts; ``percent``: share of equal pass verdicts;
    ``weighted_kappa``: quadratic-weighted kappa of the overall scores over the integer scale from the lowest to
    the highest score seen (None when an overall score is not an integer, e.g. a mean of several samples);
    ``spearman``: Spearman's correlation of the overall scores. nan where undefined (e.g. kappa when both runs
    give one same verdict to everything)."""

    n: int
    kappa: float
    percent: float
    weighted_kappa: float | None
    spearman: float
    note: str = ""


@dataclass(frozen=True)
class RunComparison:
    """What :func:`compare_runs` returns."""

    models: list[ModelComparison]
    agreement: RunAgreement
    matched: int
    only_a: int
    only_b: int
    unscored_a: int  # matched answers unscored in A
    unscored_b: int  # matched answers unscored in B
    unscored: int  # matched answers unscored in either (excluded)
    compared: int
    n_boot: int
    seed: int
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)
    correction: str = "none"  # the multiple-comparison adjustment of the per-model p-values
    family_size: int = 0  # the tests adjusted together (every model's McNemar and Wilcoxon with a p-value)

    @property
    def family(self) -> str:
        """The sentence stating the correction and its family (:func:`judgekit.stats.multiple.family_text`)."""
        from judgekit.stats.multiple import family_text

        return family_text(self.correction, self.family_size, "McNemar and Wilcoxon of every model")


def _interval(x: np.ndarray, n_boot: int, seed: int, confidence: float) -> np.ndarray:
    from judgekit.stats.paired_tests import bootstrap_mean_ci

    if x.shape[0] == 0:
        return np.full((2, x.shape[1]), math.nan)
    return bootstrap_mean_ci(x, n_boot=n_boot, confidence=confidence, rng=np.random.default_rng(seed))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def compare_runs(a: Mapping[Key, Judgment], b: Mapping[Key, Judgment], *, n_boot: int = 2000, seed: int = 0,
                 confidence: float = 0.95, correction: str = "holm") -> RunComparison:
    """Compare run ``a`` with run ``b``: judgments keyed by :func:`answer_key` (one judge per run).

    Per model, over the compared pairs (matched, scored in both): pass rates of A and B, their paired difference
    with a bootstrap interval and McNemar's exact p-value; mean overall of A and B, their difference with a
    bootstrap interval and the Wilcoxon-Pratt p-value; the rank by pass rate under A and B. Then the agreement
    of the two runs (see :class:`RunAgreement`) and the counts of unmatched and unscored answers. The 2 x models
    p-values are adjusted together by ``correction`` (``"holm"``, ``"bh"`` or ``"none"``). See the module
    docstring for the conventions.
    """
    from judgekit.stats.agreement import cohen_kappa, correlation
    from judgekit.stats.multiple import adjust_pvalues, check_correction
    from judgekit.stats.paired_tests import mcnemar_exact, wilcoxon_pratt
    from judgekit.stats.ranks import rank_ranges

    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    correction = check_correction(correction)
    matched = sorted(set(a) & set(b))
    pairs: list[tuple[Key, Judgment, Judgment]] = []
    unscored_a = unscored_b = unscored = 0
    per_model_matched: dict[str, int] = {}
    per_model_unscored: dict[str, int] = {}
    for key in matched:
        ja, jb = a[key], b[key]
        per_model_matched[key[1]] = per_model_matched.get(key[1], 0) + 1
        bad_a, bad_b = ja.status != "scored", jb.status != "scored"
        unscored_a += bad_a
        unscored_b += bad_b
        if bad_a or bad_b:
            unscored += 1
            per_model_unscored[key[1]] = per_model_unscored.get(key[1], 0) + 1
            continue
        pairs.append((key, ja, jb))
    models = sorted(per_model_matched)
    rows: list[ModelComparison] = []
    for model in models:
        mine = [(ja, jb) for key, ja, jb in pairs if key[1] == model]
        pa = np.array([float(bool(ja.passed)) for ja, _ in mine])
        pb = np.array([float(bool(jb.passed)) for _, jb in mine])
        oa = np.array([float(ja.overall) for ja, _ in mine])  # type: ignore[arg-type]
        ob = np.array([float(jb.overall) for _, jb in mine])  # type: ignore[arg-type]
        diffs = np.round(np.column_stack([pb - pa, ob - oa]).reshape(len(mine), 2), 12)
        ci = _interval(diffs, n_boot, seed, confidence)
        a_only, b_only = int(((pa == 1) & (pb == 0)).sum()), int(((pa == 0) & (pb == 1)).sum())
        rows.append(ModelComparison(
            model=model, matched=per_model_matched[model], unscored=per_model_unscored.get(model, 0), n=len(mine),
            pass_a=_mean(pa), pass_b=_mean(pb), pass_diff=_mean(diffs[:, 0]),
            pass_ci=(float(ci[0, 0]), float(ci[1, 0])),
            mcnemar_p=mcnemar_exact(a_only, b_only) if mine else math.nan, a_only_pass=a_only, b_only_pass=b_only,
            overall_a=_mean(oa), overall_b=_mean(ob), overall_diff=_mean(diffs[:, 1]),
            overall_ci=(float(ci[0, 1]), float(ci[1, 1])), wilcoxon_p=wilcoxon_pratt(diffs[:, 1])[0]))
    if models:  # ranks by pass rate, on the compared pairs, under each run (items = question ids)
        col = {m: i for i, m in enumerate(models)}
        ids = sorted({key[0] for key, _, _ in pairs})
        row = {i: n for n, i in enumerate(ids)}
        ranked = []
        for side in (1, 2):
            passes, scored = np.zeros((len(ids), len(models))), np.zeros((len(ids), len(models)))
            for key, *js in pairs:
                scored[row[key[0]], col[key[1]]] += 1
                passes[row[key[0]], col[key[1]]] += bool(js[side - 1].passed)
            if ids:
                ranked.append(rank_ranges(passes, scored, n_resamples=n_boot, confidence=confidence, seed=seed))
        if ranked:
            ra, rb = ranked
            rows = [replace(r, rank_a=int(ra.rank[i]), rank_b=int(rb.rank[i]),
                            rank_range_a=(int(ra.low[i]), int(ra.high[i])),
                            rank_range_b=(int(rb.low[i]), int(rb.high[i]))) for i, r in enumerate(rows)]
    adj = adjust_pvalues([p for r in rows for p in (r.mcnemar_p, r.wilcoxon_p)], correction).reshape(-1, 2)
    rows = [replace(r, mcnemar_p_adj=float(a[0]), wilcoxon_p_adj=float(a[1])) for r, a in zip(rows, adj, strict=True)]
    family_size = int(np.sum(~np.isnan(adj)))
    pa_all = np.array([float(bool(ja.passed)) for _, ja, _ in pairs])
    pb_all = np.array([float(bool(jb.passed)) for _, _, jb in pairs])
    oa_all = np.array([float(ja.overall) for _, ja, _ in pairs])  # type: ignore[arg-type]
    ob_all = np.array([float(jb.overall) for _, _, jb in pairs])  # type: ignore[arg-type]
    note = ""
    weighted: float | None = None
    if pairs:
        integer = bool(np.all(oa_all == np.round(oa_all)) and np.all(ob_all == np.round(ob_all)))
        if integer:
            lo, hi = int(min(oa_all.min(), ob_all.min())), int(max(oa_all.max(), ob_all.max()))
            weighted = cohen_kappa(oa_all, ob_all, weights="quadratic", labels=list(range(lo, hi + 1)))
        else:
            note = "overall scores are not all integers (means of samples): no weighted kappa"
        kappa = cohen_kappa(pa_all, pb_all, labels=[0.0, 1.0])
        percent = float(np.mean(pa_all == pb_all))
        rho = correlation(oa_all, ob_all, method="spearman", level="sample").value
    else:
        kappa = percent = rho = math.nan
        note = "no compared answers"
    agreement = RunAgreement(n=len(pairs), kappa=kappa, percent=percent, weighted_kappa=weighted, spearman=rho,
                             note=note)
    return RunComparison(models=rows, agreement=agreement, matched=len(matched), only_a=len(set(a) - set(b)),
                         only_b=len(set(b) - set(a)), unscored_a=unscored_a, unscored_b=unscored_b, unscored=unscored,
                         compared=len(pairs), n_boot=n_boot, seed=seed, confidence=confidence,
                         correction=correction, family_size=family_size)

