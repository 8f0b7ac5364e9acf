"""The ``judgekit`` command as a user runs it: phases D, E and F of ``bench/bench_runner.py`` (issue 17).

- **D, the judge command end to end**: ``judgekit judge`` as a subprocess on the loopback server of phase A
  (2,000 distinct responses in a .jsonl file, 100 ms, ``--concurrency 64``, ``--no-progress``), timed from
  process start to exit (results written, summary printed); the figure is ideal / wall, beside phase A's and
  beside ``judgekit.judge`` run in this process on the same file in alternating rounds. Two figures: **warm**
  (a warm server of ``judgekit.cli.warm`` is running, as for every command after a user's first; the target)
  and **cold** (``JUDGEKIT_SERVER=0``: the command in its own process, as a user's first command).
- **E, start-up**: ``judgekit --help`` and ``judgekit rubric check rubrics/robustmad.yaml``, 10 runs each,
  medians, cold and warm.
- **F, the results write and the summary** of a 50,000-judgment run, in process: ``write_records`` to a
  .jsonl file plus the summary ``judgekit judge`` prints (``print_summary`` into a console writing to a
  null file), median of 3.

Every subprocess runs the installed ``judgekit`` console script of this interpreter's environment. The
package's bytecode is compiled first (``compileall``), as ``pip install`` does: this machine sets
``PYTHONDONTWRITEBYTECODE``, and without .pyc files every start would compile judgekit's sources again.
"""

from __future__ import annotations

import compileall
import contextlib
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_CLI_RATIO = 0.85
TARGET_START_S = 0.3
TARGET_WRITE_SUMMARY_S = 1.0


