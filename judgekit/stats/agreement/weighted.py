"""Weighted (resampled) forms of the agreement statistics: the engine that makes the bootstrap of a whole
:func:`~judgekit.stats.agreement.agreement_report` cheap.

A bootstrap resample is a vector of integer weights on the items (how many times each was drawn). Each statistic
is rebuilt as a function of an (m, n) weight matrix -> (m,) values. :class:`_Linear` statistics need only
``W @ F`` for per-item contributions ``F`` (n, k), so all of them share one matrix product per block of
resamples (:class:`_Batch`); :class:`_Direct` ones work on ``W`` itself (rank statistics with many distinct
values, summary level; :mod:`~judgekit.stats.agreement.weighted_corr`).

Conventions: each weighted form, given weights that are all 1, equals the statistic of the plain function
(percent and pass agreement, Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, ICC), and given integer weights,
the statistic recomputed on the explicitly duplicated sample (tested). Statistics are computed in closed form
(matrix products of per-item contributions), so a whole report with 1,000 resamples of 10,000 items x 5 raters
takes about 0.3 s for ordinal ratings on 2 cores. This module is hand-written because no library computes these
statistics from resample weights; the plain values it reproduces come from the functions (and, through them,
libraries) of the other modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from judgekit.stats.agreement._common import _SLACK, _nanmean_rows
from judgekit.stats.agreement.intraclass import _icc_features, _icc_from_sums
from judgekit.stats.agreement.multirater import _fleiss_finish, _fleiss_parts
from judgekit.stats.agreement.paired import _kappa_from_confusion, _kappa_weight_matrix

_DENSE_CELLS = 256  # one-hot / coincidence features wider than this are held sparse


# Hand-written (this module): no library computes agreement statistics from bootstrap resample weights.
def _is_sparse(features: Any) -> bool:
    from scipy import sparse

    return bool(sparse.issparse(features))


def _weighted_sums(w: np.ndarray, features: Any) -> np.ndarray:
    """``w @ features`` for dense or scipy.sparse features (sparse: one pass over the non-zeros per row of w)."""
    if _is_sparse(features):
        return np.asarray(features.T.tocsr() @ np.ascontiguousarray(w.T)).T
    return w @ features


@dataclass(frozen=True, eq=False)
class _Linear:
    """A statistic of the weighted sums ``W @ features``: ``finish(sums (m, k)) -> (m,)``. ``features`` is a dense
    array or, for wide one-hot/coincidence blocks (many categories), a scipy.sparse matrix."""

    features: Any
    finish: Callable[[np.ndarray], np.ndarray]

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return self.finish(_weighted_sums(w, self.features))


@dataclass(frozen=True, eq=False)
class _Direct:
    """A statistic computed from the weight matrix itself: ``fn(W (m, n)) -> (m,)``."""

    fn: Callable[[np.ndarray], np.ndarray]

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return self.fn(w)


_Weighted = _Linear | _Direct


class _Batch:
    """Evaluates many weighted statistics on the same weights, with one matrix product for all dense _Linear
    features and one for all sparse ones (feature blocks shared by several statistics — the same object — are
    multiplied once)."""

    def __init__(self, stats: Sequence[_Weighted]) -> None:
        from scipy import sparse

        self.stats = list(stats)
        blocks: dict[bool, list[Any]] = {False: [], True: []}
        cols = {False: 0, True: 0}
        seen: dict[int, tuple[bool, slice]] = {}
        self.where: list[tuple[bool, slice] | None] = []
        for s in self.stats:
            if isinstance(s, _Linear):
                key = id(s.features)
                if key not in seen:
                    sp = _is_sparse(s.features)
                    k = s.features.shape[1]
                    blocks[sp].append(s.features)
                    seen[key] = (sp, slice(cols[sp], cols[sp] + k))
                    cols[sp] += k
                self.where.append(seen[key])
            else:
                self.where.append(None)
        self.dense = np.hstack(blocks[False]) if blocks[False] else None
        self.sparse = sparse.hstack(blocks[True]).tocsr() if blocks[True] else None

    def __call__(self, w: np.ndarray) -> np.ndarray:
        out = np.empty((w.shape[0], len(self.stats)))
        sums = {False: w @ self.dense if self.dense is not None else None,
                True: _weighted_sums(w, self.sparse) if self.sparse is not None else None}
        for j, (s, where) in enumerate(zip(self.stats, self.where, strict=True)):
            if isinstance(s, _Linear):
                assert where is not None
                block = sums[where[0]]
                assert block is not None
                out[:, j] = s.finish(block[:, where[1]])
            else:
                out[:, j] = s(w)
        return out


def _ratio_finish(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s[:, 0] > 0, s[:, 1] / s[:, 0], np.nan)


def _mean_linear(parts: Sequence[_Linear]) -> _Linear:
    """Mean over the parts with a defined value (per resample), as one _Linear statistic."""
    widths = [p.features.shape[1] for p in parts]
    bounds = np.cumsum([0, *widths])
    if any(_is_sparse(p.features) for p in parts):
        from scipy import sparse

        feats: Any = sparse.hstack([sparse.csr_matrix(p.features) for p in parts]).tocsr()
    else:
        feats = np.hstack([p.features for p in parts])

    def finish(s: np.ndarray) -> np.ndarray:
        vals = np.column_stack([p.finish(s[:, bounds[i]:bounds[i + 1]]) for i, p in enumerate(parts)])
        return _nanmean_rows(vals)

    return _Linear(feats, finish)


def _w_agree(a: np.ndarray, b: np.ndarray, valid: np.ndarray, tolerance: float) -> _Linear:
    """Share of valid items with |a - b| <= tolerance."""
    ok = valid & ~(np.isnan(a) | np.isnan(b))
    hit = ok & (np.abs(np.where(ok, a - b, 0.0)) <= tolerance + _SLACK)
    return _Linear(np.column_stack([ok, hit]).astype(float), _ratio_finish)


def _w_pass(a: np.ndarray, b: np.ndarray, valid: np.ndarray, threshold: float) -> _Linear:
    ok = valid & ~(np.isnan(a) | np.isnan(b))
    same = ok & ((np.where(ok, a, 0) >= threshold) == (np.where(ok, b, 0) >= threshold))
    return _Linear(np.column_stack([ok, same]).astype(float), _ratio_finish)


def _onehot_cells(ia: np.ndarray, ib: np.ndarray, ok: np.ndarray, va: int, vb: int) -> Any:
    """(n, va*vb) indicator of each valid item's cell ``ia * vb + ib`` (zero rows for invalid items); a
    scipy.sparse matrix when there are more than 256 cells."""
    rows = np.flatnonzero(ok)
    cells = ia[rows] * vb + ib[rows]
    if va * vb > _DENSE_CELLS:
        from scipy import sparse

        return sparse.csr_matrix((np.ones(rows.size), (rows, cells)), shape=(ia.size, va * vb))
    f = np.zeros((ia.size, va * vb))
    f[rows, cells] = 1.0
    return f


def _w_kappa(cells: np.ndarray, n_labels: int, weights: str | None) -> _Linear:
    """Cohen's kappa from the resampled confusion matrix (``cells`` = one-hot features, shared)."""
    wmat = _kappa_weight_matrix(n_labels, weights)

    def finish(s: np.ndarray) -> np.ndarray:
        return _kappa_from_confusion(s.reshape(-1, n_labels, n_labels), wmat)

    return _Linear(cells, finish)


