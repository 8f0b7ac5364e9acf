"""The leaderboard of a results file: models ranked by pass rate, with intervals, rank ranges and means.

The rows are what ``Report.to_dict()["leaderboard"]`` holds and what the HTML report's leaderboard shows
(README, "HTML report", documents the fields). Every figure comes from :mod:`judgekit.stats`: pass rates and
their Wilson and bootstrap intervals from :func:`judgekit.stats.passrate.pass_rates` (grouped by model, the
same figures as ``judgekit report``'s pass rates when those are by model), means from
:func:`judgekit.stats.aggregate.summarize`, rank ranges from :func:`judgekit.stats.ranks.rank_ranges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judgekit.io.records import Judgment


def leaderboard(judgments: Sequence[Judgment], criteria: Sequence[str], *, n_resamples: int = 2000,
                seed: int = 0) -> list[dict[str, Any]]:
    """One JSON-ready row per judge and model, best first within each judge (judges in sorted order).

    Within a judge: ``rank`` by pass rate (ties share the better rank), ``rank_low``/``rank_high`` the 95 %
    bootstrap range of the rank (items resampled, paired across models, ``n_resamples`` resamples, ``seed``);
    ``pass_rate`` with ``wilson_ci`` and ``bootstrap_ci`` (``n_resamples`` resamples of the answers, or of the
    items when an item occurs several times, e.g. under several conditions); ``mean_overall`` and ``means``
    over scored judgments, with ``mean_overall_ci`` (percentile interval of the mean over the same item
    resamples) and the rank by mean overall with its range (``overall_rank``, ``overall_rank_low``,
    ``overall_rank_high``; :func:`judgekit.stats.ranks.mean_rank_ranges`); counts ``n``, ``scored``, ``unscored``,
    ``passed``; ``cost_per_1000`` (USD per 1,000 judgments of the model, over those with a price; None when none
    has one) and ``judge_s_per_1000`` (seconds of judge calls per 1,000 judgments: the mean of ``latency_s`` x
    1,000; answers read from the store count their stored latency). Several conditions are pooled.
    """
    import math

    from judgekit.stats.aggregate import summarize
    from judgekit.stats.passrate import json_ready, pass_rates
    from judgekit.stats.ranks import mean_rank_ranges, pass_matrix, rank_ranges, score_matrix

    rows: list[dict[str, Any]] = []
    for judge in sorted({j.judge for j in judgments}):
        js = [j for j in judgments if j.judge == judge]
        rates = {r.key[0]: r for r in pass_rates(js, by=("model",), n_resamples=n_resamples, seed=seed)}
        sums = {s.key[0]: s for s in summarize(js, ("model",), criteria)}
        models = sorted(rates)
        passes, scored, ids = pass_matrix(js, models)
        ranks = rank_ranges(passes, scored, n_resamples=n_resamples, seed=seed)
        by_mean, mean_low, mean_high = mean_rank_ranges(*score_matrix(js, models, ids), n_resamples=n_resamples,
                                                        seed=seed)
        order = sorted(range(len(models)), key=lambda i: (int(ranks.rank[i]), models[i]))
        for i in order:
            r, s = rates[models[i]], sums[models[i]]
            mine = [j for j in js if j.model == models[i]]
            costs = [j.cost for j in mine if j.cost is not None]
            rows.append(json_ready({
                "judge": judge, "model": models[i], "rank": int(ranks.rank[i]), "rank_low": int(ranks.low[i]),
                "rank_high": int(ranks.high[i]), "n": r.n, "scored": r.scored, "unscored": r.unscored,
                "passed": r.passed, "pass_rate": r.rate, "wilson_ci": [r.wilson_low, r.wilson_high],
                "bootstrap_ci": [r.boot_low, r.boot_high], "resampled": r.resampled,
                "mean_overall": s.mean_overall, "mean_overall_ci": [float(mean_low[i]), float(mean_high[i])],
                "overall_rank": int(by_mean.rank[i]), "overall_rank_low": int(by_mean.low[i]),
                "overall_rank_high": int(by_mean.high[i]),
                "means": {c: s.means.get(c, float("nan")) for c in criteria},
                "cost_per_1000": 1000 * math.fsum(costs) / len(costs) if costs else None,
                "judge_s_per_1000": 1000 * math.fsum(j.latency_s for j in mine) / len(mine),
                "n_resamples": n_resamples}))
    return rows


def leaderboard_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The leaderboard rows as CSV text (``judgekit report --csv``): one line per judge and model, the fields of
    the JSON rows in their order with every ``[low, high]`` pair split into ``NAME_low`` and ``NAME_high`` and
    ``means`` into one ``mean_CRITERION`` column per criterion; null as an empty cell. The columns are the same
    for every row of one report."""
    import csv
    import io

    flat: list[dict[str, Any]] = []
    for r in rows:
        out: dict[str, Any] = {}
        for k, v in r.items():
            if k == "means":
                out.update({f"mean_{c}": m for c, m in v.items()})
            elif isinstance(v, list) and len(v) == 2:
                out[f"{k}_low"], out[f"{k}_high"] = v
            else:
                out[k] = v
        flat.append(out)
    columns = list(dict.fromkeys(k for r in flat for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in flat:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return buf.getvalue()