def judgekit_command() -> list[str]:
    """The console script next to this interpreter (the installed entry point), else ``python -m``."""
    script = Path(sys.executable).with_name("judgekit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "judgekit.cli"]


def compile_package() -> None:
    """Write judgekit's .pyc files, as ``pip install`` does (see the module docstring)."""
    compileall.compile_dir(str(ROOT / "judgekit"), quiet=1)


def _env(warm_dir: str | None = None) -> dict[str, str]:
    """The commands' environment: with ``warm_dir``, warm servers in that folder (``judgekit.cli.warm``); without,
    every command in its own process (``JUDGEKIT_SERVER=0``: the cold figure)."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "200"}
    if warm_dir is None:
        env["JUDGEKIT_SERVER"] = "0"
    else:
        env.pop("JUDGEKIT_SERVER", None)
        env["JUDGEKIT_SERVER_DIR"] = warm_dir
    return env


@contextlib.contextmanager
def warm_server(log: Any = print) -> Iterator[tuple[str, Any]]:
    """A warm server of its own folder, started the way a user's first command starts it (a command run on its
    own, which starts one when it ends), stopped at the end. Yields the folder and ``served()``, the number of
    commands the server ran (a warm figure counts only if its commands did run in the server)."""
    from judgekit.cli import warm

    folder = tempfile.mkdtemp(prefix="jk-bench-", dir="/tmp")

    try:
        subprocess.run([*judgekit_command(), "--version"], capture_output=True, env=_env(folder), timeout=60,
                       check=True)
        deadline = time.monotonic() + 60
        while not warm.servers(folder):
            if time.monotonic() > deadline:
                raise AssertionError("no warm server started")
            time.sleep(0.1)
        log(f"  warm server: pid {warm.servers(folder)[0]['pid']}")
        yield folder, lambda: warm.servers(folder)[0]["served"]
    finally:
        warm.stop_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _api_round(src: Path, out: Path, store: Path, server: Any, latency_ms: int, concurrency: int, judge_model: str,
               rubric_path: Path) -> float:
    """``judgekit.judge`` in this process on the same file and server (what the command runs inside)."""
    import judgekit

    gc.collect()
    t0 = time.perf_counter()
    judgekit.judge(src, str(rubric_path), judge_model, api_base=server.base(latency_ms), store=store, out=out,
                   concurrency=concurrency)
    return time.perf_counter() - t0


def phase_cli(server: Any, tmp: Path, n: int, rounds: int, make_responses: Any, latency_ms: int, concurrency: int,
              judge_model: str, rubric_path: Path, log: Any = print) -> dict[str, Any]:
    """``judgekit judge`` end to end, ``rounds`` times (median), each into a fresh store and results file: warm
    (a warm server is running, as for every command after a user's first) and cold (``JUDGEKIT_SERVER=0``: the
    command in its own process, as the first command), alternating with ``judgekit.judge`` in this process on the
    same file (after one untimed in-process run: its imports are not charged to it), so that the command's own
    cost is the difference of two medians taken in the same minutes."""
    compile_package()
    src = tmp / "cli-responses.jsonl"
    src.write_text("".join(r.model_dump_json() + "\n" for r in make_responses(n, "cli")), encoding="utf-8")
    _api_round(src, tmp / "api-warm.jsonl", tmp / "api-warm.sqlite", server, latency_ms, concurrency, judge_model,
               rubric_path)
    walls: list[float] = []
    cold_walls: list[float] = []
    api_walls: list[float] = []
    with warm_server(log) as (folder, served):
        served_before = served()
        for r in range(rounds):
            def command(tag: str, env: dict[str, str], r: int = r) -> float:
                out, store = tmp / f"cli-{tag}-{r}.jsonl", tmp / f"cli-{tag}-{r}.sqlite"
                cmd = [*judgekit_command(), "judge", str(src), "--rubric", str(rubric_path), "--judge", judge_model,
                       "--api-base", server.base(latency_ms), "--store", str(store), "--out", str(out),
                       "--concurrency", str(concurrency), "--no-progress"]
                before = server.requests()
                gc.collect()
                t0 = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
                wall = time.perf_counter() - t0
                if done.returncode != 0:
                    raise AssertionError(f"judgekit judge exited {done.returncode}: {done.stderr[-2000:]}")
                got = server.requests() - before
                lines = out.read_text(encoding="utf-8").count("\n")
                if got != n or lines != n:
                    raise AssertionError(f"judgekit judge: {got} requests and {lines} results for {n} responses")
                if f"{n} judgments ->" not in done.stdout:
                    raise AssertionError("judgekit judge printed no summary")
                return wall

            def in_process(r: int = r) -> float:
                return _api_round(src, tmp / f"api-{r}.jsonl", tmp / f"api-{r}.sqlite", server, latency_ms,
                                  concurrency, judge_model, rubric_path)

            steps = [lambda: walls.append(command("warm", _env(folder))), lambda: api_walls.append(in_process()),
                     lambda: cold_walls.append(command("cold", _env())),]
            for step in steps if r % 2 == 0 else steps[::-1]:
                step()
            log(f"  round {r + 1}/{rounds}: judge command {walls[-1]:.3f} s ({n / walls[-1]:.0f} req/s) warm, "
                f"{cold_walls[-1]:.3f} s cold; judgekit.judge in process {api_walls[-1]:.3f} s")
        if served() - served_before != rounds:
            raise AssertionError(f"the warm server ran {served() - served_before} of the {rounds} warm commands")
    wall, cold, api_wall = statistics.median(walls), statistics.median(cold_walls), statistics.median(api_walls)
    ideal = n * latency_ms / 1000 / concurrency
    bare = bare_client_wall(server, src, n, latency_ms, concurrency, rounds=max(1, min(3, rounds)))
    start = start_floor(runs=max(3, rounds))
    log(f"  floors: the bare HTTP client alone {bare:.3f} s ({ideal / bare:.3f} of the ideal); python start + "
        f"{' + '.join(FLOOR_IMPORTS)} {start:.3f} s")
    return {"n": n, "rounds": rounds, "walls_s": walls, "wall_s": wall, "req_per_s": n / wall, "ideal_s": ideal,
            "ratio": ideal / wall, "cold_walls_s": cold_walls, "cold_wall_s": cold, "cold_ratio": ideal / cold,
            "api_walls_s": api_walls, "api_wall_s": api_wall, "api_ratio": ideal / api_wall,
            "overhead_s": wall - api_wall, "cold_overhead_s": cold - api_wall, "bare_client_s": bare,
            "bare_ratio": ideal / bare, "start_floor_s": start, "bound_ratio": ideal / (bare + start)}


#: What any Python command that validates its input with pydantic, reads a YAML rubric, keeps a SQLite store and
#: speaks HTTP with asyncio imports before its first call (judgekit's own modules not counted).
FLOOR_IMPORTS = ("asyncio", "sqlite3", "pydantic", "yaml")


def bare_client_wall(server: Any, src: Path, n: int, latency_ms: int, concurrency: int, rounds: int) -> float:
    """The calls alone: judgekit's HTTP client (``judgekit.judging.backends.http``), no runner, ``n`` POSTs of a
    judge request of the same size as the command's, ``concurrency`` in flight; median wall of ``rounds``. The
    best a client can do against this server: the rest of the command's wall is its own work."""
    import asyncio
    import json

    from judgekit.io.dataio import read_responses
    from judgekit.judging.backends.http import HttpClient
    from judgekit.judging.prompt import build_messages
    from judgekit.judging.rubric import load_rubric

    rubric = load_rubric(ROOT / "rubrics" / "robustmad.yaml")
    first = read_responses(src)[0]
    body = json.dumps({"model": "bench", "messages": build_messages(rubric, first), "temperature": 0.0,
                        "max_tokens": 512, "seed": 0}).encode()
    url = server.base(latency_ms) + "/chat/completions"

    async def calls() -> None:
        client = HttpClient({"Content-Type": "application/json"})
        left = iter(range(n))

        async def lane() -> None:
            for _ in left:
                reply = await client.post(url, body)
                if reply.status != 200:
                    raise AssertionError(f"the bare client got HTTP {reply.status}")

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        await client.close()

    walls = []
    for _ in range(rounds):
        before = server.requests()
        t0 = time.perf_counter()
        asyncio.run(calls())
        walls.append(time.perf_counter() - t0)
        if server.requests() - before != n:
            raise AssertionError("the bare client: the server did not receive one request per call")
    return statistics.median(walls)


