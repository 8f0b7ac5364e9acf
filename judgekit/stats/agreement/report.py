"""The agreement report, :func:`agreement_report` (the entry point ``judgekit agree`` calls): every statistic
that fits the kind of rating, each with a bootstrap interval, and the inter-human ceiling, in an
:class:`AgreementReport`.

Conventions
-----------
- **Human reference** (the "consensus" a judge is compared with): the mean of the available human ratings of an
  item; where a category is needed (exact agreement, Cohen's kappa on an ordinal scale) that mean rounded half
  up (2.5 -> 3); for binary ratings the mode (majority), ties broken toward the smallest value (0), as
  ``scipy.stats.mode``.
- **Undefined is nan**: a statistic that is undefined on valid input (no pair, no variation where the formula
  divides by it) is ``nan`` with a note, never an exception, so a report never crashes on a degenerate subset.
- **Resampling**: every statistic uses the same bootstrap resamples (items, or whole groups when ``groups`` is
  given), evaluated through the weighted forms of :mod:`~judgekit.stats.agreement.weighted` and
  :mod:`~judgekit.stats.agreement.weighted_corr`; a whole report with 1,000 resamples of 10,000 items x 5 raters
  takes about 0.3 s for ordinal ratings and about 1 s for continuous scores (whose rank correlations need an
  exact re-ranking per resample) on 2 cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from judgekit.stats.agreement._common import (
    CorrMethod,
    Kind,
    _check_choice,
    _codes,
    _labels_vector,
    _matrix,
    _round_half_up,
    _vector,
)
from judgekit.stats.agreement.bootstrap import (
    _JACK_BLOCKS,
    _JACK_EXACT,
    _check_bootstrap_args,
    _interval,
    _jackknife_weights,
    _resample_counts,
)
from judgekit.stats.agreement.ceiling import CeilingResult, _ceiling_items, _row_mean, _row_mode, inter_human_ceiling
from judgekit.stats.agreement.correlations import _group_correlations, correlation
from judgekit.stats.agreement.intraclass import icc
from judgekit.stats.agreement.multirater import _category_counts, _fleiss_parts, fleiss_kappa, krippendorff_alpha
from judgekit.stats.agreement.paired import cohen_kappa, pass_agreement, percent_agreement
from judgekit.stats.agreement.weighted import (
    _Batch,
    _Linear,
    _mean_linear,
    _onehot_cells,
    _ratio_finish,
    _w_agree,
    _w_alpha,
    _w_fleiss,
    _w_icc,
    _w_kappa,
    _w_pass,
    _Weighted,
)
from judgekit.stats.agreement.weighted_corr import _table_rank_stats, _w_pearson, _w_sample_corr, _w_summary, _w_system


class AgreementEntry(BaseModel):
    """One statistic of an :class:`AgreementReport`.

    Attributes
    ----------
    name : str
        Identifier, e.g. ``"cohen_kappa_quadratic"``, ``"spearman"``, ``"ceiling_pearson"``.
    compares : str
        Whose ratings: ``"judge vs human mean"``, ``"humans"``, ``"humans + judge"``, ...
    value, ci_low, ci_high : float
        Point estimate and bootstrap interval (nan when undefined).
    level : str
        ``"sample"``, ``"summary"`` or ``"system"`` for correlations, ``"-"`` otherwise.
    n_items : int
        Items whose ratings entered the statistic.
    n_raters : int
        Rating columns that entered it (the judge counts as one; a human mean counts as its raters).
    note : str
        How it was computed, or why it is missing.
    """

    name: str
    compares: str
    value: float
    ci_low: float
    ci_high: float
    level: str = "-"
    n_items: int
    n_raters: int
    note: str = ""


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


class AgreementReport(BaseModel):
    """Everything :func:`agreement_report` computed, and how.

    Attributes
    ----------
    kind : str
        ``"ordinal"``, ``"continuous"`` or ``"binary"``.
    n_items, n_raters : int
        Items, and human raters (columns of ``humans``).
    scale : tuple of float or None
        The rating scale (ordinal: given or inferred).
    threshold : float or None
        Pass threshold of ``pass_agreement`` (None when not computed).
    human_reference : str
        How the human consensus compared with the judge was formed.
    resampling : str
        What the bootstrap resampled (items, or groups) and how.
    method, n_resamples, confidence, seed
        The bootstrap's settings.
    entries : list of AgreementEntry
    ceiling : CeilingResult
        The inter-human ceiling with each rater's figures.
    notes : list of str
        Which statistics were chosen and why; what was skipped.
    """

    kind: str
    n_items: int
    n_raters: int
    scale: tuple[float, float] | None
    threshold: float | None
    human_reference: str
    resampling: str
    method: str
    n_resamples: int
    confidence: float
    seed: int
    entries: list[AgreementEntry]
    ceiling: CeilingResult
    notes: list[str]

    def entry(self, name: str, level: str = "-") -> AgreementEntry:
        """The entry called ``name`` (at ``level`` for correlations); KeyError when absent."""
        for e in self.entries:
            if e.name == name and (e.level == level or (level == "-" and e.level in ("-", "sample"))):
                return e
        raise KeyError(f"no entry {name!r} at level {level!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN and infinities become None)."""
        return _json_safe(self.model_dump(mode="python"))

    def to_markdown(self) -> str:
        """The entries as a Markdown table, then the notes."""
        pct = f"{100 * self.confidence:g} %"
        lines = [f"| statistic | compares | level | value | {pct} CI | items | raters | note |",
                 "|---|---|---|---|---|---|---|---|"]

        def f(v: float) -> str:
            return "-" if not math.isfinite(v) else f"{v:.3f}"

        for e in self.entries:
            ci = "-" if not (math.isfinite(e.ci_low) and math.isfinite(e.ci_high)) else \
                f"[{e.ci_low:.3f}, {e.ci_high:.3f}]"
            lines.append(f"| {e.name} | {e.compares} | {e.level} | {f(e.value)} | {ci} | {e.n_items} | "
                         f"{e.n_raters} | {e.note.replace('|', '/')} |")
        return "\n".join([*lines, "", *[f"- {n}" for n in self.notes]])


