"""Agreement of many raters: :func:`fleiss_kappa` (nominal categories) and :func:`krippendorff_alpha`
(nominal, ordinal, interval, ratio).

Conventions: the input is a ratings matrix ``items x raters`` with ``NaN`` for a missing rating (Krippendorff's
own layout, raters x units, is used only inside :func:`krippendorff_alpha`). Only items with at least two
ratings carry information. An undefined statistic is ``nan`` (no item with two ratings; Fleiss' kappa when
every rating is in one category) with one exception, the convention of its anchor: Krippendorff's alpha is 1.0
when every pairable value is identical (as Inspect AI's ``krippendorff_alpha``).

Library or hand-written: Fleiss' kappa is hand-written (scipy has none; statsmodels, not a dependency, assumes
the same number of raters per item), checked against Fleiss (1971) and a worked example; Krippendorff's alpha is
the ``krippendorff`` package's, with closed forms (tested equal to it) only where the package's units x
values**2 array would not fit in memory.

References
----------
- Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychol. Bull. 76(5).
- Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from judgekit.stats.agreement._common import _check_choice, _matrix, _resolve_labels

_KRIPP_DENSE = 5_000_000  # the krippendorff package holds units x values**2 floats: above this, closed forms


def _category_counts(mat: np.ndarray, labels: Sequence[float]) -> np.ndarray:
    """(n_items, n_labels) counts of each label per row; ValueError for a rating that is not a label."""
    lab = np.asarray(labels, dtype=float)
    vals = mat[~np.isnan(mat)]
    bad = ~np.isin(vals, lab)
    if bad.any():
        raise ValueError(f"rating {vals[bad][0]!r} is not among labels {lab.tolist()!r}")
    return (mat[:, :, None] == lab[None, None, :]).sum(axis=1).astype(float)


def _fleiss_parts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item ratings ``m_i`` and agreement ``P_i = sum_j n_ij (n_ij - 1) / (m_i (m_i - 1))`` (0 if m_i < 2)."""
    m = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(m >= 2, (counts * (counts - 1)).sum(axis=1) / (m * (m - 1)), 0.0)
    return m, p


