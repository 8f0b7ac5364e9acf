"""The inter-human ceiling, :func:`inter_human_ceiling`: how far each person agrees with the others (leave one
rater out), averaged — the ceiling a judge can be compared with — and the judge against the same references.

Conventions: the **reference** a rater (or the judge) is compared with is, per item, the mean of the other raters'
available ratings (``reference="mean"``) or their mode (``"mode"``), ties broken toward the smallest tied value
as ``scipy.stats.mode``; a rater and the judge are compared on exactly the same items. Means over raters skip
raters whose figure is undefined (``nan``).

References
----------
- Dubois, Y. et al. (2023). AlpacaFarm / AlpacaEval ("human agreement": leave-one-out mode accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from judgekit.stats.agreement._common import _check_choice, _matrix, _vector
from judgekit.stats.agreement.correlations import correlation
from judgekit.stats.agreement.paired import cohen_kappa, percent_agreement


def _row_mean(mat: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN values of each row; NaN for a row without one."""
    cnt = (~np.isnan(mat)).sum(axis=1)
    tot = np.where(np.isnan(mat), 0.0, mat).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


# Hand-written: scipy.stats.mode with NaN omitted loops over rows in Python and gives no tie flag.
def _row_mode(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode of the non-NaN values of each row (ties -> the smallest tied value, as scipy.stats.mode) and whether
    the row's mode was tied; NaN for a row without a value."""
    s = np.sort(mat, axis=1)  # NaN sort last
    cnt = (s[:, :, None] == s[:, None, :]).sum(axis=2)  # NaN equals nothing: count 0
    best = cnt.max(axis=1) if s.shape[1] else np.zeros(s.shape[0], int)
    j = np.argmax(cnt, axis=1) if s.shape[1] else np.zeros(s.shape[0], int)
    mode = s[np.arange(s.shape[0]), j] if s.shape[1] else np.full(s.shape[0], np.nan)
    mode = np.where(best > 0, mode, np.nan)
    tied = (cnt == best[:, None]).sum(axis=1) > best
    return mode, tied & (best > 0)


def _reference(mat: np.ndarray, reference: str) -> tuple[np.ndarray, np.ndarray]:
    """The per-item reference of the raters in ``mat`` (mean, or mode) and the tied-mode flags."""
    if reference == "mean":
        return _row_mean(mat), np.zeros(mat.shape[0], dtype=bool)
    return _row_mode(mat)


def _ceiling_items(humans: np.ndarray, judge: np.ndarray | None, r: int,
                   reference: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-rater-out reference for rater ``r``, the items used, and the tied-mode flags."""
    ref, tied = _reference(np.delete(humans, r, axis=1), reference)
    items = ~np.isnan(humans[:, r]) & ~np.isnan(ref)
    if judge is not None:
        items &= ~np.isnan(judge)
    return ref, items, tied & items


class CeilingRater(BaseModel):
    """One human rater against the leave-one-out reference of the others (and the judge on the same items)."""

    rater: str
    n_items: int
    n_tied: int
    human: dict[str, float]
    judge: dict[str, float]


class CeilingResult(BaseModel):
    """Result of :func:`inter_human_ceiling`.

    Attributes
    ----------
    reference : str
        ``"mean"`` or ``"mode"`` of the other raters.
    statistics : list of str
    raters : list of CeilingRater
        Each rater's figures (``human``) and the judge's against the same references on the same items
        (``judge``); ``n_tied`` counts items whose mode reference was a tie.
    ceiling : dict
        Mean over raters of the human figures — the inter-human ceiling.
    judge_loo : dict
        Mean over raters of the judge figures: the judge scored exactly like a held-out human.
    judge_all : dict
        The judge against the reference of *all* humans (one more rater in the reference than above, so not
        directly comparable with the ceiling).
    n_items : int
        Items with a judge rating (or all items) and at least one human rating.
    note : str
    """

    reference: str
    statistics: list[str]
    raters: list[CeilingRater]
    ceiling: dict[str, float]
    judge_loo: dict[str, float]
    judge_all: dict[str, float]
    n_items: int
    note: str = ""


def _default_ceiling_statistics(reference: str) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    if reference == "mean":
        return {"pearson": lambda a, b: correlation(a, b).value,
                "spearman": lambda a, b: correlation(a, b, method="spearman").value}
    return {"accuracy": lambda a, b: percent_agreement(a, b), "cohen_kappa": lambda a, b: cohen_kappa(a, b)}


def _mean_of(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def inter_human_ceiling(humans: Any, judge: Any = None, *, reference: Literal["mean", "mode"] = "mean",
                        statistics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
                        names: Sequence[str] | None = None) -> CeilingResult:
    """How far each person agrees with the others, and the judge with the same references (leave one rater out).

    For each human rater ``r``: the reference is the mean (or the mode) of the **other** raters' ratings of each
    item; on the items that ``r`` rated and at least one other rater rated (and, when ``judge`` is given, that
    the judge rated — so the human and the judge figures use exactly the same items), each statistic compares
    ``r`` with that reference, and the judge with the same reference. The **ceiling** is the mean of the raters'
    figures; the judge's comparable figure is the mean of its figures over the same references (``judge_loo``).
    A judge at the ceiling agrees with people as well as people agree with each other. ``judge_all`` compares the
    judge with the reference of all humans. Means over raters skip raters whose figure is undefined (nan).

    AlpacaEval's "human agreement" is the ``reference="mode"`` accuracy variant. Mode ties are broken toward the
    smallest tied value (as scipy.stats.mode); with 2 other raters disagreeing on a binary item that is 0 —
    ``n_tied`` per rater says how often it happened.

    Parameters
    ----------
    humans : array-like of shape (n_items, n_raters)
        NaN missing.
    judge : array-like of shape (n_items,), optional
    reference : "mean" or "mode"
    statistics : mapping name -> callable(a, ref) -> float, optional
        Paired statistics, called with the rater's (or judge's) ratings and the reference on the items used.
        Default: ``{"pearson", "spearman"}`` correlations for ``"mean"``, ``{"accuracy", "cohen_kappa"}`` for
        ``"mode"``.
    names : sequence of str, optional
        Rater names (default ``"rater0"``, ...).

    Returns
    -------
    CeilingResult
        With fewer than 2 raters every figure is nan and ``note`` says why.

    Examples
    --------
    >>> h = [[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1], [0, 1, 0, 0]]  # 4 raters: 3 others, no ties
    >>> res = inter_human_ceiling(h, [1, 0, 0, 1], reference="mode", statistics={"accuracy": percent_agreement})
    >>> [r.human["accuracy"] for r in res.raters], res.ceiling["accuracy"], res.judge_loo["accuracy"]
    ([1.0, 0.75, 0.75, 0.75], 0.8125, 0.5)
    """
    _check_choice(reference, "reference", ("mean", "mode"))
    mat = _matrix(humans, "humans")
    n, k = mat.shape
    jv = None
    if judge is not None:
        jv = _vector(judge, "judge")
        if jv.size != n:
            raise ValueError(f"judge must have one rating per item ({n}), got {jv.size}")
    stats = dict(statistics) if statistics is not None else _default_ceiling_statistics(reference)
    if not stats:
        raise ValueError("statistics must name at least one statistic")
    rater_names = [f"rater{r}" for r in range(k)] if names is None else [str(x) for x in names]
    if len(rater_names) != k:
        raise ValueError(f"names must have one name per rater ({k}), got {len(rater_names)}")
    has_any = (~np.isnan(mat)).any(axis=1) & (~np.isnan(jv) if jv is not None else True)
    nan_figs = dict.fromkeys(stats, math.nan)
    ref_all, _ = _reference(mat, reference)
    judge_all = dict(nan_figs)
    if jv is not None:
        ok = ~np.isnan(jv) & ~np.isnan(ref_all)
        judge_all = {s: (float(f(jv[ok], ref_all[ok])) if ok.any() else math.nan) for s, f in stats.items()}
    if k < 2:
        return CeilingResult(reference=reference, statistics=list(stats), raters=[], ceiling=dict(nan_figs),
                             judge_loo=dict(nan_figs), judge_all=judge_all, n_items=int(np.sum(has_any)),
                             note="the inter-human ceiling needs at least 2 human raters")
    raters = []
    for r in range(k):
        ref, items, tied = _ceiling_items(mat, jv, r, reference)
        has = bool(items.any())
        human = {s: (float(f(mat[items, r], ref[items])) if has else math.nan) for s, f in stats.items()}
        jfig = dict(nan_figs)
        if jv is not None:
            jfig = {s: (float(f(jv[items], ref[items])) if has else math.nan) for s, f in stats.items()}
        raters.append(CeilingRater(rater=rater_names[r], n_items=int(items.sum()), n_tied=int(tied.sum()),
                                   human=human, judge=jfig))
    ceiling = {s: _mean_of([r.human[s] for r in raters]) for s in stats}
    judge_loo = {s: _mean_of([r.judge[s] for r in raters]) for s in stats} if jv is not None else dict(nan_figs)
    note = (f"each of {k} raters against the {reference} of the other raters (leave one rater out); "
            "ceiling = mean over raters")
    return CeilingResult(reference=reference, statistics=list(stats), raters=raters, ceiling=ceiling,
                         judge_loo=judge_loo, judge_all=judge_all, n_items=int(np.sum(has_any)), note=note)
