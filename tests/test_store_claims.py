"""Runs sharing one store never pay a call twice (issue 10, point 3).

Unit tests of :meth:`Store.claim_many` (leases, a fake other host, dead and reused pids, attempts stored by
another run) and end-to-end tests with real ``judgekit judge`` / ``judgekit generate`` processes started at
the same moment against the scripted loopback server, which counts the requests of every response.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import RUBRIC, _env, _judgekit_cmd, flat, read_jsonl, write_jsonl

from judgekit.io.records import Response
from judgekit.judging.runner import ClaimScheduler
from judgekit.judging.store import Store, StoredCall

MARKER_RE = re.compile(r"<<(r\d{3})>>")


def _response(i: int = 0) -> Response:
    return Response(id=f"r{i}", model="m", question=f"q{i}", reference="ref", response="a")


def _add(store: Store, key: str, attempt: int, status: str) -> None:
    store.add_call(key=key, attempt=attempt, status=status, response=_response(), judge="j", sample=0,
                   reply="{}", scores={"a": 3} if status == "ok" else None, rationale=None,
                   reason=None if status == "ok" else "bad", tokens_in=1, tokens_out=1, cost=None, latency_s=0.1,
                   temperature=0.0, seed=None, settings={}, rubric="r", rubric_version="1")


def _claim_rows(path: Path) -> list[tuple[str, str, int, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT key, owner, pid, host FROM claims ORDER BY key").fetchall()
    finally:
        db.close()


# ---- unit tests of the claims --------------------------------------------------------------------------


def test_lease_of_another_host_holds_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as other, Store(path) as mine:
        other.host, other.lease_s = "other-host.example", 0.4
        assert other.claim("k1") is None
        assert mine.claim("k1") == (other.pid, "other-host.example")  # a live lease elsewhere: not ours
        time.sleep(0.25)
        other.renew()  # the heartbeat extends the lease
        time.sleep(0.25)
        assert mine.claim("k1") == (other.pid, "other-host.example")
        time.sleep(0.3)  # no heartbeat: the lease expires and the key is free
        assert mine.claim("k1") is None
        assert other.claim("k1") == (mine.pid, mine.host)
        assert [r[1] for r in _claim_rows(path)] == [mine.owner]
        mine.release(["k1"])
        assert _claim_rows(path) == []


def test_dead_pid_on_this_host_and_reused_pid_are_taken_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid is free
    alive = subprocess.Popen(["sleep", "30"])
    try:
        with Store(path) as a, Store(path) as b:
            a.lease_s = 3600.0
            a.pid = dead.pid
            assert a.claim("dead") is None
            a.pid = alive.pid
            assert a.claim("alive") is None
            a.pid = b.pid  # a claim under our own pid but another owner token: a previous process, pid reused
            assert a.claim("reused") is None
            got = b.claim_many({"dead": 0, "alive": 0, "reused": 0, "free": 0})
            assert got.held == {"alive": (alive.pid, a.host)}
            owners = {key: owner for key, owner, _, _ in _claim_rows(path)}
            assert owners == {"dead": b.owner, "reused": b.owner, "free": b.owner, "alive": a.owner}
            b.close()
            assert {key for key, *_ in _claim_rows(path)} == {"alive"}  # close releases every claim of b
    finally:
        alive.kill()
        alive.wait()


def test_claim_reports_attempts_stored_since_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as other, Store(path) as mine:
        _add(other, "k", 0, "invalid")
        _add(other, "k", 1, "ok")
        got = mine.claim_many({"k": 0, "n": 0})
        assert got.held == {}
        assert [(c.attempt, c.status) for c in got.stored["k"]] == [(0, "invalid"), (1, "ok")]
        assert "n" not in got.stored
        assert mine.claim_many({"k": 2}).stored == {}  # nothing beyond what the caller knows


def test_old_store_without_claims_table_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with Store(path) as s:
        _add(s, "k", 0, "ok")
    db = sqlite3.connect(path)
    db.execute("DROP TABLE claims")
    db.commit()
    db.close()
    with Store(path) as s:
        assert s.count() == 1 and s.claim("k2") is None


def test_scheduler_waits_for_another_hosts_claims_absorbs_their_attempts_and_takes_over_expired_ones(
        tmp_path: Path) -> None:
    """ClaimScheduler (the runner's and generate's loop): a unit held elsewhere is not run; its attempts are
    absorbed as the holder stores them (an invalid attempt 0 does not settle it, the ok re-ask does); a unit
    whose holder's lease lapses without a result is run here; the waiting note is given once."""
    path = tmp_path / "s.sqlite"
    ran: list[str] = []
    absorbed: dict[str, list[str]] = {}
    settled: list[str] = []
    notes: list[str] = []
    known: dict[str, int] = {}

    async def run(u: str) -> None:
        ran.append(u)
        await asyncio.sleep(0.01)

    def absorb(u: str, calls: list[StoredCall]) -> bool:
        known[u] = len(calls)
        absorbed.setdefault(u, []).append(",".join(c.status for c in calls))
        return calls[-1].status == "ok"

    async def holder(other: Store) -> None:
        await asyncio.sleep(0.3)
        _add(other, "b", 0, "invalid")  # the holder's attempt 0 is invalid: it re-asks
        await asyncio.sleep(0.3)
        _add(other, "b", 1, "ok")
        other.release(["b"])

    async def main(mine: Store, other: Store) -> None:
        sched: ClaimScheduler[str] = ClaimScheduler(
            mine, chunk=2, key=lambda u: u, known=lambda u: known.get(u, 0), absorb=absorb, run=run,
            settled=settled.append, notify=notes.append, poll_s=0.05)
        await asyncio.gather(sched.run(["a", "b", "c", "d"], 2), holder(other))

    with Store(path) as other, Store(path) as mine:
        other.host = "elsewhere.example"
        assert other.claim("b") is None
        other.lease_s = 0.8
        assert other.claim("d") is None  # a holder that will vanish: its lease lapses, nothing stored
        other.lease_s = 60.0
        t0 = time.monotonic()
        asyncio.run(main(mine, other))
        wall = time.monotonic() - t0
        assert sorted(ran) == ["a", "c", "d"]  # "b" was never sent here
        assert absorbed == {"b": ["invalid", "invalid,ok"]}
        assert sorted(settled) == ["a", "b", "c", "d"]
        assert len(notes) == 1 and "waiting for 2 calls" in notes[0] and "elsewhere.example" in notes[0], notes
        assert 0.7 < wall < 5.0
        assert _claim_rows(path) == []


