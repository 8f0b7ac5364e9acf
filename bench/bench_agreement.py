"""Benchmark of judgekit.stats.agreement.agreement_report: every statistic with 1,000 bootstrap resamples.

``python bench/bench_agreement.py`` builds synthetic ratings — 10,000 items x 5 human raters on a 1-5 scale plus a
judge, 625 groups of 16 items (source documents) and 16 systems, about 2 % of the human ratings missing — and
times one full ``agreement_report`` call (the target: <= 5 s on this 2-core machine), then, for the table, each
statistic alone: its point value (the public function), and its bootstrap (its weighted form evaluated on the
same 1,000 resamples). Exit status 1 when the full report exceeds the target.

With groups every interval is a cluster bootstrap over the 625 groups; ``--item-level`` passes no groups (no
summary-level correlations), so that 10,000 items are resampled: the heavier case for the bootstrap.

Options: --items, --raters, --groups, --systems, --n-resamples, --kind (ordinal, continuous, binary), --method
(percentile, bca), --item-level, --target seconds, --repeat (the full report, best of N), --no-detail.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import numpy as np

from judgekit.stats import agreement as ag


def synthetic(items: int, raters: int, groups: int, systems: int, kind: str,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Judge ratings, a human items x raters matrix, group and system labels."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), -(-items // groups))[:items]
    system = np.tile(np.arange(systems), -(-items // systems))[:items]
    quality = rng.normal(3, 1, items) + rng.normal(0, 0.4, groups)[group] + np.linspace(-0.5, 0.5, systems)[system]
    human = quality[:, None] + rng.normal(0, 0.8, (items, raters))
    judge = quality + rng.normal(0, 0.9, items)
    if kind == "binary":
        human, judge = (human >= 3).astype(float), (judge >= 3).astype(float)
    elif kind == "ordinal":
        human, judge = np.clip(np.rint(human), 1, 5), np.clip(np.rint(judge), 1, 5)
    else:
        human, judge = np.clip(human, 1, 5), np.clip(judge, 1, 5)
    human[rng.random(human.shape) < 0.02] = np.nan
    return judge, human, group, system


def _time(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def point_timings(judge: np.ndarray, humans: np.ndarray, group: np.ndarray, system: np.ndarray,
                  kind: str) -> dict[str, float]:
    """Seconds of each public point function on the data (the values the report prints)."""
    h_mean = np.nanmean(humans, axis=1)
    t: dict[str, float] = {}
    if kind == "binary":  # the majority label (ties -> 0), as agreement_report's reference
        ref = np.where(np.isnan(h_mean), np.nan, (h_mean > 0.5).astype(float))
    else:
        ref = np.floor(h_mean + 0.5) if kind == "ordinal" else h_mean
    t["percent_agreement"] = _time(ag.percent_agreement, judge, ref)
    t["pass_agreement"] = _time(ag.pass_agreement, judge, h_mean, threshold=3)
    if kind != "continuous":
        labels = [0, 1] if kind == "binary" else list(range(1, 6))
        t["cohen_kappa"] = _time(ag.cohen_kappa, judge, ref, weights=None if kind == "binary" else "quadratic",
                                 labels=labels)
        t["fleiss_kappa"] = _time(ag.fleiss_kappa, humans, labels=labels)
    level = {"binary": "nominal", "ordinal": "ordinal", "continuous": "interval"}[kind]
    t[f"krippendorff_alpha ({level})"] = _time(ag.krippendorff_alpha, humans, level=level)
    for method in ("pearson", "spearman", "kendall"):
        t[f"{method} sample"] = _time(ag.correlation, judge, h_mean, method=method)
        t[f"{method} summary"] = _time(ag.correlation, judge, h_mean, method=method, level="summary", groups=group)
        t[f"{method} system"] = _time(ag.correlation, judge, h_mean, method=method, level="system", systems=system)
    t["icc"] = _time(ag.icc, humans)
    t["inter_human_ceiling"] = _time(ag.inter_human_ceiling, humans, judge,
                                     reference="mode" if kind == "binary" else "mean")
    return t


def bootstrap_timings(prep: ag._Prepared, n_resamples: int) -> tuple[float, dict[str, float]]:
    """Seconds to draw the resample weights, and of each statistic's weighted form on all of them (alone: no
    matrix product shared with the others, so the sum exceeds the shared evaluation inside the report)."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    blocks = [w[:, prep.unit] for w in ag._resample_counts(rng, prep.n_units, n_resamples)]
    t_draw = time.perf_counter() - t0
    out: dict[str, float] = defaultdict(float)
    for s in prep.specs:
        if s.weighted is None:
            continue
        key = s.name if s.level in ("-",) else f"{s.name} {s.level}"
        for w in blocks:
            out[key] += _time(s.weighted, w)
    return t_draw, dict(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--raters", type=int, default=5)
    ap.add_argument("--groups", type=int, default=625)
    ap.add_argument("--systems", type=int, default=16)
    ap.add_argument("--n-resamples", type=int, default=1000)
    ap.add_argument("--kind", choices=["ordinal", "continuous", "binary"], default="ordinal")
    ap.add_argument("--method", choices=["percentile", "bca"], default="percentile")
    ap.add_argument("--target", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--item-level", action="store_true", help="no groups: resample items, not groups")
    ap.add_argument("--no-detail", action="store_true", help="time only the full report")
    a = ap.parse_args()
    judge, humans, group, system = synthetic(a.items, a.raters, a.groups, a.systems, a.kind)
    kw = {"scale": (1, 5) if a.kind != "binary" else None, "kind": a.kind, "systems": system,
          "groups": None if a.item_level else group}
    totals = []
    rep = None
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        rep = ag.agreement_report(judge, humans, n_resamples=a.n_resamples, method=a.method, **kw)
        totals.append(time.perf_counter() - t0)
    assert rep is not None
    total = min(totals)
    print(f"agreement_report: {a.items} items x {a.raters} raters + judge, kind={a.kind}, "
          f"{'no groups (items resampled)' if a.item_level else f'{a.groups} groups (groups resampled)'}, "
          f"{a.systems} systems, {a.n_resamples} resamples ({a.method}): {len(rep.entries)} statistics")
    if not a.no_detail:
        t0 = time.perf_counter()
        prep = ag._prepare_report(judge, humans, threshold=None, **kw)
        t_prep = time.perf_counter() - t0
        points = point_timings(judge, humans, group, system, a.kind)
        t_draw, boots = bootstrap_timings(prep, a.n_resamples)
        print("\n| point value (public function) | s |\n|---|---|")
        for name, sec in points.items():
            print(f"| {name} | {sec:.3f} |")
        print(f"\n| bootstrap of one statistic alone ({a.n_resamples} resamples) | s |\n|---|---|")
        for name, sec in boots.items():
            print(f"| {name} | {sec:.3f} |")
        print(f"\ninside the report: all values + weighted forms prepared {t_prep:.2f} s; "
              f"resample weights drawn {t_draw:.2f} s")
    verdict = "PASS" if total <= a.target else "MISS"
    print(f"\nfull agreement_report: {total:.2f} s (target <= {a.target:g} s) {verdict}"
          + (f"; runs {', '.join(f'{x:.2f}' for x in totals)}" if a.repeat > 1 else ""))
    return 0 if total <= a.target else 1


if __name__ == "__main__":
    sys.exit(main())
