"""Agreement between a judge and people, and among people: pure functions, arrays in, numbers out.

What is here
------------
- Paired agreement: :func:`percent_agreement` (exact or within a tolerance), :func:`pass_agreement`,
  :func:`cohen_kappa` (unweighted, linear, quadratic; the definition of scikit-learn's ``cohen_kappa_score``).
- Many raters: :func:`fleiss_kappa`, :func:`krippendorff_alpha` (nominal, ordinal, interval, ratio),
  :func:`icc` (Shrout & Fleiss / McGraw & Wong forms).
- Correlations at three levels, :func:`correlation`: ``sample`` (all pairs pooled), ``summary`` (within each
  group, e.g. each source document, then averaged: G-Eval's convention) and ``system`` (per-system means).
- :func:`bootstrap_ci`: percentile or BCa intervals, resampling items or whole groups (cluster bootstrap).
- :func:`inter_human_ceiling`: how far each person agrees with the others (leave one rater out), averaged —
  the ceiling a judge can be compared with — and the judge against the same references.
- :func:`agreement_report`: the entry point the CLI calls; every statistic that fits the kind of rating, each
  with a bootstrap interval, in an :class:`AgreementReport`.

Conventions (the whole module)
------------------------------
- A **ratings matrix** is ``items x raters`` (rows are items, columns are raters), converted to float; ``NaN``
  marks a missing rating. Krippendorff's own layout (raters x units) is used only inside
  :func:`krippendorff_alpha`.
- **Paired functions** take two 1-D arrays of equal length and first drop every pair where either side is
  ``NaN``; they return ``nan`` when no pair is left.
- **Validation**: a wrong shape, unequal lengths, an infinite value, a value outside ``labels``, an unknown option
  raise a ``ValueError`` that names the argument. A statistic that is *undefined* on valid input (no pair, no
  variation where the formula divides by it) is ``nan``, never an exception, so a report never crashes on a
  degenerate subset. Exceptions to "undefined is nan", each the convention of the function's anchor:
  Krippendorff's alpha is 1.0 when every pairable value is identical (as Inspect AI's ``krippendorff_alpha``).
- **Human reference** (the "consensus" a judge is compared with): the mean of the available human ratings of an
  item; where a category is needed (exact agreement, Cohen's kappa on an ordinal scale) that mean rounded half
  up (2.5 -> 3); for binary ratings the mode (majority), ties broken toward the smallest value (0), as
  ``scipy.stats.mode``.
- **Resampling**: every bootstrap resample is a vector of integer weights on the items (how often each item was
  drawn). Statistics are computed from those weights in closed form (matrix products of per-item contributions,
  cumulative sums of weights in a fixed sort order, a merge-sort count for Kendall's tau), so a whole report with
  1,000 resamples of 10,000 items x 5 raters takes about 0.3 s for ordinal ratings and about 1 s for continuous
  scores (whose rank correlations need an exact re-ranking per resample) on 2 cores; each weighted form equals
  the statistic recomputed on the explicitly duplicated sample (tested).

References
----------
- Cohen, J. (1960). A coefficient of agreement for nominal scales. Educ. Psychol. Meas. 20(1).
- Cohen, J. (1968). Weighted kappa. Psychol. Bull. 70(4).
- Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychol. Bull. 76(5).
- Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication.
- Shrout, P. E. & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater reliability.
  Psychol. Bull. 86(2).
- McGraw, K. O. & Wong, S. P. (1996). Forming inferences about some intraclass correlation coefficients.
  Psychol. Methods 1(1).
- Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 14 (BCa). Chapman & Hall.
- Liu, Y. et al. (2023). G-Eval: NLG evaluation using GPT-4 with better human alignment (summary-level
  correlation).
- Dubois, Y. et al. (2023). AlpacaFarm / AlpacaEval ("human agreement": leave-one-out mode accuracy).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = [
    "AgreementEntry",
    "AgreementReport",
    "CeilingRater",
    "CeilingResult",
    "CorrelationResult",
    "agreement_report",
    "bootstrap_ci",
    "cohen_kappa",
    "correlation",
    "fleiss_kappa",
    "icc",
    "inter_human_ceiling",
    "krippendorff_alpha",
    "pass_agreement",
    "percent_agreement",
]

Kind = Literal["ordinal", "continuous", "binary"]
CorrLevel = Literal["sample", "summary", "system"]
CorrMethod = Literal["pearson", "spearman", "kendall"]

_SLACK = 1e-9  # tolerance comparisons |a - b| <= tol + slack: means of integers are not exact in binary
_CHUNK = 1 << 24  # at most this many resampled indices are drawn at once
_JACK_EXACT = 1000  # leave-one-out jackknife up to this many resampling units, else _JACK_BLOCKS blocks
_JACK_BLOCKS = 100
_MAX_NAN_SHARE = 0.1  # bootstrap intervals drop undefined resamples only while they are at most this share
_TABLE_CELLS = 256  # rank correlations from a contingency table when (#x values) * (#y values) <= this
_PAIRS_VECTOR = 5_000_000  # summary-level Kendall: all within-group pairs at once up to this many pairs
_ROWS = 32  # resamples processed together by the merge-sort Kendall and the re-ranking Spearman
_DENSE_CELLS = 256  # one-hot / coincidence features wider than this are held sparse
_KRIPP_DENSE = 5_000_000  # the krippendorff package holds units x values**2 floats: above this, closed forms


# ============================================================================================ validation


def _as_float(a: Any, name: str, ndim: int, shape_text: str) -> np.ndarray:
    """``a`` as a float array of ``ndim`` dimensions (NaN = missing); ValueError for another shape, text or
    infinities."""
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers (NaN for missing): {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {shape_text}, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr


def _vector(a: Any, name: str) -> np.ndarray:
    """``a`` as a 1-D float array (NaN = missing)."""
    return _as_float(a, name, 1, "1-D")


def _matrix(ratings: Any, name: str = "ratings") -> np.ndarray:
    """``ratings`` as an items x raters float matrix (NaN = missing)."""
    return _as_float(ratings, name, 2, "a 2-D items x raters matrix")


def _pair(a: Any, b: Any, names: tuple[str, str] = ("a", "b")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both vectors, checked for equal length, and the mask of pairs where neither is NaN."""
    x, y = _vector(a, names[0]), _vector(b, names[1])
    if x.shape != y.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length, got {x.size} and {y.size}")
    return x, y, ~(np.isnan(x) | np.isnan(y))