def _w_fleiss(counts: np.ndarray) -> _Linear:
    m, p = _fleiss_parts(counts)
    keep = (m >= 2).astype(float)
    feats = np.column_stack([keep, p * keep, m * keep, counts * keep[:, None]])

    def finish(s: np.ndarray) -> np.ndarray:
        return _fleiss_finish(s[:, 0], s[:, 1], s[:, 2], s[:, 3:])

    return _Linear(feats, finish)


def _w_alpha(mat: np.ndarray, level: str) -> _Linear:
    """Krippendorff's alpha from resampled per-unit contributions.

    interval: with per-unit count m, sum S1 and sum of squares S2 of the (centred) values,
    ``alpha = 1 - (n - 1) sum_u (2 m S2 - 2 S1**2) / (m - 1) / (2 n T2 - 2 T1**2)`` (n, T1, T2 pooled);
    nominal: ``alpha = 1 - (n - 1) sum_u (m**2 - sum_c v_uc**2) / (m - 1) / (n**2 - sum_c n_c**2)``;
    ordinal and ratio: the coincidence matrix ``o = sum_u (v_u v_u' - diag v_u) / (m_u - 1)`` (upper triangle as
    features) and ``alpha = 1 - (n - 1) sum o d / sum n_c n_k d`` with the distance d of the level (ordinal d
    depends on the resampled marginals).
    """
    m = (~np.isnan(mat)).sum(axis=1).astype(float)
    pairable = m >= 2
    keep = pairable.astype(float)
    pm = np.where(pairable[:, None], mat, np.nan)
    vals = pm[~np.isnan(pm)]
    if vals.size == 0:
        return _Linear(np.zeros((mat.shape[0], 1)), lambda s: np.full(s.shape[0], np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(pairable, 1.0 / (m - 1), 0.0)
    if level == "interval":
        spread = float(vals.max() - vals.min())
        c = pm - vals.mean()
        s1 = np.nansum(c, axis=1)
        s2 = np.nansum(c * c, axis=1)
        f = (2 * m * s2 - 2 * s1**2) * inv
        feats = np.column_stack([f, m * keep, s1, s2])

        def finish_interval(s: np.ndarray) -> np.ndarray:
            n = s[:, 1]
            num = (n - 1) * s[:, 0]
            den = 2 * n * s[:, 3] - 2 * s[:, 2] ** 2
            same = den <= 1e-12 * np.maximum(n, 1.0) ** 2 * max(spread, 1e-300) ** 2
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(same, 1.0, 1.0 - num / np.where(same, 1.0, den))
            return np.where(n >= 2, out, np.nan)

        return _Linear(feats, finish_interval)
    domain = np.unique(vals)
    v = (pm[:, :, None] == domain[None, None, :]).sum(axis=1).astype(float)  # (n, V) value counts
    big_v = domain.size
    if level == "nominal":
        f = (m**2 - (v**2).sum(axis=1)) * inv
        feats = np.column_stack([f, m * keep, v * keep[:, None]])

        def finish_nominal(s: np.ndarray) -> np.ndarray:
            n = s[:, 1]
            den = n**2 - (s[:, 2:] ** 2).sum(axis=1)
            same = den <= 1e-9
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(same, 1.0, 1.0 - (n - 1) * s[:, 0] / np.where(same, 1.0, den))
            return np.where(n >= 2, out, np.nan)

        return _Linear(feats, finish_nominal)
    iu = np.triu_indices(big_v)
    feats = _coincidence_features(v, inv, big_v)
    if level == "ratio":
        if np.any(domain < 0):
            raise ValueError("level='ratio' needs non-negative values")
        tot = domain[:, None] + domain[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            dist_fixed = np.where(tot != 0, ((domain[:, None] - domain[None, :]) / np.where(tot != 0, tot, 1)) ** 2,
                                  0.0)
    hi_idx = np.maximum.outer(np.arange(big_v), np.arange(big_v))
    lo_idx = np.minimum.outer(np.arange(big_v), np.arange(big_v))

    def finish_coincidence(s: np.ndarray) -> np.ndarray:
        o = np.zeros((s.shape[0], big_v, big_v))
        o[:, iu[0], iu[1]] = s
        o[:, iu[1], iu[0]] = s
        nv = o.sum(axis=2)
        n = nv.sum(axis=1)
        if level == "ordinal":
            cum = np.cumsum(nv, axis=1)
            before = cum - nv
            between = cum[:, hi_idx] - before[:, lo_idx]
            dist = (between - (nv[:, :, None] + nv[:, None, :]) / 2.0) ** 2
        else:
            dist = np.broadcast_to(dist_fixed, o.shape)
        num = (o * dist).sum(axis=(1, 2))
        den = np.einsum("mi,mj,mij->m", nv, nv, dist)
        same = den <= 1e-12 * np.maximum(n, 1.0) ** 2 * np.maximum(dist.max(axis=(1, 2)), 1e-300)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(same, 1.0, 1.0 - (n - 1) * num / np.where(same, 1.0, den))
        return np.where(n >= 2, out, np.nan)

    return _Linear(feats, finish_coincidence)


def _coincidence_features(v: np.ndarray, inv: np.ndarray, big_v: int) -> Any:
    """Per-unit coincidence contributions ``(v_c v_k - [c == k] v_c) / (m - 1)`` for c <= k (upper triangle in
    ``np.triu_indices`` order); sparse (only the value pairs present in each unit) when the triangle is wide."""
    n_tri = big_v * (big_v + 1) // 2
    if n_tri <= _DENSE_CELLS:
        iu = np.triu_indices(big_v)
        return (v[:, iu[0]] * v[:, iu[1]] - np.where(iu[0] == iu[1], 1.0, 0.0) * v[:, iu[0]]) * inv[:, None]
    from scipy import sparse

    unit, col = np.nonzero(v)  # row-major: each unit's present values in ascending order
    cnt = v[unit, col]
    size = np.bincount(unit, minlength=v.shape[0])
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    ii, jj = [], []
    for s_ in np.unique(size[size > 0]):
        a, b = np.triu_indices(int(s_))  # pairs i <= j within the unit's list
        base = start[size == s_][:, None]
        ii.append((base + a[None, :]).ravel())
        jj.append((base + b[None, :]).ravel())
    i, j = np.concatenate(ii), np.concatenate(jj)
    c, k = col[i], col[j]
    tri = c * big_v - c * (c - 1) // 2 + (k - c)  # position of (c, k), c <= k, in triu_indices order
    val = (cnt[i] * cnt[j] - np.where(i == j, cnt[i], 0.0)) * inv[unit[i]]
    return sparse.csr_matrix((val, (unit[i], tri)), shape=(v.shape[0], n_tri))


def _w_icc(mat: np.ndarray, kind: str, unit: str) -> _Linear:
    k = mat.shape[1]
    complete = ~np.isnan(mat).any(axis=1)
    feats = np.zeros((mat.shape[0], k + 4))
    if complete.sum() >= 1:
        feats[complete] = _icc_features(mat[complete])
    return _Linear(feats, lambda s: _icc_from_sums(s, k, kind, unit))