@dataclass
class _Spec:
    """A statistic to report: its point value, and its weighted form for the bootstrap (None: no interval)."""

    name: str
    compares: str
    value: float
    n_items: int
    n_raters: int
    weighted: _Weighted | None
    level: str = "-"
    note: str = ""


def _validate_kind(kind: str, values: np.ndarray, scale: tuple[float, float] | None,
                   ) -> tuple[tuple[float, float] | None, list[str]]:
    """Check the ratings fit ``kind``; return the scale in force and notes."""
    notes: list[str] = []
    if scale is not None:
        if len(scale) != 2 or not (np.isfinite(scale[0]) and np.isfinite(scale[1])) or not scale[0] < scale[1]:
            raise ValueError(f"scale must be (low, high) with low < high, got {scale!r}")
        scale = (float(scale[0]), float(scale[1]))
        out = values[(values < scale[0]) | (values > scale[1])]
        if out.size:
            raise ValueError(f"rating {out[0]!r} lies outside scale {scale!r}")
    if kind == "binary":
        bad = values[(values != 0) & (values != 1)]
        if bad.size:
            raise ValueError(f"kind='binary' needs 0/1 ratings, got {bad[0]!r}; use kind='ordinal' or 'continuous'")
        return (0.0, 1.0), notes
    if kind == "ordinal":
        bad = values[values != np.round(values)]
        if bad.size:
            raise ValueError(f"kind='ordinal' needs integer ratings, got {bad[0]!r}; use kind='continuous' for "
                             "averaged or fractional scores")
        if scale is None:
            if values.size == 0:
                raise ValueError("no ratings at all")
            scale = (float(values.min()), float(values.max()))
            notes.append(f"scale inferred from the ratings as {scale[0]:g}-{scale[1]:g} (pass scale= to fix it)")
            if scale[0] == scale[1]:
                scale = (scale[0], scale[0] + 1)
        elif scale[0] != round(scale[0]) or scale[1] != round(scale[1]):
            raise ValueError(f"kind='ordinal' needs an integer scale, got {scale!r}")
    return scale, notes