def test_a_stopped_run_does_not_wait_for_other_runs_claims(tmp_path: Path) -> None:
    """Once the run is stopped (budget, abort, Ctrl-C), a unit held elsewhere goes to ``run`` (which settles it
    as not run, without a call) instead of being waited for."""
    path = tmp_path / "s.sqlite"
    ran: list[str] = []
    notes: list[str] = []

    async def run(u: str) -> None:
        ran.append(u)

    with Store(path) as other, Store(path) as mine:
        other.host = "elsewhere.example"
        assert other.claim("b") is None
        sched: ClaimScheduler[str] = ClaimScheduler(
            mine, chunk=4, key=lambda u: u, known=lambda u: 0, absorb=lambda u, c: True, run=run,
            settled=lambda u: None, notify=notes.append, poll_s=0.05, stopped=lambda: True)
        t0 = time.monotonic()
        asyncio.run(sched.run(["a", "b"], 2))
        assert time.monotonic() - t0 < 2.0
        assert ran == ["a", "b"] and notes == []
        assert [r[0] for r in _claim_rows(path)] == ["b"]  # the other run's claim is left alone


# ---- end to end: real processes --------------------------------------------------------------------------


def _responses(path: Path, n: int, tag: str = "") -> list[str]:
    rows, ids = [], []
    for i in range(n):
        rid = f"r{i:03d}"
        ids.append(rid)
        answer = f"{tag}The part numbered {i} shows a scratch at the top-left."
        if i % 5 == 0:  # a re-ask: attempt 0 is invalid, attempt 1 valid (both under one key)
            answer += " [[script:malformed_then_valid]]"
        rows.append({"id": rid, "model": "model-a", "question": f"<<{rid}>> Is there any defect on part {i}?",
                     "reference": "Yes, a scratch.", "response": answer})
    write_jsonl(path, rows)
    return ids


