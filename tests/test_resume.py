"""Crash safety: ``kill -9`` a running ``judgekit judge`` and re-run it; nothing stored is lost or paid twice.

The scripted server runs as a separate process with a request log; the judge runs as a subprocess of the
console script. The store is polled through a read-only SQLite connection and the judge is killed with
SIGKILL half-way. Every response's question carries a unique marker (``<<rNNN>>``), which appears early in
the case text the server logs (``first_user_text``), so requests can be mapped to store rows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).resolve().parent / "scripted_server.py"
RUBRIC = ROOT / "rubrics" / "robustmad.yaml"
CONCURRENCY = 4
LATENCY = 0.15
KILL_AT_ROWS = 15
MARKER_RE = re.compile(r"<<(r\d{3})>>")
BASE_MESSAGES = 6  # system + two few-shot examples (user, assistant) + the case; a re-ask adds two

pytestmark = pytest.mark.slow


def _judgekit_cmd() -> list[str]:
    script = Path(sys.executable).with_name("judgekit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "judgekit.cli"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def settled_entries(self, quiet_s: float = 0.6, limit_s: float = 15.0) -> list[dict[str, Any]]:
        """The log once no new line arrived for ``quiet_s`` (requests of a killed client may land late)."""
        deadline = time.monotonic() + limit_s
        n, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            cur = len(self.entries())
            if cur != n:
                n, since = cur, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
            time.sleep(0.05)
        return self.entries()


def _start_server(tmp: Path) -> Server:
    port_file, log = tmp / "server.port", tmp / "server-log.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--port-file", str(port_file), "--latency", str(LATENCY),
         "--log", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None:
            raise AssertionError(f"scripted server exited with {proc.returncode}: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("scripted server did not start within 60 s")
        time.sleep(0.05)
    return Server(proc, f"http://127.0.0.1:{port_file.read_text().strip()}/v1", log)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def _write_responses(path: Path, n: int, script: str | None) -> list[str]:
    """n responses; with ``script``, response i carries the directive ``script`` (``{slow}`` filled in)."""
    ids = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            rid = f"r{i:03d}"
            ids.append(rid)
            answer = f"The part numbered {i} shows a scratch at the top-left."
            if script:
                answer += " [[script:" + script.format(slow=(0.0, 0.05, 0.1)[i % 3]) + "]]"
            fh.write(json.dumps({
                "id": rid, "model": "model-a" if i % 2 else "model-b", "category": f"cat{i % 3}",
                "question": f"<<{rid}>> Is there any defect on part {i}? If so, where?",
                "reference": "Yes, a scratch at the top-left.", "response": answer,
            }) + "\n")
    return ids


def _read_rows(store: Path) -> dict[tuple[str, int], tuple[Any, ...]] | None:
    """Every row of ``calls`` through a read-only connection, keyed by (key, attempt); None if not readable yet."""
    if not store.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.OperationalError:
        return None
    try:
        cur = db.execute("SELECT key, attempt, status, response_id, reply, scores, reason, created_at "
                         "FROM calls")
        return {(r[0], r[1]): r for r in cur.fetchall()}
    except sqlite3.OperationalError:  # the table is not created yet, or the database is busy
        return None
    finally:
        db.close()


def _read_claims(store: Path) -> list[tuple[str, int, float]]:
    """(key, pid, expires) of every row of ``claims`` (read-only; none before the table exists)."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5.0)
    try:
        return db.execute("SELECT key, pid, expires FROM claims").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def _judge_cmd(responses: Path, store: Path, out: Path, url: str) -> list[str]:
    return [*_judgekit_cmd(), "judge", str(responses), "--rubric", str(RUBRIC), "--backend", "lean",
            "--judge", "openai/scripted", "--api-base", url, "--concurrency", str(CONCURRENCY),
            "--store", str(store), "--out", str(out), "--no-progress"]


