"""Intraclass correlation, :func:`icc`: the Shrout & Fleiss (1979) forms under McGraw & Wong's (1996) names.

Conventions: the input is a ratings matrix ``items x raters``; only complete rows (no ``NaN``) are used, and
the matrix needs at least two raters. The value comes from the two-way ANOVA mean squares, computed from
per-row sums (:func:`_icc_features`) so that the bootstrap's weighted form (``weighted._w_icc``) shares the same
arithmetic. Hand-written: scipy has no ICC, and pingouin (which has) is not a dependency; the values are checked
against the published Shrout & Fleiss (1979) table.

References
----------
- Shrout, P. E. & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater reliability.
  Psychol. Bull. 86(2).
- McGraw, K. O. & Wong, S. P. (1996). Forming inferences about some intraclass correlation coefficients.
  Psychol. Methods 1(1).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from judgekit.stats.agreement._common import _check_choice, _matrix


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


# Hand-written: scipy has no intraclass correlation; pingouin (which has) is not a dependency.
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
