"""Multiple-comparison control for the tables that show several tests at once (robustness, compare, the HTML
report's breakdowns, the MCQ settings' gains, the bias probes: :func:`judgekit.stats.probes.correct_probes`).

Conventions:

- ``"holm"`` (the default everywhere): Holm-Bonferroni step-down adjustment, which controls the
  *family-wise error rate* (the chance of even one false positive among the family) at ``alpha``, under any
  dependence between the tests;
- ``"bh"``: Benjamini-Hochberg step-up adjustment, which controls the *false discovery rate* (the expected
  share of false positives among the tests called significant) at ``alpha``, for independent or positively
  dependent tests; it is less conservative than Holm (:func:`scipy.stats.false_discovery_control`);
- ``"none"``: no adjustment; the adjusted p-value is the raw one;
- the *family* is the set of tests adjusted together; each table states its family and size
  (:func:`family_text`). A p-value that is nan (no test was run) is left out of the family (it does not
  count in its size) and its adjusted value stays nan;
- adjusted p-values are capped at 1 and monotone in the raw ones (a smaller raw p never gets a larger
  adjusted p); a table marks a test significant when its adjusted p-value is below :data:`ALPHA`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ALPHA", "CORRECTIONS", "adjust_pvalues", "check_correction", "correct_rows", "correction_label",
           "family_text", "is_significant"]

#: The corrections offered (``--correction``).
CORRECTIONS = ("holm", "bh", "none")
#: The level the tables' stars are drawn at (on the adjusted p-values).
ALPHA = 0.05

_LABELS = {"holm": "Holm-Bonferroni (family-wise error rate)", "bh": "Benjamini-Hochberg (false discovery rate)",
           "none": "no correction"}


def check_correction(method: Any) -> str:
    """``method`` lower-cased when it is one of :data:`CORRECTIONS`, else ``ValueError`` naming them."""
    m = method.lower() if isinstance(method, str) else method
    if m not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    return m


def correction_label(method: str) -> str:
    """The correction in words, e.g. ``"Holm-Bonferroni (family-wise error rate)"``."""
    return _LABELS[check_correction(method)]


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    import numpy as np  # here, not at the top: check_correction runs at every judge command's start

    order = np.argsort(p, kind="mergesort")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust_pvalues(p: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values of the family ``p`` (same order and length), by ``method`` (``"holm"``, ``"bh"`` or
    ``"none"``; see the module docstring).

    nan entries are left out of the family and stay nan; the others are adjusted together (family size = the
    number of non-nan entries). Holm: the i-th smallest of m p-values becomes ``max_{j<=i} min(1, (m-j+1) p_(j))``
    (step-down, monotone, capped at 1), as ``statsmodels.stats.multitest.multipletests(method="holm")``. BH:
    ``scipy.stats.false_discovery_control(method="bh")``, i.e. ``min_{j>=i} min(1, m p_(j) / j)``. Raises
    ``ValueError`` for an unknown method or a p-value outside [0, 1].
    """
    method = check_correction(method)
    import numpy as np

    arr = np.asarray(p, dtype=float).reshape(-1)
    out = np.full(arr.shape, math.nan)
    ok = ~np.isnan(arr)
    vals = arr[ok]
    if np.any((vals < 0) | (vals > 1)):
        raise ValueError("p-values must lie within [0, 1]")
    if vals.size == 0:
        return out
    if method == "none":
        out[ok] = vals
    elif method == "holm":
        out[ok] = _holm(vals)
    else:
        from scipy.stats import false_discovery_control

        out[ok] = np.minimum(false_discovery_control(vals, method="bh"), 1.0)
    return out


def is_significant(p_adjusted: float | None, alpha: float = ALPHA) -> bool:
    """True when the adjusted p-value is below ``alpha`` (False for None or nan: no test)."""
    return p_adjusted is not None and not math.isnan(p_adjusted) and p_adjusted < alpha


def family_text(method: str, size: int, members: str) -> str:
    """One sentence stating the correction and its family, for a table's legend: e.g.
    ``"p adj: Holm-Bonferroni (family-wise error rate) over a family of 12 tests (every model x criterion)"``."""
    method = check_correction(method)
    if method == "none":
        return f"p adj: no correction for multiple comparisons (p adj = p; {size} tests shown: {members})"
    return f"p adj: {correction_label(method)} over a family of {size} test{'s' * (size != 1)} ({members})"


def correct_rows(rows: Sequence[Any], method: str = "holm", *, p_field: str = "p_value",
                 adjusted_field: str = "p_adjusted", **extra: Any) -> list[Any]:
    """The frozen dataclass ``rows`` with ``adjusted_field`` set to the adjusted ``p_field`` of each, all rows
    one family (:func:`adjust_pvalues`), plus ``correction=method`` and ``family_size`` (the tests in the family:
    rows with a p-value) and any ``extra`` fields set alike on every row (via :func:`dataclasses.replace`)."""
    method = check_correction(method)
    adj = adjust_pvalues([getattr(r, p_field) for r in rows], method)
    size = int(sum(not math.isnan(a) for a in adj))
    return [replace(r, **{adjusted_field: float(a), "correction": method, "family_size": size, **extra})
            for r, a in zip(rows, adj, strict=True)]
