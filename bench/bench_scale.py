"""Benchmark of scaling out: one judge behind several servers (and, when bench/scale_shards.py is there, Ray
sharding and the store merge).

Run ``python bench/bench_scale.py`` (20,000 judgments per run, ~3 min) or ``python bench/bench_scale.py --quick``
(2,000, ~20 s). The figures are printed as a Markdown table and written to bench/out/scale.json.

Part A, many servers: the same judgments over 4 loopback servers and over 1, each server answering after 100 ms
and serving at most 16 requests at a time (a semaphore, like a GPU server with 16 slots; the rest queue), the
client at 128 calls in flight in both runs (twice the four servers' slots, so that a slot freed by a reply
never waits for the client's next request). One server caps the run at 16 / 0.1 s = 160 judgments/s; four allow
640/s, so the target is a throughput ratio of at least 3.5. Every judgment must be scored, the per-server counts
(``RunReport.per_server``) must sum to the calls made and match what each server received, and no server may
have had more than 16 requests in progress.

The servers run in a separate process (``python bench/bench_scale.py --serve N CAP``, one port each) so that
their CPU is not charged to the client.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runner import (  # the bench folder is not a package
    JUDGE_MODEL,
    OUT_DIR,
    LoopbackServer,
    _reply_body,
    check_all_scored,
    judge_sync,
    load_rubric,
    make_responses,
    markdown,
)

SERVERS = 4
SERVER_CAP = 16  # requests a server works on at once
LATENCY_MS = 100
CONCURRENCY = 128  # client calls in flight, both runs: twice the slots of 4 servers, so none idles
TARGET_SERVERS_RATIO = 3.5
FULL_N, QUICK_N = 20_000, 2_000


# ---- the loopback servers (one process, one port each) --------------------------------------------------------
def serve(count: int, cap: int) -> None:
    """Server process: ``count`` servers, each on its own port and serving at most ``cap`` requests at a time;
    prints ``PORTS p1 p2 ...`` once listening; exits when stdin closes."""
    import socket

    from aiohttp import web

    body = _reply_body()

    async def main() -> None:
        runners = []
        ports = []
        for _ in range(count):
            slots = asyncio.Semaphore(cap)
            state = {"requests": 0, "active": 0, "peak": 0}

            async def completions(request: web.Request, slots: asyncio.Semaphore = slots,
                                  state: dict[str, int] = state) -> web.Response:
                await request.read()
                state["requests"] += 1
                async with slots:
                    state["active"] += 1
                    state["peak"] = max(state["peak"], state["active"])
                    try:
                        delay_ms = int(request.match_info["ms"])
                        if delay_ms:
                            await asyncio.sleep(delay_ms / 1000)
                    finally:
                        state["active"] -= 1
                return web.Response(body=body, content_type="application/json")

            async def stats(_request: web.Request, state: dict[str, int] = state) -> web.Response:
                return web.json_response(state)

            app = web.Application()
            app.router.add_post("/d{ms:\\d+}/v1/chat/completions", completions)
            app.router.add_get("/stats", stats)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(1024)
            await web.SockSite(runner, sock, backlog=1024).start()
            runners.append(runner)
            ports.append(sock.getsockname()[1])
        print("PORTS " + " ".join(map(str, ports)), flush=True)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
        await stop.wait()
        for r in runners:
            await r.cleanup()

    asyncio.run(main())


class LoopbackServers(LoopbackServer):
    """The server process, seen from the client: ``bases`` (one per server) and ``stats(i)``; ``close`` and the
    context manager are :class:`bench_runner.LoopbackServer`'s."""

    def __init__(self, count: int, cap: int) -> None:  # not super().__init__: that starts the one-server process
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(count), str(cap)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORTS "):
            self.close()
            raise RuntimeError(f"the loopback servers did not start (said {line!r})")
        self.ports = [int(p) for p in line.split()[1:]]
        self.bases = [f"http://127.0.0.1:{p}/d{LATENCY_MS}/v1" for p in self.ports]

    def stats(self, i: int) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[i]}/stats", timeout=10) as r:
            return dict(json.loads(r.read()))