def _judge(responses: Path, store: Path, out: Path, url: str, concurrency: int = 8) -> subprocess.Popen[str]:
    cmd = [*_judgekit_cmd(), "judge", str(responses), "--rubric", str(RUBRIC), "--backend", "lean",
           "--judge", "openai/scripted", "--api-base", url, "--concurrency", str(concurrency),
           "--store", str(store), "--out", str(out), "--no-progress"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _made(stdout: str) -> tuple[int, int]:
    m = re.search(r"(\d+) calls made, (\d+) read from the store", flat(stdout))
    assert m is not None, stdout
    return int(m.group(1)), int(m.group(2))


def _per_response(server: ScriptedServer) -> Counter[str]:
    out: Counter[str] = Counter()
    for e in server.log:
        m = MARKER_RE.search(e["first_user_text"])
        assert m is not None, e["first_user_text"][:100]
        out[m.group(1)] += 1
    return out


@pytest.mark.slow
def test_two_runs_on_one_file_divide_the_calls_and_pay_each_once(tmp_path: Path) -> None:
    n = 200
    responses, store = tmp_path / "responses.jsonl", tmp_path / "store.sqlite"
    ids = _responses(responses, n)
    expected = {rid: 2 if i % 5 == 0 else 1 for i, rid in enumerate(ids)}
    with ScriptedServer(latency=0.08) as server:
        procs = [_judge(responses, store, tmp_path / f"out{k}.jsonl", server.base_url) for k in (1, 2)]
        outs = [p.communicate(timeout=240) for p in procs]
        log = _per_response(server)
    for p, (o, e) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (o, e)
        assert "Traceback" not in e
        assert flat(e).count("waiting for") <= 1, e  # the note is given once (when a run has to wait at all)
    assert dict(log) == expected, "a call was paid twice (or never)"
    made = [_made(o)[0] for o, _ in outs]
    assert sum(made) == sum(expected.values()), made
    assert all(m > 0 for m in made), f"the two runs did not divide the work: {made}"
    for k in (1, 2):
        results = read_jsonl(tmp_path / f"out{k}.jsonl")
        assert [r["id"] for r in results] == ids
        assert all(r["status"] == "scored" for r in results), [r for r in results if r["status"] != "scored"][:3]
        # a re-asked sample keeps its two attempts, wherever they were paid
        assert all(r["calls"] == expected[r["id"]] for r in results)
    assert _claim_rows(store) == []  # every claim released at the end


@pytest.mark.slow
def test_two_runs_on_different_files_sharing_a_store_never_wait(tmp_path: Path) -> None:
    n = 80
    store = tmp_path / "store.sqlite"
    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    _responses(files[0], n, tag="A: ")
    _responses(files[1], n, tag="B: ")
    with ScriptedServer(latency=0.05) as server:
        procs = [_judge(f, store, tmp_path / f"out-{f.stem}.jsonl", server.base_url) for f in files]
        outs = [p.communicate(timeout=240) for p in procs]
        total = server.requests
    expected = n + n // 5  # one call each, two for the re-asked ones
    for p, (o, e) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (o, e)
        assert "waiting for" not in flat(e), e
        assert _made(o) == (expected, 0)
    assert total == 2 * expected
    for f in files:
        assert all(r["status"] == "scored" for r in read_jsonl(tmp_path / f"out-{f.stem}.jsonl"))


@pytest.mark.slow
def test_two_generate_runs_on_one_items_file_ask_each_question_once(tmp_path: Path) -> None:
    n = 120
    items = write_jsonl(tmp_path / "items.jsonl", [
        {"id": f"i{k}", "question": f"Is there a defect on part {k}? [[script:say=answer_{k}]]", "reference": "r"}
        for k in range(n)])
    store = tmp_path / "store.sqlite"
    with ScriptedServer(latency=0.08) as server:
        procs = []
        for k in (1, 2):
            cmd = [*_judgekit_cmd(), "generate", str(items), "--model", "openai/cand", "--api-base",
                   server.base_url, "--backend", "lean", "--concurrency", "6", "--out", str(tmp_path / f"g{k}.jsonl"),
                   "--store", str(store), "--no-progress"]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()))
        outs = [p.communicate(timeout=240) for p in procs]
        counts = server.counts
    for p, (o, e) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (o, e)
    assert len(counts) == n and set(counts.values()) == {1}, "an answer was paid twice"
    made = [_made(o)[0] for o, _ in outs]
    assert sum(made) == n and all(m > 0 for m in made), made
    for k in (1, 2):
        got = read_jsonl(tmp_path / f"g{k}.jsonl")
        assert [r["response"] for r in got] == [f"answer {i}" for i in range(n)]
    assert _claim_rows(store) == []


def test_pid_alive_sees_a_zombie_as_dead() -> None:
    from judgekit.judging.store import pid_alive

    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited but not reaped: a zombie
        try:
            with open(f"/proc/{child.pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
        except OSError:
            break
        time.sleep(0.01)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())


def test_opening_a_new_store_retries_sqlites_immediate_lock_error(tmp_path: Path, monkeypatch) -> None:
    """Two runs creating one new store at the same moment can both hold the file's shared lock and both need the
    exclusive one (switching to WAL): SQLite answers one of them "database is locked" at once, without waiting
    for the busy timeout (seen once in CI: `cannot create the store: database is locked`). Opening retries that
    error; any other error is not retried."""
    import judgekit.judging.store as store_mod

    real = Store._create_tables
    calls = {"n": 0}

    def flaky(self):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database is locked")
        return real(self)

    monkeypatch.setattr(Store, "_create_tables", flaky)
    with Store(tmp_path / "s.sqlite") as st:
        assert st.count() == 0  # opened, with its tables
    assert calls["n"] == 3

    def broken(self):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise sqlite3.OperationalError("disk I/O error")

    calls["n"] = 0
    monkeypatch.setattr(Store, "_create_tables", broken)
    with pytest.raises(store_mod.JudgekitError, match="disk I/O error"):
        Store(tmp_path / "t.sqlite")
    assert calls["n"] == 1

    calls["n"] = 0
    monkeypatch.setattr(store_mod, "OPEN_RETRY_S", 0.05)
    monkeypatch.setattr(Store, "_create_tables", lambda self: (_ for _ in ()).throw(
        sqlite3.OperationalError("database is locked")))
    with pytest.raises(store_mod.JudgekitError, match="database is locked"):
        Store(tmp_path / "u.sqlite")  # gives up after OPEN_RETRY_S with the file and the cause
