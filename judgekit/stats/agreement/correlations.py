"""Correlations of judge scores with human scores at three levels, :func:`correlation`, and the one-number
shorthands :func:`pearson`, :func:`spearman`, :func:`kendall`.

Levels (the ``level`` argument; every figure says which one it is):

- ``"sample"``: all pairs pooled, the ordinary correlation.
- ``"summary"``: within each group (e.g. each source document), then the unweighted mean over groups: G-Eval's
  convention. Groups with fewer than 2 pairs or a constant side are skipped and counted.
- ``"system"``: the correlation of the per-system means (e.g. one mean per model).

Methods: Pearson; Spearman (Pearson on average ranks); Kendall's tau-b (scipy.stats.kendalltau's default
variant). Pairs with a ``NaN`` side are dropped first. The values agree with scipy at every level (tested);
the within-group forms are vectorised over groups (scipy would need a Python loop over thousands of groups),
and the sample-level Kendall is scipy's own.

References
----------
- Liu, Y. et al. (2023). G-Eval: NLG evaluation using GPT-4 with better human alignment (summary-level
  correlation).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from judgekit.stats.agreement._common import CorrLevel, CorrMethod, _check_choice, _codes, _labels_vector, _pair

_PAIRS_VECTOR = 5_000_000  # summary-level Kendall: all within-group pairs at once up to this many pairs


class CorrelationResult(BaseModel):
    """Result of :func:`correlation`.

    Attributes
    ----------
    value : float
        The correlation (nan when undefined).
    n_items : int
        Pairs used (both sides present; for ``summary``, the items of the groups that were used).
    n_groups : int
        Groups (``summary``) or systems (``system``) whose values entered; 0 at ``sample`` level.
    n_skipped : int
        ``summary``: groups skipped (fewer than 2 pairs, or either side constant within the group). 0 otherwise.
    level, method : str
    """

    model_config = ConfigDict(frozen=True)

    value: float
    n_items: int
    n_groups: int
    n_skipped: int
    level: str
    method: str


# Hand-written: Pearson of many row pairs at once (scipy.stats.pearsonr takes one pair per call).
def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of (m, s) matrices; nan where either row is constant or contains NaN."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxx, syy = (xc * xc).sum(axis=1), (yc * yc).sum(axis=1)
    const = (np.ptp(x, axis=1) <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=1))) | \
            (np.ptp(y, axis=1) <= 1e-12 * np.maximum(1.0, np.abs(y).max(axis=1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / np.sqrt(sxx * syy)
    return np.where(const | ~np.isfinite(r), np.nan, np.clip(r, -1.0, 1.0))


# Hand-written: correlations of many resamples' per-system means at once (scipy takes one pair per call).
def _corr_rows(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """Correlation of each row pair of (m, s) matrices (few columns: per-system means)."""
    bad = np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1) | (x.shape[1] < 2)
    x, y = np.where(np.isnan(x), 0.0, x), np.where(np.isnan(y), 0.0, y)
    if method == "pearson":
        r = _pearson_rows(x, y)
    elif method == "spearman":
        from scipy.stats import rankdata

        r = _pearson_rows(rankdata(x, axis=1), rankdata(y, axis=1))
    else:
        iu = np.triu_indices(x.shape[1], 1)
        sx = np.sign(x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]
        sy = np.sign(y[:, :, None] - y[:, None, :])[:, iu[0], iu[1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (sx * sy).sum(axis=1) / np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
        r = np.where(np.isfinite(r), r, np.nan)
    return np.where(bad, np.nan, r)


# Hand-written: ranks within every group at once (scipy's rankdata would loop over groups in Python).
def _group_ranks(v: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties averaged) of ``v`` within each group ``gid``."""
    order = np.lexsort((v, gid))
    vs, gs = v[order], gid[order]
    n = v.size
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (vs[1:] != vs[:-1]) | (gs[1:] != gs[:-1])
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.append(run_start, n))
    new_grp = np.ones(n, dtype=bool)
    new_grp[1:] = gs[1:] != gs[:-1]
    grp_start_pos = np.maximum.accumulate(np.where(new_grp, np.arange(n), 0))
    run_of = np.cumsum(new_run) - 1
    rank_sorted = (run_start[run_of] - grp_start_pos) + (run_len[run_of] + 1) / 2.0
    out = np.empty(n)
    out[order] = rank_sorted
    return out


