"""Rank ranges of a leaderboard: how sure is each model's place? Computed at the level of items (questions).

:func:`rank_ranges` ranks models by pass rate and gives each one a range of ranks from a paired bootstrap of
the items, as the LMSYS Chatbot Arena leaderboard does for its ratings: a model whose range is ``[1, 1]`` is
first in (nearly) every resample; two models whose ranges overlap are not told apart by the data. Ranks admit
ties: two models with the same rate share the better rank.

:func:`mean_rank_ranges` does the same for a mean score (the mean overall score), with a bootstrap interval
of the mean. :func:`pass_matrix` and :func:`score_matrix` build their inputs (per item and model: passes and
scored judgments; sums of overall scores and their counts) from judgments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from judgekit.io.records import Judgment

__all__ = ["RankRanges", "mean_rank_ranges", "pass_matrix", "rank_ranges", "ranks_with_ties", "score_matrix"]

_CHUNK = 1 << 22  # at most this many resampled item indices are held at once


@dataclass(frozen=True)
class RankRanges:
    """What :func:`rank_ranges` returns, one entry per model (in the input's column order).

    Attributes
    ----------
    rate : ndarray of float
        Pass rate of each model on the data (``passes / scored`` pooled over items; nan when nothing scored).
    rank : ndarray of int
        Rank of each model on the data (1 = best; ties share the better rank, see :func:`ranks_with_ties`).
    low, high : ndarray of int
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the model's rank over the
        resamples (``low`` rounded down to a rank reached in a resample, ``high`` up: quantile methods
        ``"lower"`` and ``"higher"``), so ``low <= high`` are ranks that occurred.
    n_resamples : int
        Bootstrap resamples.
    confidence : float
        Level of the range.
    """

    rate: np.ndarray
    rank: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_resamples: int
    confidence: float


def ranks_with_ties(rates: np.ndarray) -> np.ndarray:
    """Competition ranks ("1224") of the rows of ``rates`` (shape ``(..., models)``), higher rate = better.

    A model's rank is 1 + the number of models with a strictly higher rate, so tied models share the better
    rank and the next rank is skipped. A nan rate (no scored judgment) ranks below every number, and nan rates
    tie with each other.
    """
    r = np.where(np.isnan(rates), -np.inf, np.asarray(rates, dtype=float))
    return 1 + (r[..., None, :] > r[..., :, None]).sum(axis=-1)


def rank_ranges(passes: np.ndarray, scored: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
                seed: int = 0) -> RankRanges:
    """Rank each model by pass rate, with a bootstrap range of its rank.

    Parameters
    ----------
    passes, scored : array of shape (items, models)
        Per item (question id) and model: how many of the model's scored judgments pass, and how many are
        scored (0 and 0 when the model has none for that item; several when an item is asked under several
        conditions). Unscored judgments are left out of both, as in every pass rate of judgekit.
    n_resamples : int, default 1000
        Bootstrap resamples.
    confidence : float, default 0.95
        Level of the rank range (0.95: the 2.5 % and 97.5 % quantiles).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same input and seed give the same ranges.

    Returns
    -------
    RankRanges

    Notes
    -----
    **What is resampled: items, paired.** Each resample draws the items (rows) with replacement, as many as
    there are, and the *same* draw is used for every model, so models answering the same questions are
    compared on the same questions (a hard question is hard for everyone). A resampled model's rate is the
    ratio ``sum_k c_k passes_k / sum_k c_k scored_k`` (``c_k`` the number of draws of item ``k``), i.e. the
    pass rate over every scored judgment of the drawn items; nan when the draw holds no scored judgment of the
    model.

    **Ranks.** In every resample the models are ranked by their rates with :func:`ranks_with_ties`: 1 + the
    number of models with a strictly higher rate (ties share the better rank; nan ranks last).

    **Interval.** ``low`` and ``high`` are the ``(1 ∓ confidence) / 2`` quantiles of each model's ranks over
    the resamples (``numpy.quantile`` with ``method="lower"`` and ``"higher"``: ranks that occurred, the range
    never narrower than the interpolated one). A model that is best in at least 97.5 % of the resamples gets
    ``low == 1``; one first in every resample ``[1, 1]``. Two models with identical columns get identical
    rates in every resample, hence the same rank and the same range.
    """
    passes = np.asarray(passes, dtype=float)
    scored = np.asarray(scored, dtype=float)
    if passes.ndim != 2 or passes.shape != scored.shape:
        raise ValueError(f"passes and scored must be 2-D arrays of the same shape, got {passes.shape} and "
                         f"{scored.shape}")
    if np.any(passes < 0) or np.any(passes > scored):
        raise ValueError("every entry must have 0 <= passes <= scored")
    _check(n_resamples, confidence)
    return _ratio_ranks(passes, scored, n_resamples=n_resamples, confidence=confidence, seed=seed)[0]


def mean_rank_ranges(totals: np.ndarray, counts: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[RankRanges, np.ndarray, np.ndarray]:
    """Rank each model by a mean score (e.g. the mean overall score), with a bootstrap range of its rank and a
    bootstrap interval of the mean; the same scheme as :func:`rank_ranges`.

    ``totals`` and ``counts`` (shape ``(items, models)``): per item and model, the sum of the scores of the
    model's scored judgments and their number (:func:`score_matrix` builds them). A resampled model's mean is
    ``sum_k c_k totals_k / sum_k c_k counts_k`` over the drawn items (paired across models, as in
    :func:`rank_ranges`); ``RankRanges.rate`` holds the means on the data. Also returns ``(ci_low, ci_high)``:
    the percentile interval (``(1 ∓ confidence) / 2`` quantiles, linear interpolation) of each model's
    resampled mean, nan for a model with nothing scored. With the same ``seed``, the resamples are those of
    :func:`rank_ranges` on the same items."""
    totals = np.asarray(totals, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if totals.ndim != 2 or totals.shape != counts.shape:
        raise ValueError(f"totals and counts must be 2-D arrays of the same shape, got {totals.shape} and "
                         f"{counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(totals)):
        raise ValueError("counts must be >= 0 and totals finite")
    _check(n_resamples, confidence)
    return _ratio_ranks(totals, counts, n_resamples=n_resamples, confidence=confidence, seed=seed)


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")


def _ratio_ranks(num_items: np.ndarray, den_items: np.ndarray, *, n_resamples: int, confidence: float,
                 seed: int) -> tuple[RankRanges, np.ndarray, np.ndarray]:
    """The paired item bootstrap of the pooled ratio sum(num) / sum(den) per model: rank ranges and the
    percentile interval of the ratio (hand-written: no library resamples a ratio of sums jointly across
    columns with one shared draw; checked against a slow loop in tests/test_report_html.py)."""
    k, m = num_items.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = num_items.sum(axis=0) / den_items.sum(axis=0)
    rate = np.where(den_items.sum(axis=0) > 0, rate, np.nan)
    rank = ranks_with_ties(rate)
    if k == 0 or m == 0:
        empty = np.ones(m, dtype=int)
        nan = np.full(m, np.nan)
        return (RankRanges(rate=rate, rank=rank, low=empty, high=empty.copy(), n_resamples=n_resamples,
                           confidence=confidence), nan, nan.copy())
    rng = np.random.default_rng(seed)
    ranks = np.empty((n_resamples, m), dtype=int)
    values = np.empty((n_resamples, m))
    block = max(1, _CHUNK // k)
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        draws = rng.integers(0, k, size=(b, k))
        counts = np.bincount((draws + k * np.arange(b)[:, None]).ravel(), minlength=b * k).reshape(b, k)
        counts = counts.astype(float)
        num, den = counts @ num_items, counts @ den_items
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(den > 0, num / den, np.nan)
        values[start:start + b] = rates
        ranks[start:start + b] = ranks_with_ties(rates)
    alpha = (1 - confidence) / 2
    low = np.quantile(ranks, alpha, axis=0, method="lower").astype(int)
    high = np.quantile(ranks, 1 - alpha, axis=0, method="higher").astype(int)
    with np.errstate(invalid="ignore"):
        ci_low = np.array([np.quantile(v[~np.isnan(v)], alpha) if (~np.isnan(v)).any() else np.nan
                           for v in values.T])
        ci_high = np.array([np.quantile(v[~np.isnan(v)], 1 - alpha) if (~np.isnan(v)).any() else np.nan
                            for v in values.T])
    return (RankRanges(rate=rate, rank=rank, low=low, high=high, n_resamples=n_resamples, confidence=confidence),
            ci_low, ci_high)


def pass_matrix(judgments: Iterable[Judgment], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The input of :func:`rank_ranges` from judgments: ``(passes, scored, item_ids)``, rows the item ids
    (sorted), columns ``models``. Only scored judgments of the listed models count; an item answered under
    several conditions (or judged by several judges) adds all its scored judgments to its cell."""
    col = {name: i for i, name in enumerate(models)}
    kept = [j for j in judgments if j.model in col and j.status == "scored"]
    ids = sorted({j.id for j in kept})
    row = {i: n for n, i in enumerate(ids)}
    passes = np.zeros((len(ids), len(models)))
    scored = np.zeros((len(ids), len(models)))
    for j in kept:
        scored[row[j.id], col[j.model]] += 1
        passes[row[j.id], col[j.model]] += bool(j.passed)
    return passes, scored, ids


def score_matrix(judgments: Iterable[Judgment], models: Sequence[str], item_ids: Sequence[str]) -> tuple[np.ndarray,
                                                                                                        np.ndarray]:
    """The input of :func:`mean_rank_ranges` for the overall score: ``(totals, counts)`` per item (rows
    ``item_ids``, e.g. those of :func:`pass_matrix`) and model: the sum of the scored judgments' ``overall`` and
    their number (a scored judgment without an overall counts in neither)."""
    col = {name: i for i, name in enumerate(models)}
    row = {i: n for n, i in enumerate(item_ids)}
    totals = np.zeros((len(item_ids), len(models)))
    counts = np.zeros((len(item_ids), len(models)))
    for j in judgments:
        if j.model in col and j.status == "scored" and j.overall is not None and j.id in row:
            totals[row[j.id], col[j.model]] += j.overall
            counts[row[j.id], col[j.model]] += 1
    return totals, counts
