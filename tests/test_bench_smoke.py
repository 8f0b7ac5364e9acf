"""Keeps bench/bench_runner.py from rotting: a very small run of its lean phase and its re-run-from-store
phase, checking correctness only (every response scored, the re-run makes no call). No timing assertions:
the figures belong to the benchmark itself (``python bench/bench_runner.py``)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from judgekit.judging.backends import JudgeSpec
from judgekit.judging.runner import Runner, RunOptions
from judgekit.judging.store import Store

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_runner.py"

pytestmark = pytest.mark.slow


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_runner", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_bench_runner_small(tmp_path: Path) -> None:
    bench = _load_bench()
    lines: list[str] = []
    with bench.LoopbackServer() as server:
        lean = bench.phase_lean(server, tmp_path, n=50, rounds=1, log=lines.append)
        requests_before = server.requests()
        store = bench.phase_store(server, tmp_path, n=50, rounds=1, log=lines.append)
        # the fill made 50 calls; the re-run, none (phase_store also asserts it)
        assert server.requests() - requests_before == 50
    assert lean["n"] == 50 and lean["wall_s"] > 0
    assert store["rerun_calls_made"] == 0 and store["rerun_server_requests"] == 0
    rows = bench.rows_of({"lean": lean, "store": store})
    table = bench.markdown(rows)
    assert "re-run stored judgments/s" in table and "ideal/wall" in table
    json.dumps(rows)  # the JSON output must stay serialisable


def test_bench_checks_catch_an_unscored_run(tmp_path: Path) -> None:
    """The benchmark's own correctness checks must fail loudly, not time a broken run."""
    bench = _load_bench()
    rubric = bench.load_rubric()
    responses = bench.make_responses(3, "bad")
    # a server address where nothing listens: every judgment ends unscored
    spec = JudgeSpec(model=bench.JUDGE_MODEL, api_base="http://127.0.0.1:9/v1", backend="lean", timeout=2.0)
    with Store(tmp_path / "bad.sqlite") as store:
        runner = Runner(responses, rubric, [spec], store, RunOptions(retries=0))
        report = asyncio.run(runner.run())
    with pytest.raises(AssertionError, match="unscored"):
        bench.check_all_scored(report, 3, calls_made=0)


def _load(name: str) -> ModuleType:
    path = BENCH.with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_perturb_small() -> None:
    """Every contender of bench/bench_perturb.py runs on a small image (the libraries that are installed) and
    judgekit's outputs keep the image's shape; no timing is checked."""
    bench = _load("bench_perturb")
    images = bench.make_images(1, size=64)
    groups, _missing = bench.contenders()
    figures = bench.measure(groups, images, rounds=1, log=lambda s: None)
    assert set(figures) == {"motion_blur", "low_light"}
    for fns in groups.values():
        for name, fn in fns.items():
            if name.startswith("judgekit"):
                out = fn(images[0])
                assert out.shape == images[0].shape and out.dtype == images[0].dtype, name


def test_bench_robustness_small() -> None:
    bench = _load("bench_robustness")
    judgments = bench.synthetic(2, 30, ["a", "b"], ["blur", "dark"], 2)
    from judgekit.stats.robustness import compare_conditions

    rows = compare_conditions(judgments, ["a", "b"], n_boot=50)
    assert {r.condition for r in rows} == {"blur", "dark", "degraded (all)"}


def test_bench_agreement_small() -> None:
    bench = _load("bench_agreement")
    judge, humans, group, system = bench.synthetic(200, 3, 20, 4, "ordinal")
    assert humans.shape == (200, 3) and judge.shape == (200,)
    points = bench.point_timings(judge, humans, group, system, "ordinal")
    assert "krippendorff_alpha (ordinal)" in points and all(t >= 0 for t in points.values())


def test_bench_cli_phases_small(tmp_path: Path) -> None:
    """Phases D-F of bench/bench_runner.py (bench/bench_cli.py) on tiny sizes: the judge command against the
    loopback server (every request made, every result written), the start-up commands, and the results write and
    summary; correctness only."""
    bench = _load_bench()
    cli = _load("bench_cli")
    lines: list[str] = []
    with bench.LoopbackServer() as server:
        d = cli.phase_cli(server, tmp_path, 20, 1, bench.make_responses, 10, 8, bench.JUDGE_MODEL, bench.RUBRIC_PATH,
                          log=lines.append)
    e = cli.phase_startup(runs=1, log=lines.append)
    f = cli.phase_write_summary(200, rounds=1, log=lines.append)
    assert d["n"] == 20 and d["wall_s"] > 0 and d["cold_wall_s"] > 0 and d["api_wall_s"] > 0
    assert e["help_s"] > 0 and e["rubric_check_s"] > 0 and f["write_s"] > 0
    assert e["warm_help_s"] > 0 and e["warm_rubric_check_s"] > 0  # (the phases check that the server ran them)
    rows = bench.rows_of({"cli": d, "startup": e, "write_summary": f})
    table = bench.markdown(rows)
    assert "judgekit judge wall s" in table and "judgekit --help" in table and "write + summary s" in table