def _by_marker(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        m = MARKER_RE.search(e["first_user_text"])
        assert m is not None, f"request without a response marker: {e['first_user_text'][:120]!r}"
        out.setdefault(m.group(1), []).append(e)
    return out


def _run_kill_resume(tmp: Path, n: int, script: str | None, kill_when) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Start the server, run the judge, kill -9 it once ``kill_when(rows)`` holds, re-run to completion."""
    responses, store, out = tmp / "responses.jsonl", tmp / "store.sqlite", tmp / "results.jsonl"
    ids = _write_responses(responses, n, script)
    server = _start_server(tmp)
    judge: subprocess.Popen[bytes] | None = None
    try:
        cmd = _judge_cmd(responses, store, out, server.url)
        judge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp)
        deadline = time.monotonic() + 120
        before_kill: dict[tuple[str, int], tuple[Any, ...]] = {}
        while True:
            rows = _read_rows(store)
            if rows is not None and kill_when(rows):
                before_kill = rows
                break
            if judge.poll() is not None:
                o, e = judge.communicate()
                raise AssertionError(f"judge finished (rc {judge.returncode}) before it could be killed; "
                                     f"{len(rows or {})} rows stored\nstdout: {o.decode()}\nstderr: {e.decode()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the store did not reach the kill condition in 120 s: {len(rows or {})} rows")
            time.sleep(0.01)
        killed_pid = judge.pid
        judge.send_signal(signal.SIGKILL)
        judge.communicate(timeout=30)  # reaped: its pid is dead, not a zombie
        assert judge.returncode == -signal.SIGKILL, f"judge was not killed (rc {judge.returncode})"
        judge = None

        at_kill = _read_rows(store)
        assert at_kill is not None, "the store cannot be read after kill -9"
        assert set(before_kill) <= set(at_kill), "rows seen before the kill are gone"
        for k, row in before_kill.items():
            assert at_kill[k] == row, f"row {k} changed across the kill"
        assert len(at_kill) < (2 * n if script else n), "the run was complete before the kill: test is void"
        claims_at_kill, killed_at = _read_claims(store), time.time()
        phase1 = server.settled_entries()

        t0 = time.monotonic()
        rerun = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp, timeout=180)
        rerun_s = time.monotonic() - t0
        assert rerun.returncode == 0, f"re-run failed (rc {rerun.returncode})\n{rerun.stdout}\n{rerun.stderr}"
        assert "Traceback" not in rerun.stderr
        final = _read_rows(store)
        assert final is not None
        entries = server.settled_entries(quiet_s=0.3)
    finally:
        _stop(judge, signal.SIGKILL)
        _stop(server.proc)
    # Rows stored at kill time are still there, unchanged (not re-inserted, not overwritten).
    for k, row in at_kill.items():
        assert final.get(k) == row, f"row {k} stored before the kill was lost or changed"
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [r["id"] for r in results] == ids, "one result per response, in input order"
    unscored = [(r["id"], r["reason"]) for r in results if r["status"] != "scored"]
    assert not unscored, f"unscored after resume: {unscored[:5]}"
    assert all(r["scores"] and r["overall"] is not None for r in results)
    assert all(e["status"] == 200 for e in entries)
    m = re.search(r"(\d+) calls made, (\d+) read from the store", " ".join(rerun.stdout.split()))
    assert m is not None, rerun.stdout
    return {"ids": ids, "at_kill": at_kill, "final": final, "phase1": phase1, "entries": entries,
            "phase2": entries[len(phase1):], "made": int(m.group(1)), "cached": int(m.group(2)),
            "claims_at_kill": claims_at_kill, "claims_after": _read_claims(store), "killed_pid": killed_pid,
            "killed_at": killed_at,
            "rerun_s": rerun_s, "rerun_stderr": rerun.stderr}


def _check_accounting(r: dict[str, Any]) -> None:
    """The re-run reports exactly the calls stored at kill time as read from the store, the rest as made."""
    assert r["cached"] == len(r["at_kill"]), (r["cached"], len(r["at_kill"]))
    assert r["made"] == len(r["final"]) - len(r["at_kill"]), (r["made"], len(r["final"]), len(r["at_kill"]))


def _rows_by_response(rows: dict[tuple[str, int], tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in sorted(rows.values(), key=lambda row: (row[3], row[1])):
        out.setdefault(row[3], []).append(row)
    return out


def test_kill9_then_resume_repays_no_call(tmp_path: Path) -> None:
    n = 60
    r = _run_kill_resume(tmp_path, n, None, lambda rows: len(rows) >= KILL_AT_ROWS)
    at_kill, final, entries = r["at_kill"], r["final"], r["entries"]
    assert len(at_kill) >= KILL_AT_ROWS
    # One call per response in the end: attempt 0, status ok.
    assert len(final) == n
    assert all(row[1] == 0 and row[2] == "ok" for row in final.values())
    per_answer = Counter({rid: len(es) for rid, es in _by_marker(entries).items()})
    assert set(per_answer) == set(r["ids"])
    stored_before = {row[3] for row in at_kill.values()}
    repaid = {rid: per_answer[rid] for rid in stored_before if per_answer[rid] != 1}
    assert not repaid, f"calls stored before the kill were made again: {repaid}"
    phase2 = Counter(MARKER_RE.search(e["first_user_text"]).group(1) for e in r["phase2"])  # type: ignore[union-attr]
    assert not (set(phase2) & stored_before), "the re-run asked about answers already stored"
    # Only calls in flight at kill time may be made twice.
    assert len(entries) <= len(stored_before) + (n - len(stored_before)) + CONCURRENCY
    assert sum(c - 1 for c in per_answer.values()) <= CONCURRENCY
    _check_accounting(r)


def _killed_between_attempts(rows: dict[tuple[str, int], tuple[Any, ...]]) -> list[str]:
    """Response ids whose only stored attempt is an invalid attempt 0 (the re-ask not yet stored)."""
    return [rid for rid, rs in _rows_by_response(rows).items() if len(rs) == 1 and rs[0][2] == "invalid"]


def test_kill9_between_reasks_does_not_repeat_invalid_attempt(tmp_path: Path) -> None:
    n = 40
    r = _run_kill_resume(
        tmp_path, n, "malformed_then_valid,slow={slow}",
        lambda rows: len(rows) >= KILL_AT_ROWS and bool(_killed_between_attempts(rows)))
    at_kill, final, entries = r["at_kill"], r["final"], r["entries"]
    between = _killed_between_attempts(at_kill)
    assert between, "no judgment was killed between its invalid attempt 0 and its re-ask"
    before = _rows_by_response(at_kill)
    after = _rows_by_response(final)
    by_marker = _by_marker(entries)
    phase1, phase2 = _by_marker(r["phase1"]), _by_marker(r["phase2"])
    for rid, rows in before.items():
        if rows[-1][2] == "ok":  # settled before the kill: its two calls were made once each
            assert [x[2] for x in rows] == ["invalid", "ok"]
            assert len(by_marker[rid]) == 2, (rid, by_marker[rid])
            assert rid not in phase2
    for rid in between:
        # the stored invalid attempt is kept and only the re-ask (attempt 1, with the conversation) is sent
        assert [x[1:3] for x in after[rid]] == [(0, "invalid"), (1, "ok")], after[rid]
        assert after[rid][0] == before[rid][0]
        resent = phase2.get(rid, [])
        assert len(resent) == 1, (rid, resent)
        assert resent[0]["n_messages"] == BASE_MESSAGES + 2, "the invalid attempt 0 was repeated"
        # run 1 sent attempt 0 and maybe the re-ask, which was then in flight at kill time (its reply lost)
        sent_before = [e["n_messages"] for e in phase1.get(rid, [])]
        assert sent_before in ([BASE_MESSAGES], [BASE_MESSAGES, BASE_MESSAGES + 2]), (rid, sent_before)
        assert len(by_marker[rid]) == len(sent_before) + 1  # two requests, three only for an in-flight re-ask
    attempt0_again = [e for rid in before for e in phase2.get(rid, []) if e["n_messages"] == BASE_MESSAGES]
    assert not attempt0_again, "an attempt stored before the kill was sent again"
    # Every request beyond the stored calls is one that was in flight at kill time.
    assert len(entries) - len(final) <= CONCURRENCY, (len(entries), len(final))
    assert len(entries) <= 2 * n + CONCURRENCY
    _check_accounting(r)


def test_kill9_leaves_claims_that_the_resume_takes_over_at_once(tmp_path: Path) -> None:
    """The killed run's claims (its pid, on this host, now dead) do not make the resume wait for their lease:
    it takes them over at once, pays only the missing calls, and releases every claim at the end."""
    from judgekit.judging.store import LEASE_S, pid_alive

    n = 60
    r = _run_kill_resume(tmp_path, n, None, lambda rows: len(rows) >= KILL_AT_ROWS)
    claims = r["claims_at_kill"]
    assert claims, "the killed run held no claims: test is void"
    holders = {pid for _, pid, _ in claims}  # the killed command's process, or its warm child (judgekit.cli.warm)
    assert len(holders) == 1 and not pid_alive(next(iter(holders))), (holders, r["killed_pid"])
    assert all(expires > r["killed_at"] + 10 for _, _, expires in claims), "the leases were ending: test is void"
    assert "waiting for" not in " ".join(r["rerun_stderr"].split())
    assert r["rerun_s"] < LEASE_S / 2, f"the resume waited {r['rerun_s']:.1f} s for the dead run's leases"
    assert r["claims_after"] == []
    assert r["made"] == n - len(r["at_kill"])
    _check_accounting(r)