# Hand-written: Pearson within every group at once (scipy would loop over groups in Python).
def _group_pearson(x: np.ndarray, y: np.ndarray, gid: np.ndarray, g: int) -> np.ndarray:
    """Pearson r within each group (two-pass, centred); nan for groups of < 2 items (constancy handled outside)."""
    size = np.bincount(gid, minlength=g).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(gid, x, minlength=g) / size
        my = np.bincount(gid, y, minlength=g) / size
        dx, dy = x - mx[gid], y - my[gid]
        r = np.bincount(gid, dx * dy, minlength=g) / np.sqrt(
            np.bincount(gid, dx * dx, minlength=g) * np.bincount(gid, dy * dy, minlength=g))
    return np.clip(r, -1.0, 1.0)


# Hand-written for small groups (all groups' pairs at once; scipy loops per group), scipy above that.
def _group_kendall(x: np.ndarray, y: np.ndarray, gid: np.ndarray, g: int) -> np.ndarray:
    """Kendall tau-b within each group: all within-group pairs at once when few, else scipy per group."""
    size = np.bincount(gid, minlength=g)
    n_pairs = int((size * (size - 1) // 2).sum())
    out = np.full(g, np.nan)
    order = np.argsort(gid, kind="stable")
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    if n_pairs <= _PAIRS_VECTOR:
        ii, jj, owner = [], [], []
        for s in np.unique(size[size >= 2]):
            a, b = np.triu_indices(int(s), 1)
            groups_s = np.flatnonzero(size == s)
            base = starts[groups_s][:, None]
            ii.append((base + a[None, :]).ravel())
            jj.append((base + b[None, :]).ravel())
            owner.append(np.repeat(groups_s, a.size))
        if not ii:
            return out
        i, j = order[np.concatenate(ii)], order[np.concatenate(jj)]
        own = np.concatenate(owner)
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        num = np.bincount(own, sx * sy, minlength=g)
        den = np.bincount(own, np.abs(sx), minlength=g) * np.bincount(own, np.abs(sy), minlength=g)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / np.sqrt(den), np.nan)
        return out
    from scipy.stats import kendalltau

    for k in np.flatnonzero(size >= 2):
        idx = order[starts[k]:starts[k] + size[k]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[k] = kendalltau(x[idx], y[idx]).statistic
    return out


def _group_constant(v: np.ndarray, gid: np.ndarray, g: int) -> np.ndarray:
    """True for groups in which ``v`` takes a single value (or that are empty)."""
    first = np.full(g, np.nan)
    first[gid[::-1]] = v[::-1]  # the first value of each group (later writes win: reversed order)
    return np.bincount(gid, (v != first[gid]).astype(float), minlength=g) == 0


def _group_correlations(x: np.ndarray, y: np.ndarray, gid: np.ndarray, g: int,
                        method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group correlation, whether each group is usable (>= 2 pairs, neither side constant), group sizes."""
    size = np.bincount(gid, minlength=g)
    usable = (size >= 2) & ~_group_constant(x, gid, g) & ~_group_constant(y, gid, g)
    if method == "pearson":
        r = _group_pearson(x, y, gid, g)
    elif method == "spearman":
        r = _group_pearson(_group_ranks(x, gid), _group_ranks(y, gid), gid, g)
    else:
        r = _group_kendall(x, y, gid, g)
    usable &= np.isfinite(r)
    return np.where(usable, r, np.nan), usable, size


def _sample_corr(x: np.ndarray, y: np.ndarray, method: str) -> float:
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    if method == "kendall":
        from scipy.stats import kendalltau

        return float(kendalltau(x, y).statistic)  # tau-b, scipy's default variant
    if method == "spearman":
        from scipy.stats import rankdata

        x, y = rankdata(x), rankdata(y)
    return float(_pearson_rows(x[None, :], y[None, :])[0])


def correlation(x: Any, y: Any, *, method: CorrMethod = "pearson", level: CorrLevel = "sample",
                groups: Any = None, systems: Any = None) -> CorrelationResult:
    """Correlation of judge scores ``x`` with human scores ``y`` at the sample, summary or system level.

    Pairs where either side is NaN are dropped first (with their group/system label).

    - ``"sample"``: all pairs pooled; the ordinary correlation.
    - ``"summary"``: the correlation within each group (``groups``: e.g. the source document or question each
      item answers), then the **unweighted mean over groups**. A group is skipped when it has fewer than 2 pairs
      or when either side is constant within it (the correlation is undefined there) — the convention of G-Eval
      (Liu et al. 2023) for SummEval. ``n_skipped`` counts them.
    - ``"system"``: the mean of each side per system (``systems``: e.g. the model that produced each answer),
      then the correlation of those means across systems (``n_groups`` systems).

    ``method``: ``"pearson"``; ``"spearman"`` (Pearson on average ranks); ``"kendall"`` (tau-b, which corrects
    for ties, scipy.stats.kendalltau's default). Values agree with scipy at every level.

    Returns
    -------
    CorrelationResult
        ``value`` is nan when fewer than 2 pairs (systems) remain, when either side is constant, or (summary)
        when every group is skipped.

    Examples
    --------
    >>> r = correlation([1, 2, 3, 4, 1, 2, 3], [1, 3, 2, 4, 2, 2, 2], method="spearman", level="summary",
    ...                 groups=["a", "a", "a", "a", "b", "b", "b"])
    >>> r.value, r.n_groups, r.n_skipped
    (0.8, 1, 1)
    """
    _check_choice(method, "method", ("pearson", "spearman", "kendall"))
    _check_choice(level, "level", ("sample", "summary", "system"))
    xv, yv, ok = _pair(x, y, ("x", "y"))
    if level == "sample":
        return CorrelationResult(value=_sample_corr(xv[ok], yv[ok], method), n_items=int(ok.sum()), n_groups=0,
                                 n_skipped=0, level=level, method=method)
    labels_arg, name = (groups, "groups") if level == "summary" else (systems, "systems")
    if labels_arg is None:
        raise ValueError(f"level={level!r} needs {name}")
    gid, g = _codes(_labels_vector(labels_arg, xv.size, name))
    xs, ys, gs = xv[ok], yv[ok], gid[ok]
    if level == "summary":
        r, usable, size = _group_correlations(xs, ys, gs, g, method)
        value = float(r[usable].mean()) if usable.any() else math.nan
        return CorrelationResult(value=value, n_items=int(size[usable].sum()), n_groups=int(usable.sum()),
                                 n_skipped=int(g - usable.sum()), level=level, method=method)
    size = np.bincount(gs, minlength=g)
    present = size > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (np.bincount(gs, xs, minlength=g) / size)[present]
        my = (np.bincount(gs, ys, minlength=g) / size)[present]
    return CorrelationResult(value=_sample_corr(mx, my, method), n_items=int(ok.sum()), n_groups=int(present.sum()),
                             n_skipped=0, level=level, method=method)


def pearson(x: Any, y: Any, *, level: CorrLevel = "sample", groups: Any = None, systems: Any = None) -> float:
    """Pearson's r of ``x`` and ``y`` at ``level``: ``correlation(x, y, method="pearson", ...).value``.

    >>> pearson([1, 2, 3, 4], [1, 3, 2, 4])
    0.8
    """
    return correlation(x, y, method="pearson", level=level, groups=groups, systems=systems).value


def spearman(x: Any, y: Any, *, level: CorrLevel = "sample", groups: Any = None, systems: Any = None) -> float:
    """Spearman's rho of ``x`` and ``y`` at ``level``: ``correlation(x, y, method="spearman", ...).value``.

    >>> spearman([1, 2, 3, 4], [10, 30, 20, 40])
    0.8
    """
    return correlation(x, y, method="spearman", level=level, groups=groups, systems=systems).value


def kendall(x: Any, y: Any, *, level: CorrLevel = "sample", groups: Any = None, systems: Any = None) -> float:
    """Kendall's tau-b of ``x`` and ``y`` at ``level``: ``correlation(x, y, method="kendall", ...).value``.

    >>> round(kendall([1, 2, 3, 4], [1, 3, 2, 4]), 4)
    0.6667
    """
    return correlation(x, y, method="kendall", level=level, groups=groups, systems=systems).value
