"""Formatting shared by :mod:`judgekit.stats.passrate` and :mod:`judgekit.stats.ppi`: JSON-ready copies of
results (nan and inf become None) and percentages for the rich tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_ready(x: Any) -> Any:
    """A JSON-ready copy of ``x``: non-finite floats become None, tuples lists, unknown objects ``str``."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, str | int | bool):
        return x
    if isinstance(x, np.generic):
        return json_ready(x.item())
    if isinstance(x, tuple | list):
        return [json_ready(v) for v in x]
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    return str(x)


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f} %"


def _ci(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{100 * low:.1f}, {100 * high:.1f}]"
