"""Benchmarks of sharded runs on Ray and of ``judgekit store merge``.

``python bench/scale_shards.py`` (a few minutes) or ``--quick`` (smaller sizes). Importable:
:func:`bench_ray` and :func:`bench_merge` return dicts of figures (bench/bench_scale.py uses them).

- ``bench_ray(n, workers)``: the wall time of a sharded run (``judgekit judge --ray local --workers W``, through
  :func:`judgekit.judging.sharding.run_sharded`) against a plain run of the same ``n`` judgments on the same
  loopback servers (bench/bench_runner.py's server process, 100 ms per reply), with the same total number of
  calls in flight (the plain run's concurrency C, each of the W workers C / W; worker k sends to server k).
  The headline (``overhead_pct``) is the run as ``judgekit judge --ray local`` makes it: Ray imported, the local
  cluster started and shut down inside the timed call, the driver judging while it starts (the warm-up of
  judgekit.judging.sharding); plain and sharded runs alternate twice and their means are compared (one pair
  varies by a few points on this machine: ``overhead_pct_min``/``_max`` are the pairs' own figures). Also
  reported: the same without the warm-up (``overhead_no_warm_up_pct``) and on a cluster started beforehand
  (``overhead_running_cluster_pct``). Target: overhead <= 15 % at 20,000 judgments.
- ``bench_merge(n_per, shards)``: ``shards`` stores of ``n_per`` calls each merged into a new store;
  judgments merged per second (target >= 50,000/s), and the idempotent re-merge (everything skipped).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runner import (
    JUDGE_MODEL,
    LATENCY_MS,
    OUT_DIR,
    LoopbackServer,
    check_all_scored,
    load_rubric,
    make_responses,
)

CONCURRENCY = 64
TARGET_OVERHEAD_PCT = 15.0
TARGET_MERGE_RATE = 50_000.0


def _spec(base: str) -> Any:
    from judgekit.judging.backends import JudgeSpec

    return JudgeSpec(model=JUDGE_MODEL, api_base=base, backend="lean")


def bench_ray(n: int = 20_000, workers: int = 2, *, concurrency: int = CONCURRENCY, latency_ms: int = LATENCY_MS,
              repeats: int = 2, log: Any = print) -> dict[str, Any]:
    """Wall seconds of plain runs and of sharded runs on a local Ray cluster (see the module docstring): the
    plain run and the headline sharded run alternate ``repeats`` times (the figure compares their means, the
    per-pair figures are kept); the other variants run once."""
    from judgekit.judging.runner import Runner, RunOptions
    from judgekit.judging.sharding import run_sharded
    from judgekit.judging.store import Store

    rubric = load_rubric()
    responses = make_responses(n, "ray")
    servers = [LoopbackServer() for _ in range(workers)]
    per_worker = RunOptions(concurrency=max(1, concurrency // workers))
    try:
        bases = [s.base(latency_ms) for s in servers]
        with tempfile.TemporaryDirectory() as tmp:
            first: list[Any] = []

            def plain(k: int) -> float:
                t0 = time.perf_counter()
                with Store(Path(tmp) / f"plain{k}.sqlite") as st:
                    rep = Runner(responses, rubric, [_spec(bases[0])], st,
                                 RunOptions(concurrency=concurrency)).run_sync()
                wall = time.perf_counter() - t0
                check_all_scored(rep, n, calls_made=n)
                first.append(first[0] if first else [j.scores for j in rep.judgments])
                log(f"  plain run: {wall:.2f} s ({n / wall:.0f} judgments/s)")
                return wall

            def sharded(name: str, **kw: Any) -> float:
                """One sharded run into a new store; its wall seconds (checked: all scored, scores as plain)."""
                t0 = time.perf_counter()
                rep = run_sharded(responses, rubric, [_spec(bases[0])], per_worker, Path(tmp) / f"{name}.sqlite",
                                  workers=workers, worker_api_bases=bases, **kw)
                wall = time.perf_counter() - t0
                check_all_scored(rep, n, calls_made=n)
                if [j.scores for j in rep.judgments] != first[0]:
                    raise AssertionError(f"{name}: the scores differ from the plain run's")
                return wall

            plain_runs, cold_runs = [], []
            for k in range(max(1, repeats)):
                plain_runs.append(plain(k))
                # as `judgekit judge --ray local` runs: Ray imported, the cluster started and shut down inside
                cold_runs.append(sharded(f"cold{k}"))
                log(f"  sharded run ({workers} workers), local cluster started inside: {cold_runs[-1]:.2f} s")
            nowarm_s = sharded("nowarm", warm_up=False)
            log(f"  same without the warm-up: {nowarm_s:.2f} s")
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
            start_s = time.perf_counter() - t0
            try:
                running_s = sharded("running")
            finally:
                ray.shutdown()
            log(f"  on a running cluster: {running_s:.2f} s (its start {start_s:.2f} s not counted)")
            t0 = time.perf_counter()
            again = run_sharded(responses, rubric, [_spec(bases[0])], RunOptions(concurrency=concurrency),
                                Path(tmp) / "cold0.sqlite", workers=workers)
            rerun_s = time.perf_counter() - t0
            if again.calls_made != 0:
                raise AssertionError(f"the sharded re-run made {again.calls_made} calls")
    finally:
        for s in servers:
            s.close()
    plain_s, cold_s = sum(plain_runs) / len(plain_runs), sum(cold_runs) / len(cold_runs)
    pairs = [100 * (c / p - 1) for p, c in zip(plain_runs, cold_runs, strict=True)]
    return {"n": n, "workers": workers, "concurrency_total": concurrency, "latency_ms": latency_ms,
            "repeats": len(plain_runs), "plain_s": plain_s, "ray_s": cold_s, "plain_runs_s": plain_runs,
            "ray_runs_s": cold_runs, "ray_no_warm_up_s": nowarm_s, "ray_running_s": running_s,
            "ray_start_s": start_s, "rerun_s": rerun_s,
            "overhead_pct": 100 * (cold_s / plain_s - 1),
            "overhead_pct_min": min(pairs), "overhead_pct_max": max(pairs),
            "overhead_no_warm_up_pct": 100 * (nowarm_s / plain_s - 1),
            "overhead_running_cluster_pct": 100 * (running_s / plain_s - 1),
            "identical_scores": True, "target_overhead_pct": TARGET_OVERHEAD_PCT}


def _fill(path: Path, n: int, tag: str) -> None:
    """A store of ``n`` calls of one judge and rubric (synthetic rows, written in one transaction)."""
    from judgekit.judging.store import Store

    Store(path).close()
    settings = json.dumps(_spec("x").identity(), sort_keys=True)
    reply = json.dumps({"technical_accuracy": 4, "comprehensiveness": 3, "relevance": 5, "style_and_clarity": 4,
                        "overall": 4, "rationale": "Right on the main point."})
    scores = json.dumps({"technical_accuracy": 4, "comprehensiveness": 3, "relevance": 5, "style_and_clarity": 4,
                         "overall": 4})
    now = time.time()
    rows = [(f"{tag}{i:060d}", 0, "ok", f"{tag}{i}", "bench-model", None, JUDGE_MODEL, 0, reply, scores,
             "Right on the main point.", None, 900, 40, None, 0.1, 0.0, 0, settings, "robustmad", "1", now)
            for i in range(n)]
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.close()


def bench_merge(n_per: int = 50_000, shards: int = 4, *, log: Any = print) -> dict[str, Any]:
    """Judgments merged per second: ``shards`` stores of ``n_per`` calls into a new store, then again."""
    from judgekit.judging.merge import merge_stores

    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"s.shard-{k}.sqlite" for k in range(shards)]
        for k, p in enumerate(paths):
            _fill(p, n_per, f"k{k}x")
        target = Path(tmp) / "s.sqlite"
        t0 = time.perf_counter()
        rep = merge_stores(paths, target)
        merge_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = merge_stores(paths, target)
        remerge_s = time.perf_counter() - t0
    total = n_per * shards
    if rep.added != total or again.added != 0:
        raise AssertionError(f"merged {rep.added} then {again.added} of {total}")
    log(f"  merge: {total} calls in {merge_s:.2f} s ({total / merge_s:,.0f}/s); re-merge {remerge_s:.2f} s")
    return {"n_per": n_per, "shards": shards, "calls": total, "merge_s": merge_s, "per_s": total / merge_s,
            "remerge_s": remerge_s, "remerge_per_s": total / remerge_s, "target_per_s": TARGET_MERGE_RATE}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    args = p.parse_args(argv)
    n, n_per = (4_000, 10_000) if args.quick else (20_000, 50_000)
    print("merge:")
    merge = bench_merge(n_per, 4)
    print("ray:")
    ray_fig = bench_ray(n, 2)
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "scale_shards.json").write_text(json.dumps({"merge": merge, "ray": ray_fig}, indent=2))
    print(f"| figure | value | target |\n|---|---|---|\n"
          f"| merge, judgments/s | {merge['per_s']:,.0f} | >= {TARGET_MERGE_RATE:,.0f} |\n"
          f"| Ray {ray_fig['workers']} workers vs plain, {ray_fig['n']} judgments | "
          f"{ray_fig['overhead_pct']:+.1f} % ({ray_fig['ray_s']:.1f} s vs {ray_fig['plain_s']:.1f} s) | "
          f"<= {TARGET_OVERHEAD_PCT:.0f} % |\n"
          f"| same without the warm-up | {ray_fig['overhead_no_warm_up_pct']:+.1f} % | |\n"
          f"| same on a running cluster | {ray_fig['overhead_running_cluster_pct']:+.1f} % | |")


if __name__ == "__main__":
    main()
