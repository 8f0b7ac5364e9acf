"""Paired differences of two conditions (the same items measured twice): the percentile-bootstrap interval of
the mean difference, the Wilcoxon signed-rank test with Pratt's zeros, McNemar's exact test, and
:func:`paired_difference`, which gives all of them for one pair of arrays.

:func:`judgekit.stats.robustness.compare_conditions` computes these figures for every model, category,
condition and criterion of a robustness run; :func:`paired_difference` is the same computation for one metric
on arrays.

Conventions: a pair is the unit that is resampled; a pair with a missing (``NaN``) side is dropped and counted;
differences are ``degraded - baseline``, rounded to 1e-12 (and to 1e-9 before the tests) so that
floating-point noise is neither a difference nor a broken tie.

Library or hand-written: McNemar's test is ``scipy.stats.binom``'s CDF. The bootstrap is hand-written (a block
of resamples is one matrix product of draw counts) because ``scipy.stats.bootstrap`` is several times slower on
the small groups of pairs a robustness run has many of (about 7x on 20 pairs); it is checked against its
documented scheme written out as a loop and against scipy's paired percentile interval. The exact Wilcoxon
distribution is hand-written because scipy's exact method does not condition on ties and zeros (its permutation
method enumerates all ``2**m`` sign flips); it is checked against that enumeration, and the normal approximation
against ``scipy.stats.wilcoxon``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairedDifference", "bootstrap_mean_ci", "mcnemar_exact", "paired_difference", "wilcoxon_pratt"]

_ROUND = 9  # differences are rounded to 1e-9 before the tests (float noise is not a difference)
_EXACT_MAX = 50  # exact Wilcoxon null distribution up to this many pairs
_CHUNK = 1 << 22  # at most this many resampled indices are held in memory at once


# --------------------------------------------------------------------------------------------- statistics


# Hand-written: scipy.stats.bootstrap is ~7x slower on the small groups (20 pairs) a robustness run has many of.
def bootstrap_mean_ci(values: Any, *, n_boot: int = 2000, confidence: float = 0.95,
                      rng: np.random.Generator) -> np.ndarray:
    """Percentile-bootstrap interval of the mean of each column of ``values`` (paired differences).

    Parameters
    ----------
    values : array-like of shape (n,) or (n, k)
        One row per pair (the unit that is resampled), one column per metric. The columns are resampled
        together: every resample draws ``n`` row indices with replacement, uniformly.
    n_boot : int
        Number of resamples.
    confidence : float
        Interval level; the bounds are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
        the ``n_boot`` resampled means (``numpy.quantile``, linear interpolation).
    rng : numpy.random.Generator
        Source of the indices. They are drawn as ``rng.integers(0, n, size=(b, n))`` for consecutive blocks
        of ``b = max(1, min(n_boot, 2**22 // n))`` resamples (one block unless ``n_boot * n > 2**22``); a
        block's means are ``counts @ values / n`` with ``counts[r, i]`` = how often row ``i`` was drawn in
        resample ``r`` (vectorised; no Python loop over resamples).

    Returns
    -------
    ndarray of shape (2,) or (2, k)
        ``[low, high]`` (per column).
    """
    v = np.asarray(values, dtype=float)
    one = v.ndim == 1
    if one:
        v = v[:, None]
    n = v.shape[0]
    if n == 0:
        raise ValueError("bootstrap_mean_ci needs at least one value")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    means = np.empty((n_boot, v.shape[1]))
    block = max(1, min(n_boot, _CHUNK // n))
    for start in range(0, n_boot, block):  # blocks of resamples (one block in the common case)
        b = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        means[start:start + b] = (counts @ v) / n
    alpha = (1.0 - confidence) / 2
    ci = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return ci[:, 0] if one else ci


def mcnemar_exact(n_worse: int, n_better: int) -> float:
    """Two-sided exact McNemar test of paired binary outcomes.

    Only the discordant pairs carry information: ``n_worse`` (pass on the baseline, fail degraded) and
    ``n_better`` (fail -> pass). Under the null hypothesis of equal pass rates each discordant pair is
    either kind with probability 1/2, so with ``m = n_worse + n_better``::

        p = min(1, 2 * P[X <= min(n_worse, n_better)]),  X ~ Binomial(m, 1/2)

    (the exact conditional binomial test; for p = 1/2 it equals ``scipy.stats.binomtest(...).pvalue``).
    Returns 1.0 when there is no discordant pair.
    """
    if n_worse < 0 or n_better < 0:
        raise ValueError("counts must be non-negative")
    m = n_worse + n_better
    if m == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(min(n_worse, n_better), m, 0.5)))


# Hand-written: scipy's exact Wilcoxon does not condition on ties and zeros (its permutation form is 2**n).
def wilcoxon_pratt(differences: Any) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank test of paired differences, with Pratt's treatment of zeros.

    Judge scores are coarse (integers 1-5, or means of a few of them), so many differences are 0 and many
    non-zero differences tie. The statistic is that of ``scipy.stats.wilcoxon(d, zero_method="pratt")``:
    ``|d|`` is ranked with average ranks for ties, *including* the zero differences (Pratt 1959), and
    ``T+`` sums the ranks of the positive differences; the zeros then take no part in the sums. Unlike
    ``"wilcox"`` (drop zeros before ranking) this keeps the information that many pairs did not move, and
    unlike ``"zsplit"`` it does not credit the zeros' ranks to both sides.

    The p-value is ``min(1, 2 * min(P[T+ <= t], P[T+ >= t]))`` under the null hypothesis that every non-zero
    difference is equally likely positive or negative, given the observed ranks:

    - ``n <= 50``: exact. The null distribution of ``T+`` over all ``2**m`` sign assignments of the ``m``
      non-zero differences (ties and zeros included, so it is the exact *conditional* distribution) is
      computed by dynamic programming on the doubled ranks. Without ties and zeros this is the classic exact
      test (``scipy.stats.wilcoxon(..., method="exact")``); with them, the exhaustive sign-flip permutation
      test.
    - ``n > 50``: normal approximation, ``p = 2 * (1 - Phi(|T+ - mu| / sigma))`` with Cureton's (1967) moments
      for Pratt's method, ``z0`` zeros and tie groups of sizes ``t`` among the non-zero ``|d|``:
      ``mu = (n(n+1) - z0(z0+1)) / 4``,
      ``sigma**2 = (n(n+1)(2n+1) - z0(z0+1)(2 z0+1) - sum(t**3 - t) / 2) / 24``; no continuity correction.
      This is ``scipy.stats.wilcoxon(d, zero_method="pratt", correction=False, method="asymptotic")``,
      written out to avoid its per-call overhead.

    Differences are rounded to 9 decimals first, so floating-point noise is neither a non-zero difference
    nor a broken tie.

    Returns
    -------
    (p_value, note) : tuple[float, str]
        ``p_value = 1.0`` (note ``"all differences are 0"``) when every difference is 0: no evidence of any
        change, as the exact McNemar test gives with no discordant pair. nan for an empty input.
    """
    d = np.round(np.asarray(differences, dtype=float).ravel(), _ROUND)
    n = d.size
    if n == 0:
        return math.nan, "no pairs"
    if not np.any(d):
        return 1.0, "all differences are 0"
    from scipy.stats import rankdata

    ranks = rankdata(np.abs(d))  # average ranks for ties, zeros included (Pratt)
    nonzero = d != 0
    t_plus = float(ranks[d > 0].sum())
    if n > _EXACT_MAX:
        z0 = n - int(nonzero.sum())
        mean = (n * (n + 1) - z0 * (z0 + 1)) / 4
        ties = np.unique(np.abs(d[nonzero]), return_counts=True)[1].astype(float)
        var = (n * (n + 1) * (2 * n + 1) - z0 * (z0 + 1) * (2 * z0 + 1) - float(np.sum(ties**3 - ties)) / 2) / 24
        return float(min(1.0, math.erfc(abs(t_plus - mean) / math.sqrt(2 * var)))), ""
    r2 = np.rint(2 * ranks).astype(np.int64)  # average ranks are multiples of 1/2
    t_obs = int(r2[d > 0].sum())
    total = int(r2[nonzero].sum())
    dist = np.zeros(total + 1)  # dist[t]: sign assignments with 2 * T+ = t (exact integers below 2**53)
    dist[0] = 1.0
    for r in r2[nonzero]:
        dist[r:] = dist[r:] + dist[:-r]
    dist /= dist.sum()
    p = 2.0 * min(dist[: t_obs + 1].sum(), dist[t_obs:].sum())
    return float(min(1.0, p)), ""



def excludes_zero(ci_low: float, ci_high: float) -> bool:
    """True when the interval [ci_low, ci_high] excludes 0 (False when there is no interval: NaN bounds)."""
    return (ci_low > 0 or ci_high < 0) and not (math.isnan(ci_low) or math.isnan(ci_high))


@dataclass(frozen=True)
class PairedDifference:
    """Result of :func:`paired_difference` (the figures of one :class:`~judgekit.stats.robustness.RobustnessRow`).

    Attributes
    ----------
    n : int
        Pairs used (neither side missing).
    n_dropped : int
        Pairs with a missing side, excluded.
    baseline, degraded : float
        Means of the two sides over the ``n`` pairs.
    diff : float
        Mean paired difference ``degraded - baseline``.
    ci_low, ci_high : float
        Percentile-bootstrap interval of ``diff`` (nan with fewer than ``min_pairs`` pairs).
    p_value : float
        Two-sided p-value of the paired test (nan with fewer than ``min_pairs`` pairs).
    test : str
        ``"wilcoxon-pratt"`` or ``"mcnemar-exact"`` (empty when no test was run).
    n_worse, n_better : int
        Pairs with a negative / positive difference.
    confidence : float
    n_boot : int
    note : str
    """

    n: int
    n_dropped: int
    baseline: float
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

    @property
    def significant(self) -> bool:
        """True when the confidence interval excludes 0 (False when there is no interval)."""
        return excludes_zero(self.ci_low, self.ci_high)


def paired_difference(baseline: Any, degraded: Any, *, binary: bool = False, n_boot: int = 2000,
                      confidence: float = 0.95, seed: int = 0, min_pairs: int = 5) -> PairedDifference:
    """Mean paired difference ``degraded - baseline`` with its bootstrap interval and a paired test.

    The figures :func:`~judgekit.stats.robustness.compare_conditions` gives for one metric of one group, on two
    arrays: the pairs are rounded, resampled and tested exactly as there (:func:`bootstrap_mean_ci` with
    ``numpy.random.default_rng(seed)``; :func:`wilcoxon_pratt`, or :func:`mcnemar_exact` when ``binary``).

    Parameters
    ----------
    baseline, degraded : array-like of shape (n,)
        The two measurements of each item, in the same order; ``NaN`` marks a missing one (the pair is dropped).
    binary : bool, default False
        The values are pass/fail outcomes (0/1): McNemar's exact test instead of Wilcoxon's.
    n_boot, confidence, seed, min_pairs
        As in :func:`~judgekit.stats.robustness.compare_conditions`: below ``min_pairs`` pairs there is no
        interval and no test (the note says so); the means are still given.

    Examples
    --------
    >>> r = paired_difference([3, 4, 5, 4, 3, 5], [2, 4, 4, 3, 3, 4])
    >>> round(r.diff, 4), r.n_worse, r.n_better, r.test
    (-0.6667, 4, 0, 'wilcoxon-pratt')
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    clean = np.asarray(baseline, dtype=float)
    deg = np.asarray(degraded, dtype=float)
    if clean.ndim != 1 or clean.shape != deg.shape:
        raise ValueError(f"baseline and degraded must be 1-D of the same length, got shapes {clean.shape} and "
                         f"{deg.shape}")
    valid = ~(np.isnan(clean) | np.isnan(deg))
    n = int(valid.sum())
    c, d = clean[valid], deg[valid]
    dd = np.round(d - c, 12)
    lo = hi = math.nan
    if n >= max(min_pairs, 1):
        lo, hi = bootstrap_mean_ci(dd, n_boot=n_boot, confidence=confidence, rng=np.random.default_rng(seed))
    signs = np.sign(np.round(dd, _ROUND))
    n_worse, n_better = int((signs < 0).sum()), int((signs > 0).sum())
    notes = []
    p, test = math.nan, ""
    if n == 0:
        notes.append("no scored pairs")
    elif n < min_pairs:
        notes.append(f"fewer than {min_pairs} pairs: no interval or test")
    elif binary:
        p, test = mcnemar_exact(n_worse, n_better), "mcnemar-exact"
        if n_worse + n_better == 0:
            notes.append("no discordant pairs")
    else:
        p, why = wilcoxon_pratt(dd)
        test = "wilcoxon-pratt"
        if why:
            notes.append(why)
    return PairedDifference(n=n, n_dropped=int(clean.size - n), baseline=float(c.mean()) if n else math.nan,
                            degraded=float(d.mean()) if n else math.nan, diff=float(dd.mean()) if n else math.nan,
                            ci_low=float(lo), ci_high=float(hi), p_value=p, test=test, n_worse=n_worse,
                            n_better=n_better, confidence=confidence, n_boot=n_boot, note="; ".join(notes))
