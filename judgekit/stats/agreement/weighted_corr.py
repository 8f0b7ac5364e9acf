"""Weighted (resampled) forms of the correlations, for the bootstrap (see :mod:`~judgekit.stats.agreement.weighted`
for the weights convention).

- Pearson: from weighted sums of 1, x, y, x**2, y**2, xy (values centred first).
- Spearman and Kendall with few distinct values (a contingency table of at most 256 cells): from the resampled
  table (a :class:`~judgekit.stats.agreement.weighted._Linear` statistic).
- Spearman with many distinct values: resampled average ranks from cumulative weights in a fixed sort order.
- Kendall with many distinct values: the weighted discordant count by the levels of a merge sort, O(m n log n),
  exact.
- System level: weighted per-system means, then the correlation across systems; summary level under a cluster
  bootstrap: each group keeps its correlation, a group drawn c times counts c times.

Each equals the statistic recomputed on the explicitly duplicated sample (tested, against scipy's spearmanr and
kendalltau of the duplicated samples for the general rank paths); hand-written because no library computes a
correlation from resample weights.
"""

from __future__ import annotations

import numpy as np

from judgekit.stats.agreement.correlations import _corr_rows
from judgekit.stats.agreement.weighted import _Direct, _Linear, _onehot_cells, _Weighted

_TABLE_CELLS = 256  # rank correlations from a contingency table when (#x values) * (#y values) <= this
_ROWS = 32  # resamples processed together by the merge-sort Kendall and the re-ranking Spearman


