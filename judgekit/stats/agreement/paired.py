"""Paired agreement of two raters: :func:`percent_agreement` (exact or within a tolerance),
:func:`pass_agreement`, :func:`cohen_kappa` (unweighted, linear, quadratic; the definition of scikit-learn's
``cohen_kappa_score``).

Conventions: each function takes two 1-D arrays of equal length and first drops every pair where either side
is missing (``NaN``; for Cohen's kappa on text labels also ``None``); it returns ``nan`` when no pair is left,
or when the statistic is undefined on the pairs left (a kappa whose expected disagreement is 0). A value
outside ``labels`` is a ``ValueError``.

References
----------
- Cohen, J. (1960). A coefficient of agreement for nominal scales. Educ. Psychol. Meas. 20(1).
- Cohen, J. (1968). Weighted kappa. Psychol. Bull. 70(4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from judgekit.stats.agreement._common import _SLACK, _check_choice, _pair, _resolve_labels


# Hand-written (a mean of |a - b| <= tolerance): scipy has no agreement share; scikit-learn is not a dependency.
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


# Hand-written (a mean of equal pass/fail calls): scipy has no agreement share.
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


# Hand-written: scipy has no Cohen's kappa; scikit-learn's cohen_kappa_score (same definition) is not a dependency.
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