def _label_codes(v: np.ndarray, lo: float, n_labels: int) -> np.ndarray:
    """Position of each (integer) rating on the scale starting at ``lo``; 0 where NaN (masked by the caller)."""
    return np.where(np.isnan(v), 0, v - lo).astype(np.int64).clip(0, n_labels - 1)


def _corr_specs(x: np.ndarray, y: np.ndarray, n_raters: int, compares: str, gid: np.ndarray | None, n_groups: int,
                sid: np.ndarray | None, n_sys: int, groups: Any, systems: Any) -> list[_Spec]:
    ok = ~(np.isnan(x) | np.isnan(y))
    table = _table_rank_stats(x, y, ok)
    specs = []
    methods: tuple[CorrMethod, ...] = ("pearson", "spearman", "kendall")
    for method in methods:
        res = correlation(x, y, method=method)
        specs.append(_Spec(method, compares, res.value, res.n_items, n_raters,
                           _w_sample_corr(x, y, ok, method, table), "sample", "all pairs pooled"))
    if gid is not None:
        first = np.unique(gid, return_index=True)[1]
        for method in methods:
            res = correlation(x, y, method=method, level="summary", groups=groups)
            r_g, usable, _ = _group_correlations(x[ok], y[ok], gid[ok], n_groups, method)
            specs.append(_Spec(method, compares, res.value, res.n_items, n_raters, _w_summary(r_g, usable, first),
                               "summary", f"within each group, mean over {res.n_groups} groups; {res.n_skipped} "
                               "skipped (< 2 items or a side constant)"))
    if sid is not None:
        for method in methods:
            res = correlation(x, y, method=method, level="system", systems=systems)
            specs.append(_Spec(method, compares, res.value, res.n_items, n_raters,
                               _w_system(x, y, ok, sid, n_sys, method), "system",
                               f"correlation of the per-system means of {res.n_groups} systems"))
    return specs


@dataclass
class _Prepared:
    """What agreement_report computes before the bootstrap: the statistics with their weighted forms."""

    specs: list[_Spec]
    ceiling: CeilingResult
    notes: list[str]
    scale: tuple[float, float] | None
    threshold: float | None
    human_ref: str
    unit: np.ndarray  # resampling unit of each item (group code, or the item itself)
    n_units: int
    grouped: bool
    n: int
    k: int