def _labels_vector(values: Any, n: int, name: str) -> np.ndarray:
    """Group or system labels: a 1-D array of length ``n`` without missing labels."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(f"{name} must be 1-D with one label per item ({n}), got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN labels")
    if arr.dtype.kind == "O" and any(v is None for v in arr):
        raise ValueError(f"{name} contains None labels")
    return arr


def _codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 of the labels (sorted label order) and G."""
    uniq, inv = np.unique(labels, return_inverse=True)
    return inv.ravel().astype(np.int64), int(uniq.size)


def _check_choice(value: Any, name: str, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves upward (2.5 -> 3); NaN stays NaN."""
    return np.floor(x + 0.5)


def _nanmean_rows(parts: np.ndarray) -> np.ndarray:
    """Mean of the finite values of each row of ``parts`` (m, p); nan for a row without one."""
    ok = np.isfinite(parts)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, parts, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


# ================================================================================== paired agreement


def percent_agreement(a: Any, b: Any, *, tolerance: float = 0.0) -> float:
    """Share of items on which two raters agree within ``tolerance``.

    ``mean(|a_i - b_i| <= tolerance)`` over the pairs where neither is NaN. ``tolerance=0`` is exact agreement;
    ``tolerance=1`` on a 1-5 scale is the usual "within +/-1" (adjacent) agreement. A slack of 1e-9 is added to
    the tolerance so that means of integer ratings compare as intended (``|3.5 - 3| <= 0.5``).

    Returns nan when no pair is left. ``ValueError`` for unequal lengths or a negative tolerance.

    Examples
    --------
    >>> percent_agreement([1, 2, 3, 4], [1, 3, 3, float("nan")])
    0.6666666666666666
    >>> percent_agreement([1, 2, 3, 4], [1, 3, 3, 5], tolerance=1)
    1.0
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    x, y, ok = _pair(a, b)
    if not ok.any():
        return math.nan
    return float(np.mean(np.abs(x[ok] - y[ok]) <= tolerance + _SLACK))


def pass_agreement(a: Any, b: Any, *, threshold: float) -> float:
    """Share of items on which two raters make the same pass/fail call: ``mean((a >= t) == (b >= t))``.

    Pairs with a NaN are dropped; nan when none is left. With ``threshold=3`` on a 1-5 scale this is agreement on
    "passable" (RobustMAD's pass rule, overall >= 3).

    Examples
    --------
    >>> pass_agreement([1, 3, 5, 2], [2, 4, 2, 3], threshold=3)
    0.5
    """
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    x, y, ok = _pair(a, b)
    if not ok.any():
        return math.nan
    return float(np.mean((x[ok] >= threshold) == (y[ok] >= threshold)))


def _categorical_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two label vectors with the missing pairs dropped (numbers: NaN missing; text/objects: None or NaN)."""
    xa, xb = np.asarray(a), np.asarray(b)
    if xa.ndim != 1 or xb.ndim != 1:
        raise ValueError(f"a and b must be 1-D, got shapes {xa.shape} and {xb.shape}")
    if xa.size != xb.size:
        raise ValueError(f"a and b must have the same length, got {xa.size} and {xb.size}")
    numeric = xa.dtype.kind in "biuf" and xb.dtype.kind in "biuf"
    if numeric:
        x, y, ok = _pair(xa, xb)
        return x[ok], y[ok]

    def missing(v: np.ndarray) -> np.ndarray:
        return np.array([e is None or (isinstance(e, float) and math.isnan(e)) for e in v.tolist()], dtype=bool)

    ok = ~(missing(xa) | missing(xb))
    return xa[ok].astype(object), xb[ok].astype(object)


def _label_index(values: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """Position of each value in ``labels``; ValueError for a value that is not a label."""
    pos = {lab: i for i, lab in enumerate(labels)}
    try:
        return np.fromiter((pos[v] for v in values.tolist()), dtype=np.int64, count=values.size)
    except KeyError as exc:
        raise ValueError(f"value {exc.args[0]!r} is not among labels {list(labels)!r}") from None


def _resolve_labels(values: Sequence[np.ndarray], labels: Any) -> list[Any]:
    """``labels`` as a list of distinct labels, or the sorted union of the values when None."""
    if labels is None:
        union = np.concatenate([np.asarray(v) for v in values]) if values else np.array([])
        return np.unique(union).tolist() if union.size else []
    labs = list(np.asarray(labels).tolist())
    if len(set(labs)) != len(labs):
        raise ValueError(f"labels must be distinct, got {labs!r}")
    if not labs:
        raise ValueError("labels must not be empty")
    return labs


def _kappa_weight_matrix(n_labels: int, weights: str | None) -> np.ndarray:
    """Disagreement weights on label positions: unweighted 1 - I, linear |i - j|, quadratic (i - j)**2."""
    i = np.arange(n_labels)
    d = np.abs(i[:, None] - i[None, :]).astype(float)
    if weights is None:
        return (d > 0).astype(float)
    return d if weights == "linear" else d**2


def _kappa_from_confusion(conf: np.ndarray, wmat: np.ndarray) -> np.ndarray:
    """``1 - sum(w * O) / sum(w * E)`` with ``E = outer(row sums, column sums) / total``, for (m, V, V) tables."""
    tot = conf.sum(axis=(1, 2))
    rows, cols = conf.sum(axis=2), conf.sum(axis=1)
    num = np.einsum("ij,mij->m", wmat, conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.einsum("ij,mi,mj->m", wmat, rows, cols) / tot
        out = 1.0 - num / den
    return np.where((tot > 0) & (den > 0), out, np.nan)


def cohen_kappa(a: Any, b: Any, *, weights: Literal["linear", "quadratic"] | None = None,
                labels: Sequence[Any] | None = None) -> float:
    """Cohen's kappa of two raters, optionally weighted (Cohen 1960, 1968).

    The definition of scikit-learn's ``cohen_kappa_score``::

        kappa = 1 - sum_ij w_ij O_ij / sum_ij w_ij E_ij,    E = outer(row sums of O, column sums of O) / n

    where ``O`` is the confusion matrix over ``labels`` and ``w`` the disagreement weights on label *positions*
    ``i, j`` in ``labels``: unweighted ``w = [i != j]`` (then ``kappa = (p_o - p_e) / (1 - p_e)``), ``"linear"``
    ``|i - j|``, ``"quadratic"`` ``(i - j)**2``. Quadratic weights are the standard for ordinal scores (they make
    kappa close to an intraclass correlation); give ``labels`` the whole scale (e.g. ``range(1, 6)``) so that
    positions equal scale steps even when a rating is never used.

    Parameters
    ----------
    a, b : array-like of shape (n,)
        Labels of the two raters: numbers (NaN missing) or text/objects (None missing). Pairs with a missing
        side are dropped. Symmetric: swapping ``a`` and ``b`` gives the same value.
    weights : None, "linear" or "quadratic"
    labels : sequence, optional
        The category set, in order; default the sorted union of the labels used. A value outside ``labels`` is
        a ``ValueError`` (scikit-learn silently drops it).

    Returns
    -------
    float
        In [-1, 1]; nan when no pair is left or the expected disagreement is 0 (both raters always give the one
        same label), as scikit-learn.

    Examples
    --------
    >>> y1 = ["negative", "positive", "negative", "neutral", "positive"]
    >>> y2 = ["negative", "positive", "negative", "neutral", "negative"]
    >>> cohen_kappa(y1, y2)
    0.6875
    >>> round(cohen_kappa([1, 2, 3, 4, 5], [1, 2, 4, 4, 5], weights="quadratic", labels=range(1, 6)), 4)
    0.9524
    """
    _check_choice(weights, "weights", (None, "linear", "quadratic"))
    x, y = _categorical_pair(a, b)
    labs = _resolve_labels([x, y], labels)
    if x.size == 0:
        return math.nan
    ix, iy = _label_index(x, labs), _label_index(y, labs)
    v = len(labs)
    conf = np.bincount(ix * v + iy, minlength=v * v).reshape(1, v, v).astype(float)
    return float(_kappa_from_confusion(conf, _kappa_weight_matrix(v, weights))[0])


# ======================================================================================= many raters


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


def _icc_from_ms(msr: np.ndarray, msc: np.ndarray, mse: np.ndarray, msw: np.ndarray, n: np.ndarray, k: int,
                 kind: str, unit: str) -> np.ndarray:
    """ICC from the two-way ANOVA mean squares (vectorised)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "oneway":
            out = (msr - msw) / (msr + (k - 1) * msw) if unit == "single" else (msr - msw) / msr
        elif kind == "consistency":
            out = (msr - mse) / (msr + (k - 1) * mse) if unit == "single" else (msr - mse) / msr
        elif unit == "single":
            out = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        else:
            out = (msr - mse) / (msr + (msc - mse) / n)
    return np.where(np.isfinite(out) & (n >= 2), out, np.nan)


def _icc_from_sums(s: np.ndarray, k: int, kind: str, unit: str) -> np.ndarray:
    """ICC from weighted sums ``[n, sum r, sum r**2, sum x_1..x_k, sum x**2]`` of complete rows (r = row mean)."""
    n = s[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        g = s[:, 1] / n
        ssr = k * (s[:, 2] - n * g**2)
        cols = s[:, 3:3 + k] / n[:, None]
        ssc = n * ((cols - g[:, None]) ** 2).sum(axis=1)
        sst = s[:, 3 + k] - n * k * g**2
        sse = sst - ssr - ssc
        msr = ssr / (n - 1)
        msc = ssc / (k - 1)
        mse = sse / ((n - 1) * (k - 1))
        msw = (ssc + sse) / (n * (k - 1))
    return _icc_from_ms(msr, msc, mse, msw, n, k, kind, unit)


def _icc_features(complete: np.ndarray) -> np.ndarray:
    """Per-row ``[1, r, r**2, x_1..x_k, sum_j x_j**2]`` of the complete rows, centred at their grand mean."""
    c = complete - complete.mean()
    r = c.mean(axis=1)
    return np.column_stack([np.ones(len(c)), r, r**2, c, (c**2).sum(axis=1)])


def icc(ratings: Any, *, kind: Literal["agreement", "consistency", "oneway"] = "agreement",
        unit: Literal["single", "average"] = "single") -> float:
    """Intraclass correlation of an items x raters matrix (Shrout & Fleiss 1979; McGraw & Wong 1996 names).

    Two-way ANOVA of the ``n`` complete items (targets) by ``k`` raters: ``MSR`` between items, ``MSC`` between
    raters, ``MSE`` residual, ``MSW = (SSC + SSE) / (n (k - 1))`` within items.

    ============================  ===================  =========================================================
    ``kind``, ``unit``            name                 formula
    ============================  ===================  =========================================================
    ``"agreement"``, single       ICC(A,1) = ICC(2,1)  (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)
    ``"agreement"``, average      ICC(A,k) = ICC(2,k)  (MSR - MSE) / (MSR + (MSC - MSE) / n)
    ``"consistency"``, single     ICC(C,1) = ICC(3,1)  (MSR - MSE) / (MSR + (k-1) MSE)
    ``"consistency"``, average    ICC(C,k) = ICC(3,k)  (MSR - MSE) / MSR
    ``"oneway"``, single          ICC(1)   = ICC(1,1)  (MSR - MSW) / (MSR + (k-1) MSW)
    ``"oneway"``, average         ICC(k)   = ICC(1,k)  (MSR - MSW) / MSR
    ============================  ===================  =========================================================

    Absolute agreement (two-way random raters) counts a rater who scores everything one point higher as
    disagreeing; consistency (two-way mixed) does not. ``"average"`` is the reliability of the mean of the ``k``
    raters. Only **complete rows** (no NaN) are used; the matrix needs at least two raters (``ValueError``).

    Returns nan with fewer than 2 complete rows or when the formula divides by 0 (no variance at all).

    Examples
    --------
    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> round(icc(sf, kind="agreement"), 2), round(icc(sf, kind="consistency"), 2)
    (0.29, 0.71)
    """
    _check_choice(kind, "kind", ("agreement", "consistency", "oneway"))
    _check_choice(unit, "unit", ("single", "average"))
    mat = _matrix(ratings)
    k = mat.shape[1]
    if k < 2:
        raise ValueError(f"icc needs at least 2 raters (columns), got {k}")
    complete = mat[~np.isnan(mat).any(axis=1)]
    if len(complete) < 2:
        return math.nan
    sums = _icc_features(complete).sum(axis=0)[None, :]
    return float(_icc_from_sums(sums, k, kind, unit)[0])


# ====================================================================================== correlations


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


# ============================================================================ weighted (resampled) forms
#
# A bootstrap resample is a vector of integer weights on the items (how many times each was drawn). Each
# statistic below is rebuilt as a function of an (m, n) weight matrix -> (m,) values. _Linear statistics need
# only ``W @ F`` for per-item contributions F (n, k), so all of them share one matrix product per block of
# resamples; _Direct ones work on W itself (rank statistics with many distinct values, summary level).


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


def _w_agree(a: np.ndarray, b: np.ndarray, valid: np.ndarray, tolerance: float) -> _Linear:
    """Share of valid items with |a - b| <= tolerance."""
    ok = valid & ~(np.isnan(a) | np.isnan(b))
    hit = ok & (np.abs(np.where(ok, a - b, 0.0)) <= tolerance + _SLACK)
    return _Linear(np.column_stack([ok, hit]).astype(float), _ratio_finish)


def _w_pass(a: np.ndarray, b: np.ndarray, valid: np.ndarray, threshold: float) -> _Linear:
    ok = valid & ~(np.isnan(a) | np.isnan(b))
    same = ok & ((np.where(ok, a, 0) >= threshold) == (np.where(ok, b, 0) >= threshold))
    return _Linear(np.column_stack([ok, same]).astype(float), _ratio_finish)


def _ratio_finish(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s[:, 0] > 0, s[:, 1] / s[:, 0], np.nan)


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


# ========================================================================================= bootstrap


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


# =============================================================================== inter-human ceiling


def _row_mean(mat: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN values of each row; NaN for a row without one."""
    cnt = (~np.isnan(mat)).sum(axis=1)
    tot = np.where(np.isnan(mat), 0.0, mat).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)


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


# ============================================================================================ report


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
