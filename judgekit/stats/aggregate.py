"""Aggregation of judgments into per-group summaries: criterion means, mean overall, pass rate with a
95 % Wilson interval, unscored count.

Convention: the pass rate is computed over *scored* judgments only (passes / scored); unscored judgments
are excluded from every mean and rate and are counted separately, so a parse failure never moves a score.
"""

from __future__ import annotations

import functools
import math
import operator
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgekit.io.records import Judgment


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n`` (no continuity correction).

    With ``p = successes / n`` and ``z`` the ``(1 + confidence) / 2`` quantile of the standard normal::

        centre = (p + z² / 2n) / (1 + z² / n),  half = z / (1 + z² / n) * sqrt(p (1 - p) / n + z² / 4n²)

    clipped to [0, 1]; the bound at 0 or n successes is exactly 0 or 1. The same values as
    ``scipy.stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")`` (checked in the tests),
    written out with the standard library so that a summary needs neither numpy nor scipy (their import costs
    more than a whole judging run's summary). Returns ``(nan, nan)`` when ``n == 0``.
    """
    if n == 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    z = _z(confidence)
    p, z2 = successes / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


@functools.lru_cache(maxsize=16)
def _z(confidence: float) -> float:
    """The two-sided standard-normal quantile of ``confidence`` (1.959963984540054 for 0.95)."""
    return statistics.NormalDist().inv_cdf((1 + confidence) / 2)


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
    # Grouped on the raw attribute values first and the few keys made text after: the per-judgment work is one
    # attrgetter call and a dict lookup (a 50,000-judgment summary is part of every judge command's time).
    get = operator.attrgetter(*by) if by else (lambda _j: ())
    raw: dict[Any, list[Judgment]] = {}
    for j in judgments:
        raw.setdefault(get(j), []).append(j)
    groups: dict[tuple[str, ...], list[Judgment]] = {}
    for value, members in raw.items():
        parts = value if len(by) != 1 else (value,)
        key = tuple("-" if x is None else str(x) for x in parts)
        groups.setdefault(key, []).extend(members)
    out = []
    for key in sorted(groups):
        js = groups[key]
        scored = [j for j in js if j.status == "scored"]
        g = GroupSummary(key=key, n=len(js), scored=len(scored), unscored=len(js) - len(scored))
        if scored:
            scores = [j.scores for j in scored]  # each criterion's column read at C speed (map + itemgetter)
            g.means = {c: math.fsum(map(operator.itemgetter(c), scores)) / len(scored) for c in criteria}
            overall = [j.overall for j in scored]
            if None in overall:  # Judgment validation forbids it; never average a gap as 0
                raise ValueError("a scored judgment has no overall score")
            g.mean_overall = math.fsum(overall) / len(scored)  # type: ignore[arg-type]
            g.passed = sum([1 for j in scored if j.passed])
            g.pass_rate = g.passed / len(scored)
            g.pass_ci = wilson_interval(g.passed, len(scored))
        out.append(g)
    return out