def _run_on(bases: list[str], n: int, tag: str, tmp: Path, log: Any) -> dict[str, Any]:
    """One judgekit run of ``n`` judgments over the servers ``bases`` (lean path, :data:`CONCURRENCY` in flight)."""
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends.servers import Deployment
    from judgekit.judging.runner import Runner, RunOptions
    from judgekit.judging.store import Store

    rubric = load_rubric()
    responses = make_responses(n, tag)
    spec = JudgeSpec(model=JUDGE_MODEL, api_base=bases[0], backend="lean",
                     deployments=[Deployment(b) for b in bases] if len(bases) > 1 else [])
    t0, cpu0 = time.perf_counter(), time.process_time()
    with Store(tmp / f"{tag}.sqlite") as store:
        report = Runner(responses, rubric, [spec], store, RunOptions(concurrency=CONCURRENCY)).run_sync()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    check_all_scored(report, n, calls_made=n)
    per = report.per_server
    if sum(s["calls"] for s in per.values()) != n:
        raise AssertionError(f"per-server calls {per} do not sum to {n}")
    log(f"  {len(bases)} server(s): {wall:.2f} s, {n / wall:.0f} judgments/s, client CPU {1000 * cpu / n:.2f} ms each")
    return {"servers": len(bases), "n": n, "wall_s": wall, "per_s": n / wall, "cpu_ms_per_call": 1000 * cpu / n,
            "per_server": per}


def bench_servers(n: int = FULL_N, log: Any = print) -> dict[str, Any]:
    """Part A: ``n`` judgments over :data:`SERVERS` servers vs over 1 (see the module docstring); returns the
    figures (raises AssertionError when a correctness check fails)."""
    with LoopbackServers(SERVERS, SERVER_CAP) as srv, tempfile.TemporaryDirectory(prefix="judgekit-scale-") as tmpdir:
        tmp = Path(tmpdir)
        judge_sync(make_responses(CONCURRENCY, "warm"), load_rubric(), srv.bases[0], "lean", tmp / "warm.sqlite")
        before = [srv.stats(i)["requests"] for i in range(SERVERS)]
        one = _run_on(srv.bases[:1], n, "one", tmp, log)
        mid = [srv.stats(i)["requests"] for i in range(SERVERS)]
        many = _run_on(srv.bases, n, "many", tmp, log)
        after = [srv.stats(i) for i in range(SERVERS)]
    if mid[0] - before[0] != n:
        raise AssertionError(f"one server: it received {mid[0] - before[0]} requests for {n} judgments")
    got = [after[i]["requests"] - mid[i] for i in range(SERVERS)]
    if sum(got) != n:
        raise AssertionError(f"four servers: they received {got} requests for {n} judgments")
    peak = max(s["peak"] for s in after)
    if peak > SERVER_CAP:
        raise AssertionError(f"a server had {peak} requests in progress (cap {SERVER_CAP})")
    return {"n": n, "servers": SERVERS, "server_cap": SERVER_CAP, "latency_ms": LATENCY_MS,
            "concurrency": CONCURRENCY, "one": one, "many": many, "received": got,
            "share_min": min(got) / n, "share_max": max(got) / n, "ratio": many["per_s"] / one["per_s"],
            "ideal_one_s": n / (SERVER_CAP / (LATENCY_MS / 1000)),
            "ideal_many_s": n / (SERVERS * SERVER_CAP / (LATENCY_MS / 1000))}


