"""Low-level helpers shared by the modules of :mod:`judgekit.stats.agreement`: conversion and validation of
ratings, group labels and options, rounding, row means, and the names of the rating kinds and correlation
options. It imports no other module of the package; every other module may import it.

Conventions enforced here (they hold for the whole package)
-----------------------------------------------------------
- A **ratings matrix** is ``items x raters`` (rows are items, columns are raters), converted to float; ``NaN``
  marks a missing rating (:func:`_matrix`).
- **Paired** inputs are two 1-D arrays of equal length (:func:`_pair`); the mask it returns marks the pairs where
  neither side is ``NaN``.
- **Validation**: a wrong shape, unequal lengths, an infinite value, an unknown option raise a ``ValueError``
  that names the argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Kind = Literal["ordinal", "continuous", "binary"]
CorrLevel = Literal["sample", "summary", "system"]
CorrMethod = Literal["pearson", "spearman", "kendall"]


_SLACK = 1e-9  # tolerance comparisons |a - b| <= tol + slack: means of integers are not exact in binary


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
