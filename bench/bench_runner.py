"""Benchmark of judgekit's runner against a loopback OpenAI-compatible server.

Run ``python bench/bench_runner.py`` (a few minutes) or ``python bench/bench_runner.py --quick`` (~20 s).
See bench/README.md for what each phase measures (A-C: the runner in process; D-F, in bench/bench_cli.py: the
``judgekit`` command as a subprocess, its start-up, and the results write and summary). The figures are
printed as a Markdown table and written to bench/out/runner.json.

The loopback server runs in a separate process (``python bench/bench_runner.py --serve``) so that its CPU
is not charged to the client's event loop. The delay of a reply is chosen by the URL:
``http://127.0.0.1:PORT/d100/v1`` answers after 100 ms, ``/d0/v1`` at once. ``GET /stats`` returns how
many completion requests the server has received.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(Path(__file__).resolve().parent) not in sys.path:  # bench_cli (phases D-F) sits beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
RUBRIC_PATH = ROOT / "rubrics" / "robustmad.yaml"
OUT_DIR = Path(__file__).resolve().parent / "out"
JUDGE_MODEL = "openai/bench"
CONCURRENCY = 64
LATENCY_MS = 100

TARGET_LEAN_RATIO = 0.85
TARGET_LITELLM_RATIO = 0.8
TARGET_RERUN_RATE = 20_000.0


@dataclass(frozen=True)
class Sizes:
    lean_n: int
    lean_rounds: int
    litellm_n: int
    litellm_rounds: int
    store_n: int
    store_rounds: int
    cli_rounds: int = 5
    startup_runs: int = 10
    summary_n: int = 50_000


FULL = Sizes(lean_n=2_000, lean_rounds=5, litellm_n=2_000, litellm_rounds=5, store_n=50_000, store_rounds=3)
QUICK = Sizes(lean_n=640, lean_rounds=1, litellm_n=320, litellm_rounds=1, store_n=4_000, store_rounds=1,
              cli_rounds=1, startup_runs=3, summary_n=5_000)


# ---- the loopback server (runs in its own process) -------------------------------------------------------
def _reply_body() -> bytes:
    """A valid chat-completions reply carrying a valid robustmad judge reply (fixed: the server stays cheap)."""
    judge_reply = {"technical_accuracy": 4, "comprehensiveness": 3, "relevance": 5, "style_and_clarity": 4,
                   "overall": 4, "rationale": "Right on the main point; leaves out the location detail."}
    body = {
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()), "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(judge_reply)}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940},
    }
    return json.dumps(body).encode()


def serve() -> None:
    """Server process: print ``PORT <n>`` once listening; exit when stdin closes (the parent went away)."""
    import socket

    from aiohttp import web

    body = _reply_body()
    state = {"requests": 0}

    async def completions(request: web.Request) -> web.Response:
        await request.read()
        state["requests"] += 1
        delay_ms = int(request.match_info["ms"])
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        return web.Response(body=body, content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(state)

    async def main() -> None:
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
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)),
                         daemon=True).start()
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


class LoopbackServer:
    """The server process, seen from the client: ``base(delay_ms)`` and ``requests()``."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the loopback server did not start (said {line!r})")
        self.port = int(line.split()[1])

    def base(self, delay_ms: int) -> str:
        return f"http://127.0.0.1:{self.port}/d{delay_ms}/v1"

    def requests(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return int(json.loads(r.read())["requests"])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the client side ---------------------------------------------------------------------------------------
def make_responses(n: int, tag: str = "r") -> list[Any]:
    """``n`` distinct responses (distinct ids and texts, so distinct store keys)."""
    from judgekit.io.records import Response

    cats = ("object", "anomaly", "localisation", "comparison", "unanswerable")
    return [Response(id=f"{tag}{i:06d}", question=f"Is there any defect on part {i}? If so, where?",
                     reference=f"Yes, there is a scratch on part {i} at the top-right of its outer edge.",
                     category=cats[i % len(cats)], model="bench-model",
                     response=f"Part {i} shows a scratch near its top-right edge ({tag}).")
            for i in range(n)]


def load_rubric() -> Any:
    from judgekit.judging.rubric import load_rubric as _load

    return _load(RUBRIC_PATH)


@dataclass
class RunFigures:
    wall_s: float
    cpu_s: float
    report: Any = field(repr=False)


def _runner(responses: list[Any], rubric: Any, api_base: str, backend: str, store: Any, concurrency: int) -> Any:
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.runner import Runner, RunOptions

    spec = JudgeSpec(model=JUDGE_MODEL, api_base=api_base, backend=backend)  # type: ignore[arg-type]
    return Runner(responses, rubric, [spec], store, RunOptions(concurrency=concurrency, samples=1))


def judge_sync(responses: list[Any], rubric: Any, api_base: str, backend: str, store_path: Path,
               concurrency: int = CONCURRENCY, profile: cProfile.Profile | None = None) -> RunFigures:
    """One judgekit run (samples 1) of ``responses`` into the store at ``store_path``, the way the CLI and
    ``run_judging`` make it (``Runner.run_sync``: a new event loop); timed end to end (opening the store,
    building the Runner, planning from the store, the calls, assembling the judgments, closing the loop)."""
    from judgekit.judging.store import Store

    gc.collect()  # garbage of earlier runs is not charged to this one
    cpu0, t0 = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    with Store(store_path) as store:
        report = _runner(responses, rubric, api_base, backend, store, concurrency).run_sync()
    if profile is not None:
        profile.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return RunFigures(wall, cpu, report)


async def judge(responses: list[Any], rubric: Any, api_base: str, backend: str, store_path: Path,
                concurrency: int = CONCURRENCY) -> RunFigures:
    """As :func:`judge_sync`, in the running event loop (``await Runner.run()``): phase B runs bare litellm
    and judgekit in one loop, since litellm keeps its HTTP clients per loop."""
    from judgekit.judging.store import Store

    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    with Store(store_path) as store:
        report = await _runner(responses, rubric, api_base, backend, store, concurrency).run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return RunFigures(wall, cpu, report)


def check_all_scored(report: Any, n: int, *, calls_made: int) -> None:
    js = report.judgments
    if len(js) != n:
        raise AssertionError(f"{len(js)} judgments for {n} responses")
    bad = [j for j in js if j.status != "scored"]
    if bad:
        raise AssertionError(f"{len(bad)} of {n} judgments unscored, e.g. {bad[0].reason}")
    if report.calls_made != calls_made:
        raise AssertionError(f"calls_made={report.calls_made}, expected {calls_made}")
    j = js[0]
    if j.overall != 4.0 or j.scores.get("relevance") != 5.0 or j.passed is not True:
        raise AssertionError(f"unexpected judgment {j.scores} overall={j.overall} passed={j.passed}")


async def bare_litellm(messages: list[list[dict[str, Any]]], api_base: str, schema: dict[str, Any],
                       concurrency: int = CONCURRENCY) -> RunFigures:
    """``litellm.acompletion`` for every message list, at most ``concurrency`` in flight; no judgekit."""
    import litellm

    sem = asyncio.Semaphore(concurrency)
    kwargs = {"model": JUDGE_MODEL, "api_base": api_base, "api_key": "none", "temperature": 0.0, "seed": 0,
              "max_tokens": 512, "timeout": 120.0, "num_retries": 0, "max_retries": 0,
              "response_format": {"type": "json_schema",
                                  "json_schema": {"name": "judgment", "schema": schema, "strict": True}}}

    async def one(msgs: list[dict[str, Any]]) -> str | None:
        async with sem:
            resp = await litellm.acompletion(messages=msgs, **kwargs)
            return resp.choices[0].message.content

    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    texts = await asyncio.gather(*(one(m) for m in messages))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if not all(texts):
        raise AssertionError("bare litellm: an empty reply")
    return RunFigures(wall, cpu, None)


async def warm_up_litellm(api_base: str) -> float:
    """Import litellm and make one call (neither is timed in phase B); returns the seconds it took."""
    t0 = time.perf_counter()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    await litellm.acompletion(model=JUDGE_MODEL, api_base=api_base, api_key="none", num_retries=0,
                              messages=[{"role": "user", "content": "warm-up"}], max_tokens=8)
    return time.perf_counter() - t0


# ---- phases ------------------------------------------------------------------------------------------------
def phase_lean(server: LoopbackServer, tmp: Path, n: int, rounds: int, log: Any = print) -> dict[str, Any]:
    rubric = load_rubric()
    responses = make_responses(n, "lean")
    # warm-up, not timed: first-use imports and set-up in aiohttp, judgekit and SQLite
    warm = judge_sync(make_responses(CONCURRENCY, "warm"), rubric, server.base(LATENCY_MS), "lean",
                      tmp / "lean-warm.sqlite")
    check_all_scored(warm.report, CONCURRENCY, calls_made=CONCURRENCY)
    walls, cpus = [], []
    for r in range(rounds):
        before = server.requests()
        fig = judge_sync(responses, rubric, server.base(LATENCY_MS), "lean", tmp / f"lean-{r}.sqlite")
        check_all_scored(fig.report, n, calls_made=n)
        got = server.requests() - before
        if got != n:
            raise AssertionError(f"lean: the server received {got} requests for {n} judgments")
        walls.append(fig.wall_s)
        cpus.append(fig.cpu_s)
        log(f"  lean round {r + 1}/{rounds}: {fig.wall_s:.3f} s, {n / fig.wall_s:.0f} req/s, "
            f"client CPU {1000 * fig.cpu_s / n:.2f} ms/req")
    wall = statistics.median(walls)
    ideal = n * LATENCY_MS / 1000 / CONCURRENCY
    return {"n": n, "rounds": rounds, "walls_s": walls, "wall_s": wall, "req_per_s": n / wall,
            "ideal_s": ideal, "ratio": ideal / wall, "cpu_ms_per_req": 1000 * statistics.median(cpus) / n}


def phase_litellm(server: LoopbackServer, tmp: Path, n: int, rounds: int, log: Any = print) -> dict[str, Any]:
    """Interleaved rounds of bare litellm and judgekit's litellm path, in alternating order, all in one event
    loop (litellm caches its HTTP clients per loop)."""
    from judgekit.judging.prompt import build_messages

    rubric = load_rubric()
    responses = make_responses(n, "litellm")
    base = server.base(LATENCY_MS)
    messages = [build_messages(rubric, r, images=True) for r in responses]
    schema = rubric.reply_schema()
    bare_walls: list[float] = []
    jk_walls: list[float] = []
    bare_cpus: list[float] = []
    jk_cpus: list[float] = []

    async def rounds_() -> None:
        warm = await warm_up_litellm(base)
        log(f"  litellm import + first call: {warm:.2f} s (not timed)")

        async def run_bare(r: int) -> None:
            before = server.requests()
            bare = await bare_litellm(messages, base, schema)
            if server.requests() - before != n:
                raise AssertionError("bare litellm: the server did not receive one request per call")
            bare_walls.append(bare.wall_s)
            bare_cpus.append(bare.cpu_s)
            log(f"  round {r + 1}/{rounds} bare litellm:     {bare.wall_s:.3f} s, {n / bare.wall_s:.0f} req/s, "
                f"client CPU {1000 * bare.cpu_s / n:.2f} ms/req")

        async def run_judgekit(r: int) -> None:
            before = server.requests()
            fig = await judge(responses, rubric, base, "litellm", tmp / f"litellm-{r}.sqlite")
            check_all_scored(fig.report, n, calls_made=n)
            if server.requests() - before != n:
                raise AssertionError("judgekit litellm: the server did not receive one request per judgment")
            jk_walls.append(fig.wall_s)
            jk_cpus.append(fig.cpu_s)
            log(f"  round {r + 1}/{rounds} judgekit litellm: {fig.wall_s:.3f} s, {n / fig.wall_s:.0f} req/s, "
                f"client CPU {1000 * fig.cpu_s / n:.2f} ms/req")

        for r in range(rounds):  # the order alternates (bare first, then judgekit first, ...)
            first, second = (run_bare, run_judgekit) if r % 2 == 0 else (run_judgekit, run_bare)
            await first(r)
            await second(r)

    asyncio.run(rounds_())
    bare_wall, jk_wall = statistics.median(bare_walls), statistics.median(jk_walls)
    return {"n": n, "rounds": rounds, "bare_walls_s": bare_walls, "judgekit_walls_s": jk_walls,
            "bare_wall_s": bare_wall, "judgekit_wall_s": jk_wall, "bare_req_per_s": n / bare_wall,
            "judgekit_req_per_s": n / jk_wall, "ratio": bare_wall / jk_wall,
            "bare_cpu_ms_per_req": 1000 * statistics.median(bare_cpus) / n,
            "judgekit_cpu_ms_per_req": 1000 * statistics.median(jk_cpus) / n}


def phase_store(server: LoopbackServer, tmp: Path, n: int, rounds: int = 3, log: Any = print,
                profile_to: Path | None = None, force_profile: bool = False) -> dict[str, Any]:
    """Fill a store with ``n`` judgments (lean path, 0 ms server), then time ``rounds`` full re-runs from it
    (median reported)."""
    rubric = load_rubric()
    responses = make_responses(n, "store")
    base = server.base(0)
    path = tmp / "store.sqlite"
    before = server.requests()
    fill = judge_sync(responses, rubric, base, "lean", path)
    check_all_scored(fill.report, n, calls_made=n)
    if server.requests() - before != n:
        raise AssertionError("store fill: the server did not receive one request per judgment")
    log(f"  fill: {n} judgments in {fill.wall_s:.2f} s ({n / fill.wall_s:.0f}/s, "
        f"client CPU {1000 * fill.cpu_s / n:.2f} ms/judgment)")
    # what the re-run must reproduce, kept as text (not tracked by the garbage collector, so that the
    # re-runs are timed on a heap like that of a fresh process)
    expected = [fingerprint(j) for j in fill.report.judgments]
    fill.report = None

    def rerun(profile: cProfile.Profile | None = None) -> RunFigures:
        before = server.requests()
        fig = judge_sync(responses, rubric, base, "lean", path, profile=profile)
        during = server.requests() - before
        if during != 0:
            raise AssertionError(f"re-run from the store: the server received {during} requests")
        check_all_scored(fig.report, n, calls_made=0)
        if fig.report.calls_cached != n:
            raise AssertionError(f"re-run: calls_cached={fig.report.calls_cached}, expected {n}")
        return fig

    walls, cpus = [], []
    for r in range(rounds):
        again = rerun()
        if r == 0:
            check_same(expected, again.report.judgments)
        walls.append(again.wall_s)
        cpus.append(again.cpu_s)
        log(f"  re-run {r + 1}/{rounds}: {n} stored judgments in {again.wall_s:.3f} s ({n / again.wall_s:.0f}/s, "
            f"CPU {again.cpu_s:.3f} s), 0 calls")
        again.report = None
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    result: dict[str, Any] = {
        "n": n, "fill_wall_s": fill.wall_s, "fill_per_s": n / fill.wall_s,
        "fill_cpu_ms_per_judgment": 1000 * fill.cpu_s / n, "rerun_rounds": rounds, "rerun_walls_s": walls,
        "rerun_wall_s": wall, "rerun_cpu_s": cpu, "rerun_per_s": n / wall, "rerun_per_cpu_s": n / cpu,
        "rerun_calls_made": 0, "rerun_server_requests": 0,
    }
    if force_profile or (profile_to is not None and n / wall < TARGET_RERUN_RATE):
        prof = cProfile.Profile()
        rerun(prof)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        text = buf.getvalue()
        if profile_to is not None:
            profile_to.parent.mkdir(parents=True, exist_ok=True)
            profile_to.write_text(text, encoding="utf-8")
            result["profile"] = str(profile_to)
            log(f"  re-run profile (cProfile, by own time) written to {profile_to}")
        else:
            log(text)
    return result


def fingerprint(j: Any) -> str:
    """A judgment as JSON text, without what legitimately differs on a re-run from the store (the count of
    calls read from the store)."""
    return str(j.model_dump_json(exclude={"cached_calls"}))


def check_same(expected: list[str], judgments: list[Any]) -> None:
    """The re-run from the store must give the judgments of the run that filled it."""
    for want, j in zip(expected, judgments, strict=True):
        got = fingerprint(j)
        if got != want:
            raise AssertionError(f"the re-run changed judgment {j.id}: {got} != {want}")
        if j.cached_calls != j.calls:
            raise AssertionError(f"re-run judgment {j.id}: cached_calls={j.cached_calls}, calls={j.calls}")


# ---- report ------------------------------------------------------------------------------------------------
def rows_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(phase: str, metric: str, value: float, fmt: str, target: str = "", ok: bool | None = None) -> None:
        rows.append({"phase": phase, "metric": metric, "value": value, "shown": format(value, fmt),
                     "target": target, "result": "" if ok is None else ("PASS" if ok else "MISS")})

    if "lean" in results:
        a = results["lean"]
        row("A lean", f"wall s ({a['n']} judgments, 100 ms, {CONCURRENCY} in flight)", a["wall_s"], ".3f")
        row("A lean", "req/s", a["req_per_s"], ".0f")
        row("A lean", "client CPU ms per request", a["cpu_ms_per_req"], ".2f")
        row("A lean", f"ideal/wall (ideal {a['ideal_s']:.3f} s)", a["ratio"], ".3f",
            f">= {TARGET_LEAN_RATIO}", a["ratio"] >= TARGET_LEAN_RATIO)
    if "litellm" in results:
        b = results["litellm"]
        row("B litellm", f"bare litellm.acompletion wall s ({b['n']} calls)", b["bare_wall_s"], ".3f")
        row("B litellm", "bare litellm req/s", b["bare_req_per_s"], ".0f")
        row("B litellm", "judgekit litellm wall s", b["judgekit_wall_s"], ".3f")
        row("B litellm", "judgekit litellm req/s", b["judgekit_req_per_s"], ".0f")
        row("B litellm", "client CPU ms/req: bare", b["bare_cpu_ms_per_req"], ".2f")
        row("B litellm", "client CPU ms/req: judgekit", b["judgekit_cpu_ms_per_req"], ".2f")
        row("B litellm", "bare wall / judgekit wall", b["ratio"], ".3f", f">= {TARGET_LITELLM_RATIO}",
            b["ratio"] >= TARGET_LITELLM_RATIO)
    if "store" in results:
        c = results["store"]
        row("C store", f"fill wall s ({c['n']} judgments, 0 ms server)", c["fill_wall_s"], ".2f")
        row("C store", "fill judgments/s", c["fill_per_s"], ".0f")
        row("C store", f"re-run wall s (median of {c['rerun_rounds']})", c["rerun_wall_s"], ".3f")
        row("C store", "re-run judgments per CPU-second", c["rerun_per_cpu_s"], ".0f")
        row("C store", "re-run calls made (RunReport / server)", c["rerun_calls_made"], "d", "= 0",
            c["rerun_calls_made"] == 0 and c["rerun_server_requests"] == 0)
        row("C store", "re-run stored judgments/s", c["rerun_per_s"], ".0f", f">= {TARGET_RERUN_RATE:,.0f}",
            c["rerun_per_s"] >= TARGET_RERUN_RATE)
    import bench_cli  # phases D-F

    bench_cli.rows(results, row, CONCURRENCY)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| phase | metric | value | target | result |", "|---|---|---:|---|---|"]
    lines += [f"| {r['phase']} | {r['metric']} | {r['shown']} | {r['target']} | {r['result']} |" for r in rows]
    return "\n".join(lines)


def run_all(sizes: Sizes, phases: str = "ABCDEF", log: Any = print, profile: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with LoopbackServer() as server, tempfile.TemporaryDirectory(prefix="judgekit-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if "A" in phases:
            log(f"Phase A: lean path, {sizes.lean_n} judgments x {sizes.lean_rounds} round(s)")
            results["lean"] = phase_lean(server, tmp, sizes.lean_n, sizes.lean_rounds, log)
        if "C" in phases:  # before B: keeps litellm's import out of this phase's process state
            log(f"Phase C: re-run from a store of {sizes.store_n} judgments")
            results["store"] = phase_store(server, tmp, sizes.store_n, sizes.store_rounds, log,
                                           profile_to=OUT_DIR / "rerun_profile.txt", force_profile=profile)
        if "D" in phases:
            import bench_cli

            log(f"Phase D: judgekit judge as a command, {sizes.lean_n} judgments x {sizes.cli_rounds} round(s)")
            results["cli"] = bench_cli.phase_cli(server, tmp, sizes.lean_n, sizes.cli_rounds, make_responses,
                                                 LATENCY_MS, CONCURRENCY, JUDGE_MODEL, RUBRIC_PATH, log)
        if "E" in phases:
            import bench_cli

            log(f"Phase E: start-up of judgekit --help and judgekit rubric check, {sizes.startup_runs} runs each")
            results["startup"] = bench_cli.phase_startup(sizes.startup_runs, log)
        if "F" in phases:
            import bench_cli

            log(f"Phase F: results write and summary of {sizes.summary_n} judgments")
            results["write_summary"] = bench_cli.phase_write_summary(sizes.summary_n, log=log)
        if "B" in phases:  # last: litellm's import stays out of the other phases' process state
            log(f"Phase B: litellm path vs bare litellm, {sizes.litellm_n} calls x {sizes.litellm_rounds} round(s)")
            results["litellm"] = phase_litellm(server, tmp, sizes.litellm_n, sizes.litellm_rounds, log)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke check, ~20 s)")
    ap.add_argument("--phases", default="ABCDEF", help="which phases to run (default ABCDEF)")
    ap.add_argument("--profile", action="store_true", help="always profile the re-run of phase C")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "runner.json", help="where to write the JSON")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve()
        return 0
    sizes = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    results = run_all(sizes, args.phases.upper(), profile=args.profile)
    rows = rows_of(results)
    print()
    print(markdown(rows))
    doc = {"mode": "quick" if args.quick else "full", "sizes": sizes.__dict__, "concurrency": CONCURRENCY,
           "latency_ms": LATENCY_MS, "python": platform.python_version(), "cpus": os.cpu_count(),
           "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "total_s": time.perf_counter() - t0,
           "results": results, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out} ({doc['total_s']:.0f} s in all)")
    # exit status 1 when a target is missed, except with --quick: its small sizes are a smoke check (a short
    # run pays relatively more for its first and last waves), and a failed correctness check raises anyway
    return 0 if args.quick or all(r["result"] != "MISS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
