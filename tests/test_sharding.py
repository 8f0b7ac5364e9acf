"""``judgekit store merge`` (judgekit.judging.merge) and sharded runs on Ray (judgekit.judging.sharding).

The merge tests build real stores with the ordinary runner against the scripted loopback server. The Ray tests
(marked slow, skipped without Ray) start a local 2-CPU cluster and run two workers against two scripted servers
(worker k sends to server k): the judgments must equal a plain run's, every call must be stored once, a re-run
makes no call, and a worker killed mid-run loses at most its calls in flight.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.merge import merge_stores
from judgekit.judging.rubric import load_rubric
from judgekit.judging.runner import Runner, RunOptions
from judgekit.judging.store import Store
from tests.scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "rubrics" / "robustmad.yaml"


def _responses(n: int, tag: str = "r", script: str = "") -> list[Response]:
    return [Response(id=f"{tag}{i:04d}", question=f"Is part {i} damaged? {script}", reference=f"A scratch on {i}.",
                     category="object", model="m1" if i % 2 else "m2", response=f"Part {i} has a scratch ({tag}).")
            for i in range(n)]


def _spec(base: str, model: str = "openai/scripted", **kw: Any) -> JudgeSpec:
    return JudgeSpec(model=model, api_base=base, backend="lean", **kw)  # type: ignore[arg-type]


def _run(responses: list[Response], spec: JudgeSpec, path: Path, rubric: Any = None) -> Any:
    with Store(path) as st:
        return Runner(responses, rubric or load_rubric(RUBRIC), [spec], st, RunOptions(concurrency=8)).run_sync()


def _rows(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT key, attempt, status, reply FROM calls ORDER BY key, attempt").fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def server() -> Any:
    with ScriptedServer() as s:
        yield s


# ---- merge --------------------------------------------------------------------------------------------------
def test_merge_into_new_target_idempotent(server: ScriptedServer, tmp_path: Path) -> None:
    spec = _spec(server.base_url)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    _run(_responses(6, "a"), spec, a)
    _run(_responses(4, "b"), spec, b)
    _run(_responses(2, "a"), spec, b)  # overlap: the same two calls as in a (same key, same reply)
    target = tmp_path / "new" / "s.sqlite"
    rep = merge_stores([a, b], target)
    assert [s.added for s in rep.sources] == [6, 4]
    assert [s.skipped for s in rep.sources] == [0, 2]
    assert rep.conflicts == 0
    assert sorted(_rows(target)) == sorted(set(_rows(a)) | set(_rows(b)))
    again = merge_stores([a, b], target)
    assert again.added == 0 and again.skipped == 12 and again.conflicts == 0
    # a run on the merged store pays for nothing
    before = server.requests
    report = _run(_responses(6, "a") + _responses(4, "b"), spec, target)
    assert report.calls_made == 0 and server.requests == before
    assert all(j.status == "scored" for j in report.judgments)


def test_merge_reports_conflicts_never_overwrites(server: ScriptedServer, tmp_path: Path) -> None:
    spec = _spec(server.base_url)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    _run(_responses(3, "c"), spec, a)
    _run(_responses(3, "c"), spec, b)
    db = sqlite3.connect(b)
    key = db.execute("SELECT key FROM calls ORDER BY key LIMIT 1").fetchone()[0]
    db.execute("UPDATE calls SET reply='{\"other\": 1}' WHERE key=?", (key,))
    db.commit()
    db.close()
    target_before = _rows(a)
    rep = merge_stores([b], a)
    assert rep.conflicts == 1 and rep.sources[0].conflict_rows == [(key, 0)]
    assert rep.added == 0 and rep.skipped == 2
    assert _rows(a) == target_before  # the target's reply is kept


def test_merge_refuses_other_judge_or_rubric(server: ScriptedServer, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    _run(_responses(3, "d"), _spec(server.base_url), a)
    _run(_responses(3, "d"), _spec(server.base_url, temperature=0.7), b)
    rubric = load_rubric(RUBRIC)
    other = rubric.model_copy(update={"version": rubric.version + "-other"})
    _run(_responses(3, "d"), _spec(server.base_url), c, rubric=other)
    before = _rows(a)
    with pytest.raises(JudgekitError, match="another judge identity"):
        merge_stores([b], a)
    with pytest.raises(JudgekitError, match="another rubric"):
        merge_stores([c], a)
    assert _rows(a) == before
    # the first source of a sequence is merged (one transaction each), the refused one leaves nothing
    d = tmp_path / "d.sqlite"
    with pytest.raises(JudgekitError, match="another judge identity"):
        merge_stores([a, b], d)
    assert sorted(_rows(d)) == sorted(before)
    assert merge_stores([b], a, allow_mixed=True).added == 3


def test_merge_refuses_non_store_and_self(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    with pytest.raises(JudgekitError, match="not a judgekit store"):
        merge_stores([bad], tmp_path / "t.sqlite")
    ok = tmp_path / "ok.sqlite"
    Store(ok).close()
    with pytest.raises(JudgekitError, match="target itself"):
        merge_stores([ok], ok)


def _judgekit(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("judgekit")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "judgekit.cli"]
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", NO_COLOR="1")
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_store_merge(server: ScriptedServer, tmp_path: Path) -> None:
    spec = _spec(server.base_url)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    _run(_responses(5, "e"), spec, a)
    _run(_responses(3, "f"), spec, b)
    target = tmp_path / "merged.sqlite"
    p = _judgekit("store", "merge", str(a), str(b), "--into", str(target))
    assert p.returncode == 0, p.stderr
    assert "8 calls added" in p.stdout
    p = _judgekit("store", "merge", str(a), str(b), "--into", str(target))
    assert p.returncode == 0 and "0 calls added" in p.stdout
    db = sqlite3.connect(b)
    db.execute("UPDATE calls SET reply='x' WHERE key=(SELECT MIN(key) FROM calls)")
    db.commit()
    db.close()
    p = _judgekit("store", "merge", str(b), "--into", str(target))
    assert p.returncode == 3 and "conflict" in p.stderr
    other = tmp_path / "other.sqlite"
    _run(_responses(2, "g"), _spec(server.base_url, seed=7), other)
    p = _judgekit("store", "merge", str(other), "--into", str(target))
    assert p.returncode == 2 and "another judge identity" in p.stderr and "Traceback" not in p.stderr


# ---- Ray ----------------------------------------------------------------------------------------------------
def _ray() -> Any:
    return pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = _ray()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture()
def two_servers() -> Any:
    with ScriptedServer() as s1, ScriptedServer() as s2:
        yield s1, s2


def _comparable(judgments: list[Any]) -> list[dict[str, Any]]:
    return [j.model_dump(exclude={"latency_s"}) for j in judgments]


@pytest.mark.slow
def test_ray_sharded_equals_plain_and_rerun_is_free(ray_cluster: Any, two_servers: Any, tmp_path: Path) -> None:
    from judgekit.judging.sharding import leftover_shards, run_sharded

    s1, s2 = two_servers
    rubric = load_rubric(RUBRIC)
    responses = _responses(40, "h") + _responses(4, "m", "[[script:malformed_then_valid]]")
    plain = _run(responses, _spec(s1.base_url), tmp_path / "plain.sqlite", rubric)
    s1.reset()
    store = tmp_path / "sharded.sqlite"
    t0 = time.perf_counter()
    rep = run_sharded(responses, rubric, [_spec(s1.base_url)], RunOptions(concurrency=8), store, workers=2,
                      worker_api_bases=[s1.base_url, s2.base_url], warm_up=False)
    assert time.perf_counter() - t0 < 120
    assert _comparable(rep.judgments) == _comparable(plain.judgments)
    assert rep.calls_made == plain.calls_made == 48 and rep.calls_cached == 0
    assert s1.requests > 0 and s2.requests > 0 and s1.requests + s2.requests == 48  # both workers worked
    rows = _rows(store)
    assert len(rows) == len({(k, a) for k, a, *_ in rows}) == 48
    assert sorted(r[:3] for r in rows) == sorted(r[:3] for r in _rows(tmp_path / "plain.sqlite"))
    assert leftover_shards(store) == []
    again = run_sharded(responses, rubric, [_spec(s1.base_url)], RunOptions(concurrency=8), store, workers=2)
    assert again.calls_made == 0 and again.calls_cached == 48 and s1.requests + s2.requests == 48
    assert [j.scores for j in again.judgments] == [j.scores for j in plain.judgments]


@pytest.mark.slow
def test_ray_killed_worker_resumes_nothing_repaid(ray_cluster: Any, two_servers: Any, tmp_path: Path) -> None:
    from judgekit.judging.sharding import NOT_RUN_WORKER, leftover_shards, run_sharded

    ray = ray_cluster
    s1, s2 = two_servers
    rubric = load_rubric(RUBRIC)
    n = 40
    responses = _responses(n, "k", "[[script:slow=0.1]]")
    store = tmp_path / "s.sqlite"
    concurrency = 2

    def killer(actors: list[Any]) -> None:
        def go() -> None:
            deadline = time.monotonic() + 60
            while s1.requests < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            ray.kill(actors[0], no_restart=True)

        threading.Thread(target=go, daemon=True).start()

    opts = RunOptions(concurrency=concurrency)
    rep = run_sharded(responses, rubric, [_spec(s1.base_url)], opts, store, workers=2, shard_retries=0,
                      worker_api_bases=[s1.base_url, s2.base_url], on_actors=killer, warm_up=False)
    lost = [j for j in rep.judgments if j.reason == NOT_RUN_WORKER]
    assert lost and rep.transport_failures == len(lost)
    assert all(j.status == "scored" for j in rep.judgments if j.reason != NOT_RUN_WORKER)
    assert leftover_shards(store) == []  # merged into the main store
    stored = {k for k, *_ in _rows(store)}
    assert len(stored) == n - len(lost) and s2.requests == n // 2
    first_requests = s1.requests
    # resume (plain run, one server): only the lost calls are made
    resumed = _run(responses, _spec(s1.base_url), store, rubric)
    assert resumed.calls_made == len(lost) and all(j.status == "scored" for j in resumed.judgments)
    assert len(_rows(store)) == n
    # nothing stored was repaid: server 1 got each key at most once more than in-flight at the kill
    assert s1.requests - first_requests == len(lost)
    assert first_requests - (n // 2 - len(lost)) <= concurrency  # only the calls in flight at the kill were lost
    assert json.dumps([j.scores for j in resumed.judgments])


@pytest.mark.slow
def test_ray_killed_worker_retried_and_leftovers_merged(ray_cluster: Any, two_servers: Any, tmp_path: Path) -> None:
    from judgekit.judging.sharding import run_sharded, shard_path

    ray = ray_cluster
    s1, s2 = two_servers
    rubric = load_rubric(RUBRIC)
    n = 30
    responses = _responses(n, "q", "[[script:slow=0.1]]")
    store = tmp_path / "s.sqlite"
    # a leftover shard store of an earlier run (driver killed): merged first, its calls not paid again
    _run(responses[:3], _spec(s1.base_url), shard_path(store, 5), rubric)
    s1.reset()

    def killer(actors: list[Any]) -> None:
        def go() -> None:
            deadline = time.monotonic() + 60
            while s1.requests < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            ray.kill(actors[0], no_restart=True)

        threading.Thread(target=go, daemon=True).start()

    rep = run_sharded(responses, rubric, [_spec(s1.base_url)], RunOptions(concurrency=2), store, workers=2,
                      shard_retries=1, worker_api_bases=[s1.base_url, s2.base_url], on_actors=killer,
                      warm_up=False)
    assert all(j.status == "scored" for j in rep.judgments)
    assert rep.calls_cached == 3 and rep.transport_failures == 0
    rows = _rows(store)
    assert len(rows) == len({(k, a) for k, a, *_ in rows}) == n
    assert not shard_path(store, 5).exists()
    assert s1.requests + s2.requests - (n - 3) <= 2  # only calls in flight at the kill were sent twice


@pytest.mark.slow
def test_ray_warm_up_hands_over_nothing_lost_or_repaid(ray_cluster: Any, two_servers: Any, tmp_path: Path) -> None:
    """The driver judges (against server 1) until the actors answer, then the shards (server 2) take the rest:
    every call made once, the judgments those of a plain run, the accounting summed over both phases."""
    from judgekit.judging.sharding import leftover_shards, run_sharded

    s1, s2 = two_servers
    rubric = load_rubric(RUBRIC)
    n = 200  # at 2 x 10 calls/s the warm-up alone would take 10 s; the actors of a running cluster answer in ~1 s
    responses = _responses(n - 4, "w", "[[script:slow=0.1]]") + _responses(4, "x", "[[script:malformed_then_valid]]")
    plain = _run(responses, _spec(s2.base_url), tmp_path / "plain.sqlite", rubric)
    s2.reset()
    notes: list[str] = []
    progress: list[tuple[int, int]] = []
    store = tmp_path / "s.sqlite"
    rep = run_sharded(responses, rubric, [_spec(s1.base_url)], RunOptions(concurrency=2), store, workers=2,
                      worker_api_bases=[s2.base_url], notify=notes.append,
                      progress=lambda d, t, c: progress.append((d, t)))
    assert s1.requests > 0 and s2.requests > 0  # both phases judged
    assert s1.requests + s2.requests == n + 4 == rep.calls_made and rep.calls_cached == 0  # 4 re-asks
    assert any(f"{s1.requests} call(s) made in this process" in t for t in notes)
    assert sum(v["calls"] for v in rep.per_server.values()) == n + 4  # the warm-up's server and the shards'
    assert _comparable(rep.judgments) == _comparable(plain.judgments)
    assert all(j.status == "scored" for j in rep.judgments) and rep.transport_failures == 0
    rows = _rows(store)
    assert len(rows) == len({(k, a) for k, a, *_ in rows}) == n + 4 and leftover_shards(store) == []
    assert progress[-1] == (n, n) and all(a[0] <= b[0] for a, b in itertools.pairwise(progress))
    again = run_sharded(responses, rubric, [_spec(s1.base_url)], RunOptions(concurrency=2), store, workers=2)
    assert again.calls_made == 0 and again.calls_cached == n + 4 and s1.requests + s2.requests == n + 4


def test_ray_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from judgekit.api import judge

    real = builtins.__import__

    def fake(name: str, *a: Any, **k: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(JudgekitError, match=r"pip install 'judgekit\[ray\]'"):
        judge(_responses(2), RUBRIC, "openai/x", api_base="http://127.0.0.1:9/v1", backend="lean",
              store=tmp_path / "s.sqlite", ray="local")
    assert not (tmp_path / "s.sqlite").exists()
    with pytest.raises(JudgekitError, match="needs --ray"):
        judge(_responses(2), RUBRIC, "openai/x", api_base="http://127.0.0.1:9/v1", backend="lean",
              store=tmp_path / "s.sqlite", workers=2)


@pytest.mark.slow
def test_cli_judge_ray_local(server: ScriptedServer, tmp_path: Path) -> None:
    _ray()
    data = tmp_path / "responses.jsonl"
    data.write_text("".join(json.dumps(r.model_dump(exclude_defaults=True)) + "\n" for r in _responses(12, "z")))
    store, out = tmp_path / "s.sqlite", tmp_path / "results.jsonl"
    before = server.requests
    args = ["judge", str(data), "--rubric", str(RUBRIC), "--judge", "openai/scripted", "--api-base", server.base_url,
            "--backend", "lean", "--store", str(store), "--out", str(out), "--no-progress"]
    p = _judgekit(*args, "--ray", "local", "--workers", "2")
    assert p.returncode == 0, p.stderr
    assert server.requests - before == 12 and len(out.read_text().splitlines()) == 12
    assert len(_rows(store)) == 12 and not list(tmp_path.glob("s.sqlite.shard-*"))
    p = _judgekit(*args, "--ray", "--workers", "2")
    assert p.returncode == 0, p.stderr
    assert server.requests - before == 12  # the re-run made no call


@pytest.mark.slow
def test_cli_ctrl_c_during_the_warm_up_loses_and_repays_nothing(tmp_path: Path) -> None:
    """Ctrl-C while the local cluster starts (the driver judging meanwhile): exit 130 with the interrupted
    note, no traceback, no shard store left; the calls in flight finish and are stored, so the re-run pays only
    what was never sent."""
    import signal

    _ray()
    n = 60
    data = tmp_path / "responses.jsonl"
    data.write_text("".join(json.dumps(r.model_dump(exclude_defaults=True)) + "\n"
                            for r in _responses(n, "c", "[[script:slow=0.2]]")))
    store, out = tmp_path / "s.sqlite", tmp_path / "results.jsonl"
    with ScriptedServer() as srv:
        args = ["judge", str(data), "--rubric", str(RUBRIC), "--judge", "openai/scripted", "--api-base",
                srv.base_url, "--backend", "lean", "--store", str(store), "--out", str(out), "--no-progress",
                "--concurrency", "2"]
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "judgekit.cli", *args, "--ray", "local", "--workers", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and srv.requests < 4:  # the warm-up is judging
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        first = srv.requests
        assert 0 < first < n and not out.exists() and not list(tmp_path.glob("s.sqlite.shard-*"))
        assert len(_rows(store)) == first  # every call sent was stored
        p = _judgekit(*args)  # resumed as a plain run
        assert p.returncode == 0, p.stderr
        assert srv.requests == n and len(_rows(store)) == n  # nothing paid twice
        assert len(out.read_text().splitlines()) == n