def _fleiss_finish(n_items: np.ndarray, sum_p: np.ndarray, sum_m: np.ndarray, sum_counts: np.ndarray) -> np.ndarray:
    """kappa = (P_bar - P_e) / (1 - P_e) from summed parts (vectorised over rows)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = sum_p / n_items
        p_j = sum_counts / sum_m[:, None]
        p_e = (p_j**2).sum(axis=1)
        out = (p_bar - p_e) / (1.0 - p_e)
    return np.where((n_items > 0) & (1.0 - p_e > 1e-12), out, np.nan)


# Hand-written: scipy has none; statsmodels' fleiss_kappa (not a dependency) needs equal raters per item.
def fleiss_kappa(ratings: Any, *, labels: Sequence[float] | None = None) -> float:
    """Fleiss' kappa of many raters on nominal categories (Fleiss 1971).

    With ``n_ij`` the number of ratings of item ``i`` in category ``j`` and ``m_i = sum_j n_ij``::

        P_i   = sum_j n_ij (n_ij - 1) / (m_i (m_i - 1))       agreement among the ratings of item i
        P_bar = mean of P_i over the items with m_i >= 2
        p_j   = sum_i n_ij / sum_i m_i                       share of all ratings in category j
        P_e   = sum_j p_j**2
        kappa = (P_bar - P_e) / (1 - P_e)

    Fleiss assumes the same number of ratings per item. Here missing ratings (NaN) are allowed and the formula
    above is used as written — the usual generalisation: each item's agreement is averaged **unweighted** over
    items, the category shares pool all ratings. With a constant ``m_i`` it is exactly Fleiss (1971). Items with
    fewer than 2 ratings carry no agreement information and are skipped (their ratings are not counted in
    ``p_j`` either). Raters are exchangeable: permuting columns (or rows) leaves kappa unchanged.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_raters)
        Category labels (numbers), NaN missing.
    labels : sequence of numbers, optional
        The category set; default the sorted distinct ratings. A rating outside it is a ``ValueError``.

    Returns
    -------
    float
        nan when no item has two ratings or when every rating falls in one category (``P_e = 1``).

    Examples
    --------
    >>> round(fleiss_kappa([[1, 1, 1], [2, 2, 2], [1, 2, 2], [3, 3, 3]]), 4)  # (5/6 - 50/144) / (1 - 50/144)
    0.7447
    """
    mat = _matrix(ratings)
    vals = np.unique(mat[~np.isnan(mat)])
    labs = vals.tolist() if labels is None else _resolve_labels([], labels)
    if not labs:
        return math.nan
    counts = _category_counts(mat, labs)
    m, p = _fleiss_parts(counts)
    keep = m >= 2
    if not keep.any():
        return math.nan
    out = _fleiss_finish(np.array([keep.sum()], float), np.array([p[keep].sum()]), np.array([m[keep].sum()]),
                         counts[keep].sum(axis=0)[None, :])
    return float(out[0])


def krippendorff_alpha(ratings: Any, *, level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
                       ) -> float:
    """Krippendorff's alpha of an items x raters matrix with missing values (Krippendorff 2011).

    ``alpha = 1 - D_o / D_e``: observed disagreement within items over the disagreement expected from all
    pairable values, with the distance of the ``level``:

    - ``"nominal"``: categories without order (labels, yes/no). For two raters and no missing data it is close to
      Scott's pi.
    - ``"ordinal"``: ranked categories — Likert-style ratings (1-5 scores): distances count how many values lie
      between two ratings, so unequal spacing of the scale does not matter.
    - ``"interval"``: numbers with meaningful differences (squared difference): scores averaged over raters,
      probabilities.
    - ``"ratio"``: numbers with a true zero (squared relative difference ``((c - k) / (c + k))**2``).

    The point estimate is computed by the ``krippendorff`` package (``alpha(reliability_data=...,
    level_of_measurement=...)``) on the transposed matrix (its layout is raters x units). That package holds
    arrays of units x values x values; when that exceeds 5 million entries (continuous scores with thousands of
    distinct values) the same definition is computed in closed form instead (interval from sums of squares,
    ordinal as interval on the mid-ranks of the values, nominal from value counts, ratio pairwise; tested equal
    to the package). Only items with at least two ratings ("pairable" units) carry information.

    Edge cases (defined here, not by the package): nan when no item has two ratings; 1.0 when every pairable
    rating is the same value (perfect agreement, as Inspect AI; the package would raise). A ``UserWarning`` is
    issued when ``level="nominal"`` is used on numeric data with non-integer values or more than 10 distinct
    values — such data are scores, for which ``"ordinal"`` or ``"interval"`` is the right choice.

    Examples
    --------
    >>> nan = float("nan")
    >>> round(krippendorff_alpha([[1, 1], [2, 2], [3, 3], [4, 3], [nan, 2]], level="ordinal"), 3)
    0.91
    """
    _check_choice(level, "level", ("nominal", "ordinal", "interval", "ratio"))
    mat = _matrix(ratings)
    m = (~np.isnan(mat)).sum(axis=1)
    pair = mat[m >= 2]
    vals = pair[~np.isnan(pair)]
    if vals.size == 0:
        return math.nan
    if level == "nominal":
        distinct = np.unique(vals)
        if distinct.size > 10 or np.any(distinct != np.round(distinct)):
            warnings.warn(
                f"krippendorff_alpha: level='nominal' treats the {distinct.size} distinct numeric values as "
                "unordered categories; for scores use level='ordinal' (Likert-style) or 'interval'.",
                UserWarning, stacklevel=2)
    if np.all(vals == vals[0]):
        return 1.0
    if level == "ratio" and np.any(vals < 0):
        raise ValueError("level='ratio' needs non-negative values")
    n_values = np.unique(vals).size
    if pair.shape[0] * n_values**2 > _KRIPP_DENSE:
        return _alpha_closed_form(pair, level)
    import krippendorff

    return float(krippendorff.alpha(reliability_data=pair.T, level_of_measurement=level))


# Hand-written: the krippendorff package's units x values**2 array does not fit for many distinct values.
def _alpha_closed_form(pair: np.ndarray, level: str) -> float:
    """Krippendorff's alpha of the pairable units ``pair`` (items x raters, every row >= 2 values, not all values
    equal) without a values x values matrix.

    ``alpha = 1 - (n - 1) sum_u P_u / (m_u - 1) / P_all`` where ``P_u`` sums the distance over the ordered pairs
    of values within unit ``u`` and ``P_all`` over all ordered pairs of the ``n`` pairable values. interval:
    ``P = 2 m S2 - 2 S1**2`` from sums and sums of squares; ordinal: the same on the mid-ranks
    ``B_v = (number of values <= v) - n_v / 2`` (the ordinal distance of two values is the squared difference
    of their mid-ranks); nominal: ``P = m**2 - sum_c v_c**2``; ratio: pairwise, the pooled sum in chunks.
    """
    m = (~np.isnan(pair)).sum(axis=1).astype(float)
    vals = pair[~np.isnan(pair)]
    n = float(vals.size)
    if level == "nominal":
        eq = (pair[:, :, None] == pair[:, None, :]).sum(axis=(1, 2))  # sum_c v_uc**2 (NaN equals nothing)
        counts = np.unique(vals, return_counts=True)[1].astype(float)
        return float(1.0 - (n - 1) * np.sum((m**2 - eq) / (m - 1)) / (n**2 - np.sum(counts**2)))
    if level == "ratio":
        a, b = pair[:, :, None], pair[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where((a + b) != 0, ((a - b) / (a + b)) ** 2, 0.0)
        within = np.nansum(d, axis=(1, 2))
        uniq, counts = np.unique(vals, return_counts=True)
        total = 0.0
        step = max(1, (1 << 22) // uniq.size)
        for start in range(0, uniq.size, step):
            u, c = uniq[start:start + step, None], counts[start:start + step, None].astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                dd = np.where((u + uniq) != 0, ((u - uniq) / (u + uniq)) ** 2, 0.0)
            total += float((c * counts * dd).sum())
        return float(1.0 - (n - 1) * np.sum(within / (m - 1)) / total)
    x = pair
    if level == "ordinal":
        uniq, counts = np.unique(vals, return_counts=True)
        mid = np.cumsum(counts) - counts / 2.0
        x = np.where(np.isnan(pair), np.nan, mid[np.searchsorted(uniq, np.where(np.isnan(pair), uniq[0], pair))])
    c = x - np.nanmean(x)
    s1, s2 = np.nansum(c, axis=1), np.nansum(c * c, axis=1)
    t1, t2 = s1.sum(), s2.sum()
    return float(1.0 - (n - 1) * np.sum((2 * m * s2 - 2 * s1**2) / (m - 1)) / (2 * n * t2 - 2 * t1**2))