def _prepare_report(judge: Any, humans: Any, *, scale: tuple[float, float] | None, kind: str,
                    threshold: float | None, groups: Any, systems: Any) -> _Prepared:
    """Validate the inputs, choose the statistics of the kind, compute their values and weighted forms."""
    _check_choice(kind, "kind", ("ordinal", "continuous", "binary"))
    jv = _vector(judge, "judge")
    try:
        hm = np.asarray(humans, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"humans must hold numbers (NaN for missing): {exc}") from None
    hm = _matrix(hm[:, None] if hm.ndim == 1 else hm, "humans")
    n, k = hm.shape
    if jv.size != n:
        raise ValueError(f"judge has {jv.size} ratings but humans has {n} rows (items)")
    if n == 0:
        raise ValueError("no items")
    gid = sid = None
    n_groups = n_sys = 0
    if groups is not None:
        gid, n_groups = _codes(_labels_vector(groups, n, "groups"))
    if systems is not None:
        sid, n_sys = _codes(_labels_vector(systems, n, "systems"))
    values = np.concatenate([jv[~np.isnan(jv)], hm[~np.isnan(hm)]])
    scale, notes = _validate_kind(kind, values, scale)
    if threshold is not None and not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")

    h_mean = _row_mean(hm)
    ok_j = ~np.isnan(jv) & ~np.isnan(h_mean)
    n_pairs = int(ok_j.sum())
    both = k + 1
    with_judge = np.column_stack([hm, jv])
    multi = k >= 2
    single_note = "needs at least 2 human raters"
    specs: list[_Spec] = []
    human_ref = ""

    def inter_human(name: str, value_fn: Callable[[], float], weighted_fn: Callable[[], _Weighted], note: str,
                    n_items: int) -> None:
        if multi:
            specs.append(_Spec(name, "humans", value_fn(), n_items, k, weighted_fn(), note=note))
        else:
            specs.append(_Spec(name, "humans", math.nan, 0, k, None, note=single_note))

    def icc_entries(cmp_m: str) -> None:
        """ICC(A,1) and ICC(C,1) of the humans, then of the two columns judge and human mean."""
        pair = np.column_stack([jv, h_mean])
        for icc_kind, tag, form, text in (
                ("agreement", "", "ICC(A,1)", "two-way random, absolute agreement, single rater"),
                ("consistency", "_consistency", "ICC(C,1)",
                 "two-way, consistency (a rater's constant offset is not disagreement)")):
            inter_human(f"icc{tag}_humans", lambda k=icc_kind: icc(hm, kind=k),
                        lambda k=icc_kind: _w_icc(hm, k, "single"), f"{form}: {text}; complete rows", complete)
            specs.append(_Spec(f"icc{tag}_judge_vs_human_mean", cmp_m, icc(pair, kind=icc_kind), complete_j, both,
                               _w_icc(pair, icc_kind, "single"),
                               note=f"{form} of the two columns judge and human mean"))

    n_pairable = int(((~np.isnan(hm)).sum(axis=1) >= 2).sum())
    n_pairable_j = int(((~np.isnan(with_judge)).sum(axis=1) >= 2).sum())
    complete = int((~np.isnan(hm).any(axis=1)).sum())
    complete_j = int((ok_j).sum())

    if kind == "ordinal":
        assert scale is not None
        lo, hi = int(scale[0]), int(scale[1])
        labels = list(range(lo, hi + 1))
        nl = len(labels)
        t = float(threshold) if threshold is not None else (lo + hi) / 2
        if threshold is None:
            notes.append(f"pass threshold defaulted to the scale midpoint {t:g} (pass: rating >= threshold)")
        h_round = _round_half_up(h_mean)
        human_ref = ("mean of the available human ratings per item; rounded half up (2.5 -> 3) for exact/within-1 "
                     "agreement and Cohen's kappa; the unrounded mean for pass agreement, correlations and ICC")
        cmp_r, cmp_m = "judge vs rounded human mean", "judge vs human mean"
        specs.append(_Spec("exact_agreement", cmp_r, percent_agreement(jv, h_round), n_pairs, both,
                           _w_agree(jv, h_round, ok_j, 0.0), note="share of items with judge == rounded mean"))
        specs.append(_Spec("within_1_agreement", cmp_r, percent_agreement(jv, h_round, tolerance=1), n_pairs, both,
                           _w_agree(jv, h_round, ok_j, 1.0), note="share of items with abs(judge - rounded mean) <= 1"))
        specs.append(_Spec("pass_agreement", cmp_m, pass_agreement(jv, h_mean, threshold=t), n_pairs, both,
                           _w_pass(jv, h_mean, ok_j, t), note=f"(judge >= {t:g}) == (human mean >= {t:g})"))
        cells = _onehot_cells(_label_codes(jv, lo, nl), _label_codes(h_round, lo, nl), ok_j, nl, nl)
        for w, name in (("quadratic", "cohen_kappa_quadratic"), ("linear", "cohen_kappa_linear"),
                        (None, "cohen_kappa")):
            specs.append(_Spec(name, cmp_r, cohen_kappa(jv, h_round, weights=w, labels=labels),  # type: ignore[arg-type]
                               n_pairs, both, _w_kappa(cells, nl, w),
                               note=f"{w or 'unweighted'}; labels {lo}..{hi}"
                               + ("; the standard for ordinal scores" if w == "quadratic" else "")))
        inter_human("fleiss_kappa", lambda: fleiss_kappa(hm, labels=labels),
                    lambda: _w_fleiss(_category_counts(hm, labels)),
                    "nominal categories; items with >= 2 ratings; varying raters per item allowed", n_pairable)
        for level in ("ordinal", "interval"):
            inter_human(f"krippendorff_alpha_{level}", lambda lv=level: krippendorff_alpha(hm, level=lv),
                        lambda lv=level: _w_alpha(hm, lv), f"{level} distance", n_pairable)
            specs.append(_Spec(f"krippendorff_alpha_{level}_with_judge", "humans + judge",
                               krippendorff_alpha(with_judge, level=level), n_pairable_j, both,
                               _w_alpha(with_judge, level), note=f"{level} distance; the judge as one more rater"))
        specs += _corr_specs(jv, h_mean, both, cmp_m, gid, n_groups, sid, n_sys, groups, systems)
        icc_entries(cmp_m)
        ceiling_stats = {
            "pearson": (lambda a, b: correlation(a, b).value, lambda a, b, ok: _w_pearson(a, b, ok)),
            "exact_agreement": (lambda a, b: percent_agreement(a, _round_half_up(b)),
                                lambda a, b, ok: _w_agree(a, _round_half_up(b), ok, 0.0)),
            "cohen_kappa_quadratic": (
                lambda a, b: cohen_kappa(a, _round_half_up(b), weights="quadratic", labels=labels),
                lambda a, b, ok: _w_kappa(_onehot_cells(_label_codes(a, lo, nl), _label_codes(_round_half_up(b), lo,
                                                                                              nl), ok, nl, nl),
                                          nl, "quadratic")),
        }
        reference = "mean"
    elif kind == "continuous":
        human_ref = "mean of the available human ratings per item"
        cmp_m = "judge vs human mean"
        for tol in (0.5, 1.0):
            specs.append(_Spec(f"within_{tol:g}_agreement", cmp_m, percent_agreement(jv, h_mean, tolerance=tol),
                               n_pairs, both, _w_agree(jv, h_mean, ok_j, tol),
                               note=f"share of items with abs(judge - human mean) <= {tol:g} (scale units)"))
        if threshold is not None:
            specs.append(_Spec("pass_agreement", cmp_m, pass_agreement(jv, h_mean, threshold=threshold), n_pairs,
                               both, _w_pass(jv, h_mean, ok_j, threshold),
                               note=f"(judge >= {threshold:g}) == (human mean >= {threshold:g})"))
        else:
            notes.append("pass agreement not computed: no threshold given")
        specs += _corr_specs(jv, h_mean, both, cmp_m, gid, n_groups, sid, n_sys, groups, systems)
        icc_entries(cmp_m)
        inter_human("krippendorff_alpha_interval", lambda: krippendorff_alpha(hm, level="interval"),
                    lambda: _w_alpha(hm, "interval"), "interval distance", n_pairable)
        specs.append(_Spec("krippendorff_alpha_interval_with_judge", "humans + judge",
                           krippendorff_alpha(with_judge, level="interval"), n_pairable_j, both,
                           _w_alpha(with_judge, "interval"), note="interval distance; the judge as one more rater"))
        notes.append("kind=continuous: no Cohen's kappa (fractional scores have no categories)")
        ceiling_stats = {
            "pearson": (lambda a, b: correlation(a, b).value, lambda a, b, ok: _w_pearson(a, b, ok)),
            "within_0.5_agreement": (lambda a, b: percent_agreement(a, b, tolerance=0.5),
                                     lambda a, b, ok: _w_agree(a, b, ok, 0.5)),
        }
        reference = "mean"
    else:
        h_mode, tied = _row_mode(hm)
        ok_m = ~np.isnan(jv) & ~np.isnan(h_mode)
        n_tied = int((tied & ok_m).sum())
        human_ref = "majority (mode) of the available human labels per item; ties broken toward 0"
        cmp_mj = "judge vs human majority"
        if n_tied:
            notes.append(f"{n_tied} items had a tied human majority (counted as 0)")
        n_m = int(ok_m.sum())
        specs.append(_Spec("accuracy", cmp_mj, percent_agreement(jv, h_mode), n_m, both,
                           _w_agree(jv, h_mode, ok_m, 0.0), note="share of items where the judge equals the majority"))
        cells = _onehot_cells(_label_codes(jv, 0, 2), _label_codes(h_mode, 0, 2), ok_m, 2, 2)
        specs.append(_Spec("cohen_kappa", cmp_mj, cohen_kappa(jv, h_mode, labels=[0, 1]), n_m, both,
                           _w_kappa(cells, 2, None), note="unweighted; labels 0, 1"))
        counts = _category_counts(hm, [0.0, 1.0])
        m_i, p_i = _fleiss_parts(counts)
        keep = m_i >= 2
        inter_human("human_percent_agreement",
                    lambda: float(p_i[keep].mean()) if keep.any() else math.nan,
                    lambda: _Linear(np.column_stack([keep, p_i * keep]).astype(float), _ratio_finish),
                    "share of agreeing pairs of human labels per item, averaged over items with >= 2 labels "
                    "(Fleiss' P_bar)", int(keep.sum()))
        has_h = (~np.isnan(hm)).sum(axis=1)
        ok_jh = ~np.isnan(jv) & (has_h > 0)
        share = np.where(ok_jh, (hm == jv[:, None]).sum(axis=1) / np.maximum(has_h, 1), 0.0)
        specs.append(_Spec("judge_human_percent_agreement", "judge vs each human",
                           float(share[ok_jh].mean()) if ok_jh.any() else math.nan, int(ok_jh.sum()), both,
                           _Linear(np.column_stack([ok_jh, share]).astype(float), _ratio_finish),
                           note="share of the human labels of an item equal to the judge's, averaged over items"))
        inter_human("fleiss_kappa", lambda: fleiss_kappa(hm, labels=[0, 1]), lambda: _w_fleiss(counts),
                    "items with >= 2 labels; varying raters per item allowed", n_pairable)
        inter_human("krippendorff_alpha_nominal", lambda: krippendorff_alpha(hm, level="nominal"),
                    lambda: _w_alpha(hm, "nominal"), "nominal distance", n_pairable)
        specs.append(_Spec("krippendorff_alpha_nominal_with_judge", "humans + judge",
                           krippendorff_alpha(with_judge, level="nominal"), n_pairable_j, both,
                           _w_alpha(with_judge, "nominal"), note="nominal distance; the judge as one more rater"))
        ceiling_stats = {
            "accuracy": (lambda a, b: percent_agreement(a, b), lambda a, b, ok: _w_agree(a, b, ok, 0.0)),
            "cohen_kappa": (lambda a, b: cohen_kappa(a, b, labels=[0, 1]),
                            lambda a, b, ok: _w_kappa(_onehot_cells(_label_codes(a, 0, 2), _label_codes(b, 0, 2), ok,
                                                                    2, 2), 2, None)),
        }
        reference = "mode"

    if gid is None:
        notes.append("summary-level correlations not computed: no groups given")
    if sid is None:
        notes.append("system-level correlations not computed: no systems given")

    # ---------------------------------------------------------------- inter-human ceiling
    ceiling = inter_human_ceiling(hm, jv, reference=reference,  # type: ignore[arg-type]
                                  statistics={s: pv for s, (pv, _) in ceiling_stats.items()})
    for s, (_, wf) in ceiling_stats.items():
        if not multi:
            specs.append(_Spec(f"ceiling_{s}", f"each human vs {reference} of the others", math.nan, 0, k, None,
                               note=single_note))
            specs.append(_Spec(f"judge_loo_{s}", f"judge vs {reference} of the other humans", math.nan, 0, k, None,
                               note=single_note))
            continue
        hparts, jparts = [], []
        for r in range(k):
            ref, items, _ = _ceiling_items(hm, jv, r, reference)
            hparts.append(wf(np.where(items, hm[:, r], np.nan), np.where(items, ref, np.nan), items))
            jparts.append(wf(np.where(items, jv, np.nan), np.where(items, ref, np.nan), items))
        n_used = ceiling.n_items
        specs.append(_Spec(f"ceiling_{s}", f"each human vs {reference} of the others", ceiling.ceiling[s], n_used, k,
                           _mean_linear(hparts), note="leave one rater out, mean over raters (the ceiling)"))
        specs.append(_Spec(f"judge_loo_{s}", f"judge vs {reference} of the other humans", ceiling.judge_loo[s],
                           n_used, both, _mean_linear(jparts),
                           note="the judge against the same leave-one-out references, mean over raters"))
    if not multi:
        notes.append(f"one human rater: inter-human statistics and the ceiling are nan ({single_note})")

    used_t = (float(threshold) if threshold is not None else
              ((scale[0] + scale[1]) / 2 if kind == "ordinal" and scale else None))
    return _Prepared(specs=specs, ceiling=ceiling, notes=notes, scale=scale, threshold=used_t, human_ref=human_ref,
                     unit=gid if gid is not None else np.arange(n), n_units=n_groups if gid is not None else n,
                     grouped=gid is not None, n=n, k=k)


