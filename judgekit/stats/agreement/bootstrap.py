"""Bootstrap confidence intervals: :func:`bootstrap_ci` (percentile or BCa, resampling items or whole groups),
and the resampling scheme every statistic of :func:`~judgekit.stats.agreement.agreement_report` shares.

Conventions: resample ``r`` draws the ``n`` units (items, or groups for a cluster bootstrap) with
``numpy.random.default_rng(seed).integers(0, n, size=(n_resamples, n))``, drawn in blocks of rows (the same
stream), so that with the same seed ``scipy.stats.bootstrap`` draws the same resamples. A resample is handed to
vectorised statistics as a vector of integer weights (how often each unit was drawn). Percentile bounds are
numpy's linearly interpolated quantiles; BCa follows Efron & Tibshirani (1993, ch. 14), as scipy.stats.bootstrap
(tested equal), with a grouped jackknife above 1,000 units. Resamples where a statistic is undefined are dropped
while they are at most 10 %, else the interval is ``(nan, nan)``. Hand-written rather than
``scipy.stats.bootstrap`` because scipy calls the statistic once per resample (or needs it vectorised over an
axis), while here one matrix product evaluates every statistic of a report on a block of resamples.

References
----------
- Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 14 (BCa). Chapman & Hall.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

from judgekit.stats.agreement._common import _check_choice, _codes, _labels_vector

_CHUNK = 1 << 24  # at most this many resampled indices are drawn at once
_JACK_EXACT = 1000  # leave-one-out jackknife up to this many resampling units, else _JACK_BLOCKS blocks
_JACK_BLOCKS = 100
_MAX_NAN_SHARE = 0.1  # bootstrap intervals drop undefined resamples only while they are at most this share


def _resample_indices(rng: np.random.Generator, n_units: int, n_resamples: int) -> Iterator[np.ndarray]:
    """Blocks of resampled unit indices (b, n_units), drawn as ``rng.integers(0, n_units, size=(b, n_units))``
    for consecutive blocks of rows — the same stream as one ``size=(n_resamples, n_units)`` draw (and as
    scipy.stats.bootstrap's with the same Generator)."""
    block = max(1, min(n_resamples, _CHUNK // max(n_units, 1)))
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        yield rng.integers(0, n_units, size=(b, n_units))


def _resample_counts(rng: np.random.Generator, n_units: int, n_resamples: int) -> Iterator[np.ndarray]:
    """Blocks of resample counts (b, n_units): row r counts how often each unit is in resample r."""
    for idx in _resample_indices(rng, n_units, n_resamples):
        b = idx.shape[0]
        idx += (np.arange(b) * n_units)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n_units).reshape(b, n_units).astype(float)


def _jackknife_weights(n_units: int) -> np.ndarray:
    """Leave-one-unit-out weights (n_units <= 1000), else leave-one-block-out with 100 blocks (unit u in block
    u mod 100): rows are jackknife replicates, columns units (1 = kept)."""
    if n_units <= _JACK_EXACT:
        return 1.0 - np.eye(n_units)
    block = np.arange(n_units) % _JACK_BLOCKS
    return (block[None, :] != np.arange(_JACK_BLOCKS)[:, None]).astype(float)


# Hand-written: the BCa bounds of scipy.stats.bootstrap from precomputed resample and jackknife values.
def _interval(theta: float, boot: np.ndarray, jack: np.ndarray | None, confidence: float,
              method: str) -> tuple[float, float]:
    """Percentile or BCa interval from the bootstrap values ``boot`` (and jackknife values for BCa)."""
    if not np.isfinite(theta) or boot.size == 0:
        return (math.nan, math.nan)
    fin = boot[np.isfinite(boot)]
    if fin.size == 0 or fin.size < (1 - _MAX_NAN_SHARE) * boot.size:
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2
    if method == "percentile":
        lo, hi = np.quantile(fin, [alpha, 1.0 - alpha])
        return (float(lo), float(hi))
    from scipy.special import ndtr, ndtri

    z0 = ndtri((np.count_nonzero(fin < theta) + np.count_nonzero(fin <= theta)) / (2.0 * fin.size))
    if jack is None or not np.all(np.isfinite(jack)) or not np.isfinite(z0):
        return (math.nan, math.nan)
    d = jack.mean() - jack
    ss = float((d**2).sum())
    acc = float((d**3).sum() / (6.0 * ss**1.5)) if ss > 0 else 0.0
    probs = []
    for z in (ndtri(alpha), ndtri(1.0 - alpha)):
        probs.append(float(ndtr(z0 + (z0 + z) / (1.0 - acc * (z0 + z)))))
    if not all(np.isfinite(probs)):
        return (math.nan, math.nan)
    lo, hi = np.quantile(fin, probs)
    return (float(lo), float(hi))


def _check_bootstrap_args(n_resamples: int, confidence: float, method: str, allow_zero: bool = False) -> None:
    if not isinstance(n_resamples, int | np.integer) or n_resamples < (0 if allow_zero else 1):
        raise ValueError(f"n_resamples must be an integer >= {0 if allow_zero else 1}, got {n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    _check_choice(method, "method", ("percentile", "bca"))


# Hand-written: scipy.stats.bootstrap cannot share one set of resamples (as weights) across many statistics.
def bootstrap_ci(statistic: Callable[..., Any], data: Any, *, n_resamples: int = 1000, confidence: float = 0.95,
                 method: Literal["percentile", "bca"] = "percentile", seed: int = 0, groups: Any = None,
                 vectorized: bool = False) -> tuple[float, float]:
    """Bootstrap confidence interval of ``statistic(*data)``, resampling items (rows) or whole groups.

    Parameters
    ----------
    statistic : callable
        ``statistic(*samples) -> float`` where ``samples`` are the arrays of ``data`` with the same rows taken
        (paired resampling). With ``groups``, it is called as ``statistic(*samples, groups=labels)``, ``labels``
        numbering the drawn groups 0..G-1 in draw order, so that a group drawn twice is two groups (what a
        summary-level correlation needs). With ``vectorized=True`` it is instead called once per block as
        ``statistic(*data, weights=W)`` with ``W`` of shape (m, n) — ``W[r, i]`` = how many times item ``i`` is
        in resample ``r`` (the count of its group, with ``groups``) — and must return shape (m,).
    data : array-like or tuple of array-likes
        One array, or several with the same first dimension ``n`` (rows = items).
    n_resamples, confidence : int, float
    method : "percentile" or "bca"
        Percentile: the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles of the resampled values (numpy's linear
        interpolation). BCa (Efron & Tibshirani 1993, ch. 14; the definition of scipy.stats.bootstrap): bias
        correction ``z0 = Phi^-1((#{t* < t} + #{t* <= t}) / (2 B))``, acceleration
        ``a = sum d**3 / (6 (sum d**2)**1.5)`` with ``d = mean(t_(j)) - t_(j)`` over jackknife values
        ``t_(j)``: leave one unit (item, or group) out when there are at most 1,000 units, otherwise a grouped
        jackknife leaving out each of 100 blocks (unit ``u`` in block ``u mod 100``) — cheaper, and the
        acceleration is a ratio of moments that blocks estimate as well. ``a = 0`` when every jackknife value is
        equal. The bounds are the ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` quantiles, ``z = Phi^-1`` of
        ``(1 -/+ c) / 2``.
    seed : int
        ``numpy.random.default_rng(seed)``; resample ``r`` draws ``n`` indices (of items, or of groups) with
        ``rng.integers(0, n, size=(n_resamples, n))`` (drawn in blocks of rows, the same stream). With the same
        seed scipy.stats.bootstrap draws the same resamples.
    groups : array-like of shape (n,), optional
        Cluster labels: whole groups are resampled (cluster bootstrap), e.g. the source document of each item,
        whose items are not independent.

    Returns
    -------
    (low, high) : tuple of float
        ``(nan, nan)`` when the statistic is undefined (nan) on the data, when more than 10 % of the resamples
        give nan (resamples where it is undefined are otherwise dropped), or, for BCa, when a jackknife value is
        undefined or the bias correction is infinite (the statistic lies outside the bootstrap distribution).

    Examples
    --------
    >>> x = np.arange(20.0)
    >>> lo, hi = bootstrap_ci(np.mean, x, n_resamples=2000, seed=1)
    >>> bool(lo < 9.5 < hi)
    True
    """
    _check_bootstrap_args(n_resamples, confidence, method)
    samples = tuple(np.asarray(d) for d in data) if isinstance(data, tuple | list) else (np.asarray(data),)
    if not samples or samples[0].ndim == 0:
        raise ValueError("data must be an array or a tuple of arrays with one row per item")
    n = samples[0].shape[0]
    if any(s.ndim == 0 or s.shape[0] != n for s in samples):
        raise ValueError(f"every array in data must have {n} rows, got {[s.shape for s in samples]}")
    if n == 0:
        raise ValueError("data has no rows")
    if groups is not None:
        unit, n_units = _codes(_labels_vector(groups, n, "groups"))
    else:
        unit, n_units = np.arange(n), n
    rng = np.random.default_rng(seed)

    if vectorized:
        def weighted(w_units: np.ndarray) -> np.ndarray:
            w = w_units[:, unit] if groups is not None else w_units
            return np.asarray(statistic(*samples, weights=w), dtype=float).reshape(w.shape[0])

        theta = float(weighted(np.ones((1, n_units)))[0])
        boot = np.concatenate([weighted(w) for w in _resample_counts(rng, n_units, n_resamples)])
        jack = weighted(_jackknife_weights(n_units)) if method == "bca" else None
        return _interval(theta, boot, jack, confidence, method)

    members = None
    if groups is not None:
        order = np.argsort(unit, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(unit, minlength=n_units))])
        members = [order[bounds[g]:bounds[g + 1]] for g in range(n_units)]

    def call(idx_units: np.ndarray) -> float:
        if members is None:
            return float(statistic(*(s[idx_units] for s in samples)))
        parts = [members[g] for g in idx_units]
        idx = np.concatenate(parts)
        labels = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        return float(statistic(*(s[idx] for s in samples), groups=labels))

    theta = call(np.arange(n_units))
    vals = [call(row) for idx in _resample_indices(rng, n_units, n_resamples) for row in idx]
    jack = None
    if method == "bca":
        jack = np.array([call(np.flatnonzero(row > 0)) for row in _jackknife_weights(n_units)])
    return _interval(theta, np.asarray(vals, dtype=float), jack, confidence, method)