# Hand-written (this module): no library computes a correlation from bootstrap resample weights.
def _w_pearson(x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> _Linear:
    """Weighted Pearson r from sums of 1, x, y, x**2, y**2, xy (values centred at their means first)."""
    xs, ys = x[ok], y[ok]
    spread_x = float(np.ptp(xs)) if xs.size else 0.0
    spread_y = float(np.ptp(ys)) if ys.size else 0.0
    xc = np.where(ok, x - (xs.mean() if xs.size else 0.0), 0.0)
    yc = np.where(ok, y - (ys.mean() if ys.size else 0.0), 0.0)
    feats = np.column_stack([ok.astype(float), xc, yc, xc * xc, yc * yc, xc * yc])

    def finish(s: np.ndarray) -> np.ndarray:
        n = s[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            sxx = s[:, 3] - s[:, 1] ** 2 / n
            syy = s[:, 4] - s[:, 2] ** 2 / n
            sxy = s[:, 5] - s[:, 1] * s[:, 2] / n
            r = sxy / np.sqrt(sxx * syy)
        const = (sxx <= 1e-10 * n * max(spread_x, 1e-300) ** 2) | (syy <= 1e-10 * n * max(spread_y, 1e-300) ** 2)
        return np.where((n >= 2) & ~const & np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)

    return _Linear(feats, finish)


def _dense_codes(v: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, inv = np.unique(v, return_inverse=True)
    return inv.ravel(), int(uniq.size)


def _table_rank_stats(x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """One-hot contingency features of the valid pairs when the table is small, else None."""
    if not ok.any():
        return None
    cx, vx = _dense_codes(x[ok])
    cy, vy = _dense_codes(y[ok])
    if vx * vy > _TABLE_CELLS:
        return None
    ia, ib = np.zeros(x.size, np.int64), np.zeros(x.size, np.int64)
    ia[ok], ib[ok] = cx, cy
    return _onehot_cells(ia, ib, ok, vx, vy), vx, vy


def _spearman_from_table(t: np.ndarray) -> np.ndarray:
    """Spearman's rho (average ranks) from (m, vx, vy) contingency tables of weighted counts."""
    nx, ny = t.sum(axis=2), t.sum(axis=1)
    tot = nx.sum(axis=1)
    rx = np.cumsum(nx, axis=1) - nx + (nx + 1) / 2.0
    ry = np.cumsum(ny, axis=1) - ny + (ny + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        sx, sy = (nx * rx).sum(axis=1), (ny * ry).sum(axis=1)
        vx = (nx * rx**2).sum(axis=1) - sx**2 / tot
        vy = (ny * ry**2).sum(axis=1) - sy**2 / tot
        cov = np.einsum("mab,ma,mb->m", t, rx, ry) - sx * sy / tot
        r = cov / np.sqrt(vx * vy)
    const = (vx <= 1e-9 * np.maximum(tot, 1) ** 3) | (vy <= 1e-9 * np.maximum(tot, 1) ** 3)
    return np.where(~const & np.isfinite(r) & (tot >= 2), np.clip(r, -1.0, 1.0), np.nan)


def _kendall_from_table(t: np.ndarray) -> np.ndarray:
    """Kendall's tau-b from (m, vx, vy) contingency tables: Q = sum N_ab * N[a' > a, b' < b]."""
    nx, ny = t.sum(axis=2), t.sum(axis=1)
    tot = nx.sum(axis=1)
    n0 = tot * (tot - 1) / 2
    n1 = (nx * (nx - 1) / 2).sum(axis=1)
    n2 = (ny * (ny - 1) / 2).sum(axis=1)
    n3 = (t * (t - 1) / 2).sum(axis=(1, 2))
    below = np.cumsum(t[:, ::-1, :], axis=1)[:, ::-1, :]  # sum over a' >= a
    below = np.concatenate([below[:, 1:, :], np.zeros_like(below[:, :1, :])], axis=1)  # a' > a
    left = np.cumsum(below, axis=2)  # b' <= b
    left = np.concatenate([np.zeros_like(left[:, :, :1]), left[:, :, :-1]], axis=2)  # b' < b
    q = (t * left).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (n0 - n1 - n2 + n3 - 2 * q) / np.sqrt((n0 - n1) * (n0 - n2))
    return np.where(((n0 - n1) > 0) & ((n0 - n2) > 0) & np.isfinite(tau), np.clip(tau, -1.0, 1.0), np.nan)


def _tie_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in a sorted array."""
    if sorted_values.size == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])


def _weighted_tie_pairs(ws: np.ndarray, starts: np.ndarray, self_pairs: np.ndarray) -> np.ndarray:
    """sum over runs of c (c - 1) / 2, c = the weight of a run of tied values (``ws`` in sorted order, ``starts``
    the run starts); ``self_pairs`` = sum_i w_i (w_i - 1) / 2, the answer when no two values tie, so that only
    the runs of 2+ items are summed."""
    n = ws.shape[1]
    length = np.diff(np.append(starts, n))
    multi = length > 1
    if not multi.any():
        return self_pairs
    members = np.concatenate([np.arange(a, a + k) for a, k in zip(starts[multi], length[multi], strict=True)])
    sub = ws[:, members].astype(float)
    c = np.add.reduceat(sub, np.concatenate([[0], np.cumsum(length[multi])[:-1]]), axis=1)
    return self_pairs - (sub * (sub - 1) / 2).sum(axis=1) + (c * (c - 1) / 2).sum(axis=1)


def _w_spearman_general(x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> _Direct:
    """Spearman's rho under weights with many distinct values: the resampled average ranks come from cumulative
    weights in the fixed sort order of each side (``rank = weight below + (weight of ties + 1) / 2``)."""
    cols = np.flatnonzero(ok)
    xs, ys = x[cols], y[cols]

    def prep(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(v, kind="stable")
        starts = _tie_starts(v[order])
        run = np.empty(v.size, np.int64)
        run[order] = np.cumsum(np.r_[True, v[order][1:] != v[order][:-1]]) - 1 if v.size else 0
        return order, starts, run

    px, py = prep(xs), prep(ys)

    def ranks(w: np.ndarray, p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        order, starts, _ = p
        c = np.add.reduceat(w[:, order], starts, axis=1)  # weight of each tie run
        r = np.cumsum(c, axis=1) - c + (c + 1) / 2.0
        return r, c

    def fn(w: np.ndarray) -> np.ndarray:
        w = w[:, cols]
        if w.shape[1] == 0:
            return np.full(w.shape[0], np.nan)
        return np.concatenate([rho(w[i:i + _ROWS]) for i in range(0, w.shape[0], _ROWS)])

    def rho(w: np.ndarray) -> np.ndarray:
        rx, cx = ranks(w, px)
        ry, cy = ranks(w, py)
        tot = w.sum(axis=1)
        sx, sy = (cx * rx).sum(axis=1), (cy * ry).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            vx = (cx * rx**2).sum(axis=1) - sx**2 / tot
            vy = (cy * ry**2).sum(axis=1) - sy**2 / tot
            cov = np.einsum("mi,mi,mi->m", w, rx[:, px[2]], ry[:, py[2]]) - sx * sy / tot
            r = cov / np.sqrt(vx * vy)
        const = (vx <= 1e-9 * np.maximum(tot, 1) ** 3) | (vy <= 1e-9 * np.maximum(tot, 1) ** 3)
        return np.where(~const & np.isfinite(r) & (tot >= 2), np.clip(r, -1.0, 1.0), np.nan)

    return _Direct(fn)


def _w_kendall_general(x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> _Direct:
    """Kendall's tau-b under weights with many distinct values, exactly, in O(m n log n).

    Items are sorted once by (x, y). The weighted discordant count ``Q = sum_{i before j, y_i > y_j} w_i w_j`` is
    the weighted inversion count of y in that order, computed by the levels of a bottom-up merge sort: at each
    level, for every block (left half L, right half R), ``sum_{i in L, j in R, y_i > y_j} w_i w_j =
    sum_b L_b R_b - sum_{j in R} w_j * (weight of L items with y <= y_j)``, the last term a cumulative sum of
    the L weights in the block's fixed y order. Ties: pairs tied on x are never counted (y ascending within x);
    ``P - Q = n0 - n1 - n2 + n3 - 2 Q`` with the weighted tie-pair counts n1 (x), n2 (y), n3 (both).
    """
    cols = np.flatnonzero(ok)
    xs, ys = x[cols], y[cols]
    n = xs.size
    order = np.lexsort((ys, xs))
    yr = _dense_codes(ys[order])[0]
    x_starts = _tie_starts(xs[order])
    joint_starts = np.flatnonzero(np.r_[True, (xs[order][1:] != xs[order][:-1]) | (ys[order][1:] != ys[order][:-1])]) \
        if n else np.zeros(0, np.int64)
    y_order = np.argsort(ys[order], kind="stable")
    y_starts = _tie_starts(ys[order][y_order])
    levels = []
    pos = np.arange(n)
    s = 1
    while s < n:
        block = pos // (2 * s)
        right = (pos % (2 * s)) >= s
        levels.append((np.lexsort((right, yr, block)), ~right[np.lexsort((right, yr, block))]))
        s *= 2

    def discordant(ws: np.ndarray) -> np.ndarray:
        """Weighted inversion count Q of a few rows of weights in (x, y) order."""
        q = np.zeros(ws.shape[0])
        chunks = ws.astype(float)  # weight of each chunk [c s, c s + s) of the order; s = 1 first
        for perm, left_mask in levels:
            lt, rt = chunks[:, 0::2], chunks[:, 1::2]  # the left / right halves of each block
            lt_r = lt[:, :rt.shape[1]]
            base = np.cumsum(lt_r, axis=1) - lt_r  # L weight of the blocks before (global cumsum offset)
            wp = ws[:, perm]
            lp = np.where(left_mask, wp, 0)
            cum = np.cumsum(lp, axis=1, dtype=ws.dtype)
            r_cum = ((wp - lp) * cum).sum(axis=1, dtype=np.int64).astype(float)
            # sum_{j in R} w_j (L weight with y <= y_j in j's block) = r_cum - sum_b R_b base_b
            q += (lt_r * rt).sum(axis=1) - (r_cum - (rt * base).sum(axis=1))
            merged = lt.copy()
            merged[:, :rt.shape[1]] += rt
            chunks = merged
        return q

    def fn(w: np.ndarray) -> np.ndarray:
        m = w.shape[0]
        if n < 2:
            return np.full(m, np.nan)
        wint = np.rint(w[:, cols][:, order])
        # int32 is exact while every product w_j * (cumulative weight) stays below 2**31
        wide = np.int32 if wint.max(initial=0) * wint.sum(axis=1).max(initial=0) < 2**31 else np.int64
        ws = wint.astype(wide)
        # rows in small blocks: the 14 passes over a block of 32 x 10,000 weights stay in cache (~3x faster)
        q = np.concatenate([discordant(ws[i:i + _ROWS]) for i in range(0, m, _ROWS)])
        tot = wint.sum(axis=1)
        n0 = tot * (tot - 1) / 2
        self_pairs = (wint * (wint - 1) / 2).sum(axis=1)
        n1 = _weighted_tie_pairs(wint, x_starts, self_pairs)
        n2 = _weighted_tie_pairs(wint[:, y_order], y_starts, self_pairs)
        n3 = _weighted_tie_pairs(wint, joint_starts, self_pairs)
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = (n0 - n1 - n2 + n3 - 2 * q) / np.sqrt((n0 - n1) * (n0 - n2))
        return np.where(((n0 - n1) > 0) & ((n0 - n2) > 0) & np.isfinite(tau), np.clip(tau, -1.0, 1.0), np.nan)

    return _Direct(fn)


def _w_sample_corr(x: np.ndarray, y: np.ndarray, ok: np.ndarray, method: str,
                   table: tuple[np.ndarray, int, int] | None) -> _Weighted:
    """Sample-level correlation under weights (``table``: shared one-hot contingency features, when small)."""
    if method == "pearson":
        return _w_pearson(x, y, ok)
    if table is not None:
        feats, vx, vy = table
        conv = _spearman_from_table if method == "spearman" else _kendall_from_table
        return _Linear(feats, lambda s: conv(s.reshape(-1, vx, vy)))
    return _w_spearman_general(x, y, ok) if method == "spearman" else _w_kendall_general(x, y, ok)


def _w_system(x: np.ndarray, y: np.ndarray, ok: np.ndarray, sid: np.ndarray, n_sys: int,
              method: str) -> _Linear:
    """System-level correlation: weighted per-system means (sums of one-hot, x, y), then across systems."""
    present = np.bincount(sid[ok], minlength=n_sys) > 0
    keep = np.flatnonzero(present)
    remap = np.full(n_sys, -1)
    remap[keep] = np.arange(keep.size)
    s_count = keep.size
    onehot = np.zeros((x.size, s_count))
    rows = np.flatnonzero(ok)
    onehot[rows, remap[sid[rows]]] = 1.0
    xc = np.where(ok, x - (x[ok].mean() if ok.any() else 0.0), 0.0)
    yc = np.where(ok, y - (y[ok].mean() if ok.any() else 0.0), 0.0)
    feats = np.hstack([onehot, onehot * xc[:, None], onehot * yc[:, None]])

    def finish(s: np.ndarray) -> np.ndarray:
        cnt, sx, sy = s[:, :s_count], s[:, s_count:2 * s_count], s[:, 2 * s_count:]
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = sx / cnt, sy / cnt  # a system absent from a resample gives nan -> that resample is nan
        return _corr_rows(mx, my, method)

    return _Linear(feats, finish)


def _w_summary(r_g: np.ndarray, usable: np.ndarray, first_item: np.ndarray) -> _Direct:
    """Summary-level correlation under a cluster bootstrap: each group keeps its own correlation; a group drawn
    c times counts c times in the mean (the weight of any of its items is c)."""
    use = np.flatnonzero(usable)
    r_use, first = r_g[use], first_item[use]

    def fn(w: np.ndarray) -> np.ndarray:
        c = w[:, first]
        tot = c.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, (c @ r_use) / tot, np.nan)

    return _Direct(fn)