def start_floor(runs: int) -> float:
    """Median seconds of ``python -c "import asyncio, sqlite3, pydantic, yaml"`` (:data:`FLOOR_IMPORTS`)."""
    return _median_run([sys.executable, "-c", "import " + ", ".join(FLOOR_IMPORTS)], runs)[0]


def _median_run(cmd: list[str], runs: int, warm_dir: str | None = None) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(warm_dir), timeout=60)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-1000:]}")
    return statistics.median(times), times


def phase_startup(runs: int = 10, log: Any = print) -> dict[str, Any]:
    """Medians of ``runs`` starts of ``judgekit --help`` and of ``judgekit rubric check``, cold (each command in
    its own process, ``JUDGEKIT_SERVER=0``) and warm (a warm server running), after one untimed start of each
    (the file system's cache is warm, as for a user's second command)."""
    compile_package()
    rubric = str(ROOT / "rubrics" / "robustmad.yaml")
    result: dict[str, Any] = {"runs": runs}
    with warm_server(log) as (folder, served):
        before = served()
        for name, args in (("help", ["--help"]), ("rubric_check", ["rubric", "check", rubric])):
            cmd = [*judgekit_command(), *args]
            for kind, where in (("", None), ("warm_", folder)):
                _median_run(cmd, 1, where)  # warm the file system cache
                median, times = _median_run(cmd, runs, where)
                result[f"{kind}{name}_s"] = median
                result[f"{kind}{name}_times_s"] = times
                log(f"  judgekit {' '.join(args[:2])}: median {median:.3f} s over {runs} runs "
                    f"({'warm' if where else 'cold'})")
        if served() - before != 2 * (runs + 1):
            raise AssertionError("the warm server did not run every warm start")
    return result


def _judgments(n: int) -> list[Any]:
    """``n`` scored judgments as a judging run makes them (one sample each, five categories)."""
    from judgekit.io.records import Judgment, SampleResult

    cats = ("object", "anomaly", "localisation", "comparison", "unanswerable")
    out = []
    for i in range(n):
        s = {"technical_accuracy": 1 + i % 5, "comprehensiveness": 3, "relevance": 5, "style_and_clarity": 4}
        overall = 1 + (i * 7) % 5
        sample = SampleResult(sample=0, status="scored", scores={**s, "overall": overall}, attempts=1,
                              rationale="Right on the main point; leaves out the location detail.")
        out.append(Judgment(id=f"w{i:06d}", model=f"model-{i % 4}", category=cats[i % 5], judge="openai/bench",
                            status="scored", scores={k: float(v) for k, v in s.items()}, overall=float(overall),
                            passed=overall >= 3, flags={"is_accurate": s["technical_accuracy"] >= 3},
                            spread={k: 0.0 for k in s}, rationale=sample.rationale, samples=[sample],
                            rubric="robustmad", rubric_version="1.0", temperature=0.0, seed=0, tokens_in=900,
                            tokens_out=40, latency_s=0.1, calls=1))
    return out


