"""Robustness comparison: the same questions judged on clean images and on degraded copies, with paired
statistics.

Every question (``Judgment.id``) is asked of a model on clean images and again under one or more
degradations (``condition`` such as ``"low_light"``, ``"motion_blur@3"``, ``"jpeg@2+low_light@1"``).
:func:`compare_conditions` pairs each degraded judgment with the clean judgment of the same question, by
the same judge, of the same model, and reports per model, category, condition and criterion:

- the mean score on each side and the mean paired difference ``degraded - clean``;
- a paired percentile-bootstrap confidence interval of that difference (pairs resampled together);
- a paired test: Wilcoxon signed-rank (Pratt's zero handling) for scores, McNemar's exact test for the
  pass/fail outcome.

Conventions (the same as :mod:`judgekit.stats.aggregate`): an ``unscored`` judgment has no score, so a pair with
an unscored side is *excluded* from every figure and counted in ``n_dropped``; it is never imputed.
Questions present on one side only are not paired and are counted in ``n_baseline_only`` /
``n_degraded_only``.

:func:`robustness_table` (rich), :func:`robustness_markdown` and :func:`rows_to_dicts` (JSON) render the
rows. Multiple comparisons: :func:`compare_conditions` adjusts the p-values of all its rows together
(``correction``, :mod:`judgekit.stats.multiple`; Holm by default) and the tables star a row by its adjusted
p-value. The paired statistics themselves (:func:`bootstrap_mean_ci`, :func:`wilcoxon_pratt`,
:func:`mcnemar_exact`) live in :mod:`judgekit.stats.paired_tests` (re-exported here), with
:func:`~judgekit.stats.paired_tests.paired_difference` for one pair of arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rich.table import Table

from judgekit.io.records import Judgment
from judgekit.stats.multiple import check_correction, correct_rows, family_text, is_significant
from judgekit.stats.paired_tests import _ROUND, bootstrap_mean_ci, excludes_zero, mcnemar_exact, wilcoxon_pratt

__all__ = [
    "ALL_CATEGORIES",
    "OVERALL",
    "PASS",
    "POOLED",
    "RobustnessRow",
    "bootstrap_mean_ci",
    "compare_conditions",
    "family_legend",
    "mcnemar_exact",
    "robustness_markdown",
    "robustness_table",
    "rows_to_dicts",
    "wilcoxon_pratt",
]

#: ``category`` of the rows that pool every category.
ALL_CATEGORIES = "all"
#: ``condition`` of the rows that pool every degraded condition (see :func:`compare_conditions`).
POOLED = "degraded (all)"
#: ``criterion`` of the rows on ``Judgment.overall``.
OVERALL = "overall"
#: ``criterion`` of the rows on the pass/fail outcome ``Judgment.passed``.
PASS = "pass"
#: A missing category is shown as this (as in :func:`judgekit.stats.aggregate.summarize`).
NO_CATEGORY = "-"
#: Conditions read as the clean baseline: ``None`` and ``""`` are normalised to ``"clean"``.
CLEAN = "clean"


@dataclass(frozen=True)
class RobustnessRow:
    """One paired comparison: one metric of one model (one judge), in one category, one condition vs the
    baseline.

    Attributes
    ----------
    model, judge : str
        The model under test and the judge (or panel label); pairs never cross judges.
    category : str
        The question category, ``"all"`` (:data:`ALL_CATEGORIES`) for the rows pooling categories, ``"-"``
        when the judgments carry none. The category of a pair is that of its baseline judgment.
    condition : str
        The degraded condition, or ``"degraded (all)"`` (:data:`POOLED`).
    criterion : str
        A rubric criterion, ``"overall"`` or ``"pass"`` (the pass/fail outcome, as a 0/1 value).
    baseline : str
        The baseline condition (``"clean"`` by default).
    n : int
        Pairs used: both judgments exist and carry a value for this metric.
    n_dropped : int
        Pairs excluded because either side is unscored (or, defensively, lacks this metric's value).
    n_baseline_only, n_degraded_only : int
        Questions judged on one side only (not paired, not used).
    clean, degraded : float
        Means over the ``n`` pairs of the baseline and the degraded values (pass rates for ``"pass"``).
    diff : float
        ``degraded - clean`` = the mean of the paired differences (negative: worse when degraded).
    ci_low, ci_high : float
        Paired percentile-bootstrap interval of ``diff`` at ``confidence`` (nan when ``n < min_pairs``).
    p_value : float
        Two-sided p-value of the paired ``test`` (nan when ``n < min_pairs``; 1.0 when every difference is 0).
    test : str
        ``"wilcoxon-pratt"`` or ``"mcnemar-exact"``; ``""`` when no test was run.
    n_worse, n_better : int
        Pairs whose difference is negative / positive (for ``"pass"``: McNemar's discordant counts,
        pass -> fail and fail -> pass).
    confidence : float
        Confidence level of the interval.
    n_boot : int
        Bootstrap resamples.
    note : str
        Why a figure is missing, or how a pooled row was formed.
    p_adjusted : float
        ``p_value`` adjusted for multiple comparisons by ``correction`` over the family of every row of the
        comparison with a p-value (nan when ``p_value`` is nan, or when the rows were never corrected).
    correction : str
        ``"holm"``, ``"bh"`` or ``"none"`` (:mod:`judgekit.stats.multiple`); ``""`` when never corrected.
    family_size : int
        The number of tests adjusted together (0 when never corrected).
    """

    model: str
    judge: str
    category: str
    condition: str
    criterion: str
    baseline: str
    n: int
    n_dropped: int
    n_baseline_only: int
    n_degraded_only: int
    clean: float
    degraded: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n_worse: int
    n_better: int
    confidence: float
    n_boot: int
    note: str = ""
    p_adjusted: float = math.nan
    correction: str = ""
    family_size: int = 0

    @property
    def significant(self) -> bool:
        """True when the confidence interval excludes 0 (False when there is no interval)."""
        return excludes_zero(self.ci_low, self.ci_high)

    @property
    def significant_adjusted(self) -> bool:
        """True when the adjusted p-value is below 0.05: what the tables' star marks."""
        return is_significant(self.p_adjusted)




# ------------------------------------------------------------------------------------------------ pairing


def _condition(c: str | None) -> str:
    return CLEAN if c is None or c == "" else c


def _category(j: Judgment) -> str:
    return NO_CATEGORY if j.category is None or j.category == "" else j.category


def _value(j: Judgment, metric: str) -> float:
    """The judgment's value for ``metric``; nan when unscored or absent (never a score)."""
    if j.status != "scored":
        return math.nan
    if metric == OVERALL:
        v: float | None = j.overall
    elif metric == PASS:
        v = None if j.passed is None else float(j.passed)
    else:
        v = j.scores.get(metric)
    return math.nan if v is None else float(v)


@dataclass
class _Side:
    """One side of a pair: the question's category, its metric values (nan = no score) and how many
    judgments they average (1, or the number of degraded conditions in the pooled rows)."""

    category: str
    values: np.ndarray
    k: int = 1


@dataclass
class _Group:
    pairs: list[tuple[_Side, _Side]]
    baseline_only: int = 0
    degraded_only: int = 0


def _split(baseline: dict[str, _Side], degraded: dict[str, _Side]) -> dict[str, _Group]:
    """Pairs per category (the baseline side's) plus :data:`ALL_CATEGORIES`, in id order."""
    groups: dict[str, _Group] = {ALL_CATEGORIES: _Group([])}
    for i in sorted(baseline.keys() | degraded.keys()):
        b, d = baseline.get(i), degraded.get(i)
        cat = b.category if b is not None else d.category if d is not None else NO_CATEGORY
        for g in (groups.setdefault(cat, _Group([])), groups[ALL_CATEGORIES]):
            if b is None:
                g.degraded_only += 1
            elif d is None:
                g.baseline_only += 1
            else:
                g.pairs.append((b, d))
    return groups


def _analyse(key: tuple[str, str, str, str], group: _Group, metrics: Sequence[str], *, baseline: str,
             pooled: bool, n_boot: int, seed: int, confidence: float, min_pairs: int) -> list[RobustnessRow]:
    model, judge, category, condition = key
    n_all, m = len(group.pairs), len(metrics)
    clean = np.array([b.values for b, _ in group.pairs]).reshape(n_all, m)
    deg = np.array([d.values for _, d in group.pairs]).reshape(n_all, m)
    n_deg = np.array([d.k for _, d in group.pairs], dtype=int)
    valid = ~(np.isnan(clean) | np.isnan(deg))
    diff = np.round(deg - clean, 12)
    ci = np.full((2, m), math.nan)
    # Metrics with the same valid pairs (normally all of them) share their resamples.
    by_mask: dict[bytes, list[int]] = {}
    for k in range(m):
        by_mask.setdefault(valid[:, k].tobytes(), []).append(k)
    rng = np.random.default_rng(seed)  # a fresh generator per group: see compare_conditions
    for ks in by_mask.values():
        rows_k = np.flatnonzero(valid[:, ks[0]])
        if rows_k.size >= max(min_pairs, 1):
            ci[:, ks] = bootstrap_mean_ci(diff[np.ix_(rows_k, ks)], n_boot=n_boot, confidence=confidence, rng=rng)

    pooled_note = ""
    if pooled and n_all:
        lo, hi = int(n_deg.min()), int(n_deg.max())
        pooled_note = (f"each {baseline} item vs the mean over its {lo if lo == hi else f'{lo}-{hi}'} degraded "
                       "condition(s)")
    out = []
    for k, metric in enumerate(metrics):
        sel = valid[:, k]
        n = int(sel.sum())
        c, d, dd = clean[sel, k], deg[sel, k], diff[sel, k]
        notes = [pooled_note] if pooled_note else []
        p, test = math.nan, ""
        signs = np.sign(np.round(dd, _ROUND))
        n_worse, n_better = int((signs < 0).sum()), int((signs > 0).sum())
        if n == 0:
            notes.append("no scored pairs")
        elif n < min_pairs:
            notes.append(f"fewer than {min_pairs} pairs: no interval or test")
        elif metric == PASS and bool(np.all(n_deg[sel] == 1)):
            p, test = mcnemar_exact(n_worse, n_better), "mcnemar-exact"
            if n_worse + n_better == 0:
                notes.append("no discordant pairs")
        else:
            p, why = wilcoxon_pratt(dd)
            test = "wilcoxon-pratt"
            if why:
                notes.append(why)
        out.append(RobustnessRow(
            model=model, judge=judge, category=category, condition=condition, criterion=metric,
            baseline=baseline, n=n, n_dropped=n_all - n, n_baseline_only=group.baseline_only,
            n_degraded_only=group.degraded_only,
            clean=float(c.mean()) if n else math.nan, degraded=float(d.mean()) if n else math.nan,
            diff=float(dd.mean()) if n else math.nan, ci_low=float(ci[0, k]), ci_high=float(ci[1, k]),
            p_value=p, test=test, n_worse=n_worse, n_better=n_better, confidence=confidence, n_boot=n_boot,
            note="; ".join(notes)))
    return out


def compare_conditions(judgments: Iterable[Judgment], criteria: Sequence[str], *, baseline: str = CLEAN,
                       n_boot: int = 2000, seed: int = 0, confidence: float = 0.95,
                       min_pairs: int = 5, correction: str = "holm") -> list[RobustnessRow]:
    """Paired comparison of every degraded condition against the baseline condition.

    Parameters
    ----------
    judgments : iterable of Judgment
        Judgments of all models, conditions and judges. A ``condition`` of ``None`` or ``""`` is read as
        ``"clean"``. Two judgments with the same ``(judge, model, condition, id)`` are ambiguous and raise
        ``ValueError`` (filter to one rubric / run first).
    criteria : sequence of str
        Rubric criteria to compare (``Judgment.scores[criterion]``). ``"overall"`` (``Judgment.overall``)
        and ``"pass"`` (``Judgment.passed`` as 0/1) are always added, unless no judgment carries them.
    baseline : str, default "clean"
        The reference condition; every other condition is compared against it.
    n_boot : int, default 2000
        Bootstrap resamples per group of pairs.
    seed : int, default 0
        Seed of the bootstrap. Every group of pairs (one model, judge, category and condition; pairs in id
        order) is resampled with a fresh ``numpy.random.default_rng(seed)``, so a row depends only on its own
        pairs and the seed: not on the input order nor on which other models, categories or conditions are
        present, and two groups with the same pairs get the same interval (e.g. a category that holds every
        item and its ``"all"`` row). The metrics of a group share its resamples; a metric with other valid
        pairs than the first (only when a scored judgment lacks a value) draws next from the same generator.
    confidence : float, default 0.95
        Level of the bootstrap intervals.
    min_pairs : int, default 5
        Below this many pairs the interval and the test are nan (the row says so in ``note``); the means are
        still given.
    correction : {"holm", "bh", "none"}, default "holm"
        Multiple-comparison adjustment of the p-values (``p_adjusted``): Holm-Bonferroni (family-wise error
        rate), Benjamini-Hochberg (false discovery rate) or none. The family is every row returned that has a
        p-value: all judges x models x categories (and ``"all"``) x conditions (and the pooled one) x metrics,
        whatever a table later shows of them.

    Returns
    -------
    list of RobustnessRow
        Sorted by model, judge, category (``"all"`` first, then by name), condition (by name, the pooled
        row last) and metric (``criteria`` in the given order, then ``"overall"``, then ``"pass"``).

    Notes
    -----
    **Pairing unit.** A pair is the baseline judgment and the degraded judgment of the same question
    (``id``) for the same model by the same judge. Questions judged on one side only are not paired
    (``n_baseline_only``, ``n_degraded_only``). A pair with an unscored side (a reply the judge's output could
    not be parsed from) is excluded and counted in ``n_dropped``: a parse failure is never a score.

    **Rows.** For each ``(judge, model)``: each degraded condition x each category present (the category of
    the baseline judgment) plus ``"all"`` (every pair of the model in that condition) x each metric.

    **Pooled condition.** When a ``(judge, model)`` has at least two degraded conditions, rows with
    condition ``"degraded (all)"`` pair each baseline judgment with the *mean* of the values of all of its
    degraded judgments (over however many conditions that question was degraded with: RobustMAD-style
    designs give each question one random degradation, factorial designs give every question all of them).
    One question is one pair, so questions are not weighted by their number of conditions. The pair is
    dropped when the baseline side or *any* of its degraded judgments is unscored (averaging over the
    conditions that happened to parse would favour the easier ones).

    **Figures.** ``clean`` and ``degraded`` are the means of the two sides over the ``n`` pairs used;
    ``diff = degraded - clean`` is the mean paired difference. The interval is the percentile bootstrap of
    that mean: the pairs (the rows of the difference) are resampled with replacement, ``n_boot`` times, all
    metrics of a group together (:func:`bootstrap_mean_ci`). A row is marked significant when its interval
    excludes 0. The percentile bootstrap is approximate and tends to be too narrow for small ``n`` (and with
    few non-zero differences); there the exact test's p-value is the sounder evidence.

    **Tests.** Score metrics: two-sided Wilcoxon signed-rank with Pratt's zero handling
    (:func:`wilcoxon_pratt`); p = 1.0 when every difference is 0. ``"pass"``: McNemar's exact test on the
    discordant pairs (:func:`mcnemar_exact`), the paired test for a binary outcome; in pooled rows where a
    question has more than one degraded judgment the degraded side is a fraction, so the Wilcoxon test is
    used there instead (``test`` names the one used). ``p_value`` is the raw p-value; ``p_adjusted`` is
    corrected over the family (see ``correction``), and the tables star a row when ``p_adjusted < 0.05``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    correction = check_correction(correction)
    criteria = list(dict.fromkeys(criteria))
    for reserved in (OVERALL, PASS):
        if reserved in criteria:
            raise ValueError(f"{reserved!r} is always reported; it cannot be given as a criterion")
    baseline = _condition(baseline)

    index: dict[tuple[str, str], dict[str, dict[str, Judgment]]] = {}
    has_overall = has_pass = False
    for j in judgments:
        by_id = index.setdefault((j.judge, j.model), {}).setdefault(_condition(j.condition), {})
        if j.id in by_id:
            raise ValueError(f"two judgments of item {j.id!r}, model {j.model!r}, condition "
                             f"{_condition(j.condition)!r} by judge {j.judge!r}: filter to one run first")
        by_id[j.id] = j
        if _category(j) == ALL_CATEGORIES:
            raise ValueError(f"category {ALL_CATEGORIES!r} is reserved for the rows pooling categories")
        has_overall = has_overall or j.overall is not None
        has_pass = has_pass or j.passed is not None
    metrics = [*criteria, *([OVERALL] if has_overall else []), *([PASS] if has_pass else [])]

    def side(j: Judgment) -> _Side:
        return _Side(_category(j), np.array([_value(j, metric) for metric in metrics]))

    kw: dict[str, Any] = {"baseline": baseline, "n_boot": n_boot, "seed": seed, "confidence": confidence,
                          "min_pairs": min_pairs}
    rows: list[RobustnessRow] = []
    for (judge, model), conds in index.items():
        sides = {c: {i: side(j) for i, j in by_id.items()} for c, by_id in conds.items()}
        base = sides.get(baseline, {})
        degraded = sorted(c for c in conds if c != baseline)
        for cond in degraded:
            for cat, g in _split(base, sides[cond]).items():
                rows += _analyse((model, judge, cat, cond), g, metrics, pooled=False, **kw)
        if len(degraded) >= 2:
            merged: dict[str, list[_Side]] = {}
            for cond in degraded:
                for i, sd in sides[cond].items():
                    merged.setdefault(i, []).append(sd)
            # the mean over the question's degraded judgments; nan (pair dropped) if any of them is unscored
            pooled = {i: _Side(ss[0].category, np.mean([s.values for s in ss], axis=0), len(ss))
                      for i, ss in merged.items()}
            for cat, g in _split(base, pooled).items():
                rows += _analyse((model, judge, cat, POOLED), g, metrics, pooled=True, **kw)

    order = {m: k for k, m in enumerate(metrics)}
    rows.sort(key=lambda r: (r.model, r.judge, r.category != ALL_CATEGORIES, r.category, r.condition == POOLED,
                             r.condition, order[r.criterion]))
    return correct_rows(rows, correction)


# ---------------------------------------------------------------------------------------------- rendering


def _nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _val(r: RobustnessRow, x: float) -> str:
    if _nan(x):
        return "-"
    return f"{100 * x:.1f} %" if r.criterion == PASS else f"{x:.3f}"


def _delta(r: RobustnessRow) -> str:
    if _nan(r.diff):
        return "-"
    if r.criterion == PASS:
        s, ci = f"{100 * r.diff:+.1f} pp", f"[{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]"
    else:
        s, ci = f"{r.diff:+.3f}", f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
    return f"{s} [-]" if _nan(r.ci_low) else f"{s} {ci}"


def _p(p: float) -> str:
    if _nan(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _select(rows: Sequence[RobustnessRow], metrics: Sequence[str] | None, categories: bool) -> list[RobustnessRow]:
    return [r for r in rows if (metrics is None or r.criterion in metrics)
            and (categories or r.category == ALL_CATEGORIES)]


def family_legend(rows: Sequence[RobustnessRow], shown: int | None = None) -> str:
    """The sentence stating the correction of the rows and its family (every row of the comparison with a
    p-value), with how many of those tests a table shows; ``""`` when the rows were never corrected."""
    r0 = next((r for r in rows if r.correction), None)
    if r0 is None:
        return ""
    members = ("every judge x model x category (and all) x condition (and pooled) x criterion of the comparison"
               + (f"; {shown} shown here" if shown is not None and shown != r0.family_size else ""))
    return family_text(r0.correction, r0.family_size, members)


def _legend(rows: Sequence[RobustnessRow]) -> str:
    conf = rows[0].confidence if rows else 0.95
    boot = f", {rows[0].n_boot} resamples" if rows else ""
    shown = sum(not _nan(r.p_value) for r in rows)
    fam = family_legend(rows, shown)
    return (f"Δ = degraded - clean, mean over pairs (same judge, model, item) [{100 * conf:g} % paired percentile "
            f"bootstrap{boot}, not adjusted]; * = adjusted p < 0.05. p: Wilcoxon signed-rank (Pratt) for scores, "
            "exact McNemar for pass (pp = percentage points). Unscored pairs excluded (dropped)."
            + (f" {fam}." if fam else ""))


def robustness_table(rows: Sequence[RobustnessRow], *, metrics: Sequence[str] | None = (OVERALL, PASS),
                     categories: bool = True, title: str | None = "Robustness: degraded vs clean") -> Table:
    """A rich table of the rows: model, [judge], [category], condition, criterion, n, dropped, clean,
    degraded, Δ with its interval, p.

    Parameters
    ----------
    rows : sequence of RobustnessRow
        From :func:`compare_conditions`.
    metrics : sequence of str or None, default ("overall", "pass")
        Criteria to show; None shows all (criteria x categories gets long).
    categories : bool, default True
        False shows only the rows pooling categories (``"all"``).
    title : str or None
        Table title.

    The judge column appears only with more than one judge, the category column only when there are
    categories. A difference whose adjusted p-value (``p_adjusted``, column "p adj") is below 0.05 is marked
    ``*`` and coloured (red worse, green better); the caption states the correction and its family.
    """
    sel = _select(rows, metrics, categories)
    show_judge = len({r.judge for r in sel}) > 1
    show_cat = any(r.category != ALL_CATEGORIES for r in sel)
    t = Table(title=title, caption=_legend(sel), caption_justify="left")
    t.add_column("Model")
    if show_judge:
        t.add_column("Judge")
    if show_cat:
        t.add_column("Category")
    t.add_column("Condition")
    t.add_column("Criterion")
    for name in ("n", "dropped", "Clean", "Degraded"):
        t.add_column(name, justify="right")
    conf = sel[0].confidence if sel else 0.95
    t.add_column(f"Δ [{100 * conf:g} % CI]", justify="right")
    t.add_column("p", justify="right")
    t.add_column("p adj", justify="right")
    for r in sel:
        delta = _delta(r)
        if r.significant_adjusted:
            delta = f"[bold {'red' if r.diff < 0 else 'green'}]{delta} *[/]"
        cells = [r.model, *([r.judge] if show_judge else []), *([r.category] if show_cat else []), r.condition,
                 r.criterion, str(r.n), str(r.n_dropped), _val(r, r.clean), _val(r, r.degraded), delta, _p(r.p_value),
                 _p(r.p_adjusted)]
        t.add_row(*cells)
    return t


def _md(s: str) -> str:
    return s.replace("|", "\\|")


def robustness_markdown(rows: Sequence[RobustnessRow], *, metrics: Sequence[str] | None = None,
                        categories: bool = True) -> str:
    """A Markdown table of the rows (all metrics by default), followed by a legend line.

    Columns: model, judge, category, condition, criterion, n, dropped, clean, degraded, Δ with its interval,
    p, p adj (adjusted for multiple comparisons, see :func:`compare_conditions`), test. A difference whose
    adjusted p-value is below 0.05 is in bold and marked ``*``; the legend states the correction and its family.
    """
    sel = _select(rows, metrics, categories)
    conf = sel[0].confidence if sel else 0.95
    head = ["model", "judge", "category", "condition", "criterion", "n", "dropped", "clean", "degraded",
            f"Δ [{100 * conf:g} % CI]", "p", "p adj", "test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in sel:
        delta = f"**{_delta(r)}** *" if r.significant_adjusted else _delta(r)
        cells = [_md(r.model), _md(r.judge), _md(r.category), _md(r.condition), _md(r.criterion), str(r.n),
                 str(r.n_dropped), _val(r, r.clean), _val(r, r.degraded), delta, _p(r.p_value), _p(r.p_adjusted),
                 r.test or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _legend(sel)]
    return "\n".join(lines)


def rows_to_dicts(rows: Sequence[RobustnessRow]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts: every field (``p_value`` raw, ``p_adjusted`` with its ``correction`` and
    ``family_size``) plus ``significant`` (the interval excludes 0), ``significant_adjusted`` (``p_adjusted <
    0.05``) and ``family`` (the sentence stating the correction and its family); nan becomes None (valid JSON)."""
    out = []
    fam = family_legend(rows)
    for r in rows:
        d = {k: (None if _nan(v) else v) for k, v in asdict(r).items()}
        d["significant"] = r.significant
        d["significant_adjusted"] = r.significant_adjusted
        d["family"] = fam
        out.append(d)
    return out
