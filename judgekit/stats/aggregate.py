"""Aggregation of judgments into per-group summaries: criterion means, mean overall, pass rate with a
95 % Wilson interval, unscored count.

Convention: the pass rate is computed over *scored* judgments only (passes / scored); unscored judgments
are excluded from every mean and rate and are counted separately, so a parse failure never moves a score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from judgekit.io.records import Judgment


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    Uses :meth:`scipy.stats.binomtest(...).proportion_ci` with ``method='wilson'`` (no continuity
    correction). Returns ``(nan, nan)`` when ``n == 0``.
    """
    if n == 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


@dataclass
class GroupSummary:
    """Summary of one group (e.g. one model, or one model within one category)."""

    key: tuple[str, ...]
    n: int
    scored: int
    unscored: int
    means: dict[str, float] = field(default_factory=dict)
    mean_overall: float = math.nan
    passed: int = 0
    pass_rate: float = math.nan
    pass_ci: tuple[float, float] = (math.nan, math.nan)


def summarize(judgments: Iterable[Judgment], by: Sequence[str], criteria: Sequence[str]) -> list[GroupSummary]:
    """Group ``judgments`` by the named attributes (e.g. ``("model",)``, ``("model", "category")``) and
    summarise each group; groups are sorted by key. A missing attribute value groups as ``"-"``."""
    groups: dict[tuple[str, ...], list[Judgment]] = {}
    for j in judgments:
        key = tuple(str(getattr(j, b)) if getattr(j, b) is not None else "-" for b in by)
        groups.setdefault(key, []).append(j)
    out = []
    for key in sorted(groups):
        js = groups[key]
        scored = [j for j in js if j.status == "scored"]
        g = GroupSummary(key=key, n=len(js), scored=len(scored), unscored=len(js) - len(scored))
        if scored:
            g.means = {c: math.fsum(j.scores[c] for j in scored) / len(scored) for c in criteria}
            overall = [j.overall for j in scored]
            if any(v is None for v in overall):  # Judgment validation forbids it; never average a gap as 0
                raise ValueError("a scored judgment has no overall score")
            g.mean_overall = math.fsum(overall) / len(scored)  # type: ignore[arg-type]
            g.passed = sum(1 for j in scored if j.passed)
            g.pass_rate = g.passed / len(scored)
            g.pass_ci = wilson_interval(g.passed, len(scored))
        out.append(g)
    return out