def agreement_report(judge: Any, humans: Any, *, scale: tuple[float, float] | None = None, kind: Kind = "ordinal",
                     threshold: float | None = None, groups: Any = None, systems: Any = None,
                     n_resamples: int = 1000, confidence: float = 0.95,
                     method: Literal["percentile", "bca"] = "percentile", seed: int = 0) -> AgreementReport:
    """Every agreement statistic that fits the kind of rating, with bootstrap intervals, and the inter-human
    ceiling: the one call behind ``judgekit agree``.

    Parameters
    ----------
    judge : array-like of shape (n_items,)
        The judge's rating of each item (NaN: not judged).
    humans : array-like of shape (n_items, n_raters)
        Human ratings (NaN: not rated by that person). A 1-D array is one rater.
    scale : (low, high), optional
        The rating scale. ``kind="ordinal"``: the category set of the kappas is ``low..high`` (inferred from the
        ratings when None, with a note); ratings outside it are a ValueError.
    kind : "ordinal", "continuous" or "binary"
        - ``"ordinal"`` — integer ratings on a scale (1-5 scores). Human reference: the mean of the available
          human ratings, rounded half up where a category is needed. Computes exact and within +/-1 agreement
          (judge vs rounded mean), pass agreement at ``threshold`` (judge >= t vs human mean >= t; default the
          scale midpoint), Cohen's kappa judge vs rounded mean — quadratic (the standard for ordinal scores),
          linear and unweighted, labels = the whole scale — Fleiss' kappa of the humans, Krippendorff's alpha
          (ordinal and interval) of the humans alone and of humans + judge, Pearson/Spearman/Kendall of judge vs
          human mean at each available level, ICC(A,1) of the humans and of judge vs human mean, and the
          inter-human ceiling (leave-one-rater-out mean: Pearson, exact agreement and quadratic kappa against the
          rounded reference).
        - ``"continuous"`` — fractional scores (averages, probabilities). No kappa (categories would be
          arbitrary). Agreement within +/-0.5 and +/-1 of the human mean (absolute units of the scale), pass
          agreement only when ``threshold`` is given, correlations, ICC, Krippendorff's alpha (interval), ceiling
          (Pearson, within +/-0.5).
        - ``"binary"`` — 0/1 labels (correct / incorrect). Human reference: the majority (mode; ties -> 0).
          Accuracy of the judge against the majority, Cohen's kappa judge vs majority, observed agreement among
          humans (Fleiss' P_bar: share of agreeing human pairs per item, averaged) and of the judge with the
          individual humans, Fleiss' kappa, Krippendorff's alpha (nominal) of humans and humans + judge, ceiling
          (leave-one-out mode: accuracy and Cohen's kappa — AlpacaEval's "human agreement").
    threshold : float, optional
        Pass threshold (``>=`` passes).
    groups : array-like of shape (n_items,), optional
        Source item of each rated item (e.g. the article a summary summarises): adds **summary-level**
        correlations (G-Eval) and makes every interval a cluster bootstrap over groups, since items of one group
        are not independent.
    systems : array-like of shape (n_items,), optional
        The system (model) each rated item came from: adds **system-level** correlations (of per-system means).
    n_resamples, confidence, method, seed
        The bootstrap (:func:`bootstrap_ci`'s conventions; every statistic uses the same resamples).
        ``n_resamples=0`` gives no intervals.

    Returns
    -------
    AgreementReport
        With a single human rater the inter-human statistics (Fleiss, alpha and ICC of the humans, the ceiling)
        are nan with a note.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.integers(1, 6, 200)
    >>> humans = np.clip(truth[:, None] + rng.integers(-1, 2, (200, 3)), 1, 5)
    >>> judge = np.clip(truth + rng.integers(-1, 2, 200), 1, 5)
    >>> rep = agreement_report(judge, humans, scale=(1, 5), n_resamples=200)
    >>> e = rep.entry("cohen_kappa_quadratic")
    >>> bool(e.ci_low < e.value < e.ci_high)
    True
    """
    _check_bootstrap_args(n_resamples, confidence, method, allow_zero=True)
    prep = _prepare_report(judge, humans, scale=scale, kind=kind, threshold=threshold, groups=groups,
                           systems=systems)
    specs, n_units = prep.specs, prep.n_units
    resampling = (f"cluster bootstrap over {n_units} groups (whole groups drawn with replacement)"
                  if prep.grouped else f"items drawn with replacement ({prep.n} items)")
    resampling += f"; {n_resamples} resamples, {method}, seed {seed}, shared by every statistic"
    if method == "bca":
        resampling += ("; BCa acceleration from the leave-one-out jackknife" if n_units <= _JACK_EXACT else
                       f"; BCa acceleration from a grouped jackknife ({_JACK_BLOCKS} blocks of units)")
    active = [i for i, s in enumerate(specs) if s.weighted is not None and math.isfinite(s.value)]
    cis: dict[int, tuple[float, float]] = {}
    if active and n_resamples > 0:
        batch = _Batch([specs[i].weighted for i in active])  # type: ignore[misc]
        rng = np.random.default_rng(seed)
        boot = np.vstack([batch(w[:, prep.unit]) for w in _resample_counts(rng, n_units, n_resamples)])
        jack = batch(_jackknife_weights(n_units)[:, prep.unit]) if method == "bca" else None
        for j, i in enumerate(active):
            cis[i] = _interval(specs[i].value, boot[:, j], None if jack is None else jack[:, j], confidence, method)
    nan2 = (math.nan, math.nan)
    entries = [AgreementEntry(name=s.name, compares=s.compares, value=float(s.value), ci_low=cis.get(i, nan2)[0],
                              ci_high=cis.get(i, nan2)[1], level=s.level, n_items=s.n_items, n_raters=s.n_raters,
                              note=s.note)
               for i, s in enumerate(specs)]
    return AgreementReport(kind=kind, n_items=prep.n, n_raters=prep.k, scale=prep.scale, threshold=prep.threshold,
                           human_reference=prep.human_ref, resampling=resampling, method=method,
                           n_resamples=n_resamples, confidence=confidence, seed=seed, entries=entries,
                           ceiling=prep.ceiling, notes=prep.notes)