def rows_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(phase: str, metric: str, value: float, fmt: str, target: str = "", ok: bool | None = None) -> None:
        rows.append({"phase": phase, "metric": metric, "value": value, "shown": format(value, fmt),
                     "target": target, "result": "" if ok is None else ("PASS" if ok else "MISS")})

    if "servers" in results:
        a = results["servers"]
        p = "A servers"
        row(p, f"1 server: wall s ({a['n']} judgments, ideal {a['ideal_one_s']:.1f})", a["one"]["wall_s"], ".2f")
        row(p, "1 server: judgments/s", a["one"]["per_s"], ".0f")
        row(p, f"{a['servers']} servers: wall s (ideal {a['ideal_many_s']:.1f})", a["many"]["wall_s"], ".2f")
        row(p, f"{a['servers']} servers: judgments/s", a["many"]["per_s"], ".0f")
        row(p, f"{a['servers']} servers: client CPU ms per call", a["many"]["cpu_ms_per_call"], ".2f")
        row(p, "smallest / largest server share", a["share_min"], ".3f", f"~{1 / a['servers']:.2f} each")
        row(p, "", a["share_max"], ".3f")
        row(p, f"throughput ratio {a['servers']} servers / 1", a["ratio"], ".2f", f">= {TARGET_SERVERS_RATIO}",
            a["ratio"] >= TARGET_SERVERS_RATIO)
    targets = {("ray", "overhead_pct"): ("target_overhead_pct", "<="), ("merge", "per_s"): ("target_per_s", ">=")}
    for part in ("ray", "merge"):  # bench/scale_shards.py's parts: their scalar figures, checked where they aim
        fig = results.get(part) or {}
        for key, value in fig.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and not key.startswith("target"):
                aim = targets.get((part, key))
                goal = fig.get(aim[0]) if aim else None
                ok = None if goal is None else (value <= goal if aim[1] == "<=" else value >= goal)
                row(f"{'B' if part == 'ray' else 'C'} {part}", key, value, ".3f" if isinstance(value, float) else "d",
                    "" if goal is None else f"{aim[1]} {goal:,.0f}", ok)
    return rows


def _shard_parts() -> Any:
    """bench/scale_shards.py (Ray sharding, store merge) when it exists, else None."""
    try:
        return importlib.import_module("scale_shards")
    except ModuleNotFoundError as exc:
        if exc.name != "scale_shards":
            raise
        return None


def _call(fn: Any, quick: bool, log: Any) -> dict[str, Any]:
    """Call a part of bench/scale_shards.py, with small sizes under ``--quick`` (whichever it takes: ``quick``,
    ``n``, ``n_per``)."""
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if "quick" in params:
        kwargs["quick"] = quick
    elif quick and "n" in params:
        kwargs["n"] = QUICK_N
    elif quick and "n_per" in params:
        kwargs["n_per"] = QUICK_N
    if "log" in params:
        kwargs["log"] = log
    return dict(fn(**kwargs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_N} judgments per run instead of {FULL_N}")
    ap.add_argument("--n", type=int, help="judgments per run (overrides --quick)")
    ap.add_argument("--parts", default="servers,ray,merge",
                    help="which parts to run (default servers,ray,merge; ray and merge need bench/scale_shards.py)")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "scale.json", help="where to write the JSON")
    ap.add_argument("--serve", nargs=2, type=int, metavar=("COUNT", "CAP"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    n = args.n or (QUICK_N if args.quick else FULL_N)
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    if "servers" in parts:
        print(f"Part A: {n} judgments over {SERVERS} servers vs 1 ({LATENCY_MS} ms, {SERVER_CAP} at a time each)")
        results["servers"] = bench_servers(n)
    shards = _shard_parts()
    for part, name in (("ray", "bench_ray"), ("merge", "bench_merge")):
        if part not in parts:
            continue
        if shards is None or not hasattr(shards, name):
            print(f"Part {part}: skipped (bench/scale_shards.py has no {name})")
            continue
        print(f"Part {part}: {name}")
        results[part] = _call(getattr(shards, name), args.quick, print)
    rows = rows_of(results)
    print()
    print(markdown(rows))
    doc = {"mode": "quick" if args.quick else "full", "n": n, "python": platform.python_version(),
           "cpus": os.cpu_count(), "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "total_s": time.perf_counter() - t0, "results": results, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out} ({doc['total_s']:.0f} s in all)")
    return 0 if args.quick or all(r["result"] != "MISS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