def phase_write_summary(n: int = 50_000, rounds: int = 3, log: Any = print) -> dict[str, Any]:
    """The results write (``write_records`` to .jsonl) and the printed summary (``print_summary``) of ``n``
    judgments, in process; medians of ``rounds``."""
    from rich.console import Console

    from judgekit.cli._common import print_summary
    from judgekit.io.dataio import read_judgments, write_records

    criteria = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity"]
    js = _judgments(n)
    writes, summaries = [], []
    with tempfile.TemporaryDirectory(prefix="judgekit-bench-f-") as tmpdir:
        path = Path(tmpdir) / "results.jsonl"
        for r in range(rounds):
            gc.collect()
            t0 = time.perf_counter()
            write_records(path, js)
            t1 = time.perf_counter()
            with open(os.devnull, "w", encoding="utf-8") as null:
                print_summary(js, criteria, Console(file=null, width=200))
            t2 = time.perf_counter()
            writes.append(t1 - t0)
            summaries.append(t2 - t1)
            log(f"  round {r + 1}/{rounds}: write {t1 - t0:.3f} s, summary {t2 - t1:.3f} s")
        back = read_judgments(path)  # the file must read back as the same judgments
        if len(back) != n or back[-1] != js[-1]:
            raise AssertionError("the results file does not read back as the judgments written")
    write, summary = statistics.median(writes), statistics.median(summaries)
    return {"n": n, "rounds": rounds, "write_s": write, "summary_s": summary, "total_s": write + summary,
            "writes_s": writes, "summaries_s": summaries}


def rows(results: dict[str, Any], row: Any, concurrency: int) -> None:
    """Add phases D, E and F to the benchmark's table (``row`` as in ``bench_runner.rows_of``)."""
    if "cli" in results:
        d = results["cli"]
        if "lean" in results:
            row("D command", "phase A (Runner in process), ideal/wall", results["lean"]["ratio"], ".3f")
        row("D command", "judgekit.judge in process (same file, alternating rounds), ideal/wall", d["api_ratio"],
            ".3f")
        row("D command", "the command's own cost s (command wall - in-process wall, medians)", d["overhead_s"],
            ".3f")
        row("D command", f"judgekit judge wall s ({d['n']} judgments, 100 ms, {concurrency} in flight, process "
            "start to exit), warm server", d["wall_s"], ".3f")
        row("D command", "judgekit judge req/s, warm server", d["req_per_s"], ".0f")
        row("D command", f"ideal/wall (ideal {d['ideal_s']:.3f} s), warm server", d["ratio"], ".3f",
            f">= {TARGET_CLI_RATIO}", d["ratio"] >= TARGET_CLI_RATIO)
        if "cold_wall_s" in d:
            row("D command", "judgekit judge wall s, cold (JUDGEKIT_SERVER=0: the command in its own process)",
                d["cold_wall_s"], ".3f")
            row("D command", "ideal/wall, cold", d["cold_ratio"], ".3f")
        if "bare_client_s" in d:
            row("D floor", "the bare HTTP client alone, same calls (no runner, no start), ideal/wall", d["bare_ratio"],
                ".3f")
            row("D floor", f"python start + import {', '.join(FLOOR_IMPORTS)} s (median)", d["start_floor_s"], ".3f")
            row("D floor", "bound: ideal / (bare client wall + that start)", d["bound_ratio"], ".3f")
    if "startup" in results:
        e = results["startup"]
        row("E start-up", f"judgekit --help, median of {e['runs']} s, cold", e["help_s"], ".3f",
            f"<= {TARGET_START_S}", e["help_s"] <= TARGET_START_S)
        row("E start-up", f"judgekit rubric check, median of {e['runs']} s, cold", e["rubric_check_s"], ".3f",
            f"<= {TARGET_START_S}", e["rubric_check_s"] <= TARGET_START_S)
        if "warm_help_s" in e:
            row("E start-up", f"judgekit --help, median of {e['runs']} s, warm server", e["warm_help_s"], ".3f",
                f"<= {TARGET_START_S}", e["warm_help_s"] <= TARGET_START_S)
            row("E start-up", f"judgekit rubric check, median of {e['runs']} s, warm server", e["warm_rubric_check_s"],
                ".3f", f"<= {TARGET_START_S}", e["warm_rubric_check_s"] <= TARGET_START_S)
    if "write_summary" in results:
        f = results["write_summary"]
        row("F write+summary", f"results write s ({f['n']} judgments, .jsonl)", f["write_s"], ".3f")
        row("F write+summary", "summary s (print_summary)", f["summary_s"], ".3f")
        row("F write+summary", "write + summary s", f["total_s"], ".3f", f"<= {TARGET_WRITE_SUMMARY_S}",
            f["total_s"] <= TARGET_WRITE_SUMMARY_S)
