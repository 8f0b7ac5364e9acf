"""``judgekit judge --batch``: provider batch APIs (judgekit.judging.batch) against the loopback batch server
(tests/batch_server.py), compared with live runs against the scripted server (tests/scripted_server.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import judgekit
from judgekit.api import JudgingInterrupted
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.batch import batch_prices

sys.path.insert(0, str(Path(__file__).parent))
from batch_server import BatchServer
from scripted_server import ScriptedServer

JUDGE = "openai/judge"
POLL = 0.02
SCRIPTS = ["valid=5", "valid=2", "fenced,valid=3", "bylength=40", "byseed", "prose,valid=1",
           "malformed_then_valid,valid=4", "valid=4"]


def _responses(make_response: Any, scripts: list[str] = SCRIPTS) -> list[Response]:
    return [make_response(f"Answer {i}: a scratch, top-right. [[script:{s}]]", id=f"r{i}") for i, s in
            enumerate(scripts)]


def _rows(store: Path) -> set[tuple[str, int, str, str | None]]:
    db = sqlite3.connect(store)
    try:
        return set(db.execute("SELECT key, attempt, status, scores FROM calls"))
    finally:
        db.close()


def _view(results: Any) -> list[tuple[Any, ...]]:
    return [(j.id, j.status, j.scores, j.overall, j.passed) for j in results.judgments]


@pytest.fixture
def batch_server() -> Any:
    with BatchServer(seed=3) as srv:
        yield srv


def test_batch_run_matches_a_live_run(tmp_path: Path, make_response: Any, batch_server: BatchServer) -> None:
    responses = _responses(make_response)
    prices = {"price_in": 2.0, "price_out": 8.0}
    with ScriptedServer() as live_srv:
        live = judgekit.judge(responses, "robustmad", JUDGE, api_base=live_srv.base_url,
                              store=tmp_path / "live.sqlite", **prices)
        batch = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url,
                               store=tmp_path / "batch.sqlite", batch=True, batch_poll=POLL, **prices)
        assert _view(batch) == _view(live)
        assert all(j.status == "scored" for j in batch.judgments) and batch.complete
        assert _rows(tmp_path / "batch.sqlite") == _rows(tmp_path / "live.sqlite")  # same keys, attempts, scores
        assert batch.calls_made == live.calls_made == len(responses) + 1  # one re-ask
        # batch prices: half of --price-in/--price-out for the same tokens
        assert batch.tokens_in == live.tokens_in and batch.tokens_out == live.tokens_out
        assert batch.cost == pytest.approx(live.cost / 2)
        # a later live run reads every reply from the batch run's store
        before = live_srv.requests
        again = judgekit.judge(responses, "robustmad", JUDGE, api_base=live_srv.base_url,
                               store=tmp_path / "batch.sqlite", **prices)
        assert again.calls_made == 0 and live_srv.requests == before and _view(again) == _view(live)
    # the re-ask went out as a follow-up batch of one request carrying the conversation
    assert batch_server.created == 2
    reask = [e for e in batch_server.log if e["attempt"] == 1]
    assert len(reask) == 1 and reask[0]["n_messages"] == max(e["n_messages"] for e in batch_server.log)
    store = tmp_path / "batch.sqlite"
    db = sqlite3.connect(store)
    assert {r[0] for r in db.execute("SELECT status FROM batches")} == {"collected"}
    db.close()


def test_an_interrupted_run_reattaches(tmp_path: Path, make_response: Any, batch_server: BatchServer) -> None:
    responses = _responses(make_response, ["valid=5", "valid=3", "valid=2"])
    batch_server.hold = True
    store = tmp_path / "s.sqlite"

    def ctrl_c(text: str) -> None:
        if text.startswith("submitted batch"):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the provider works on the batch

    with pytest.raises(JudgingInterrupted) as stop:
        judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, store=store, batch=True,
                       batch_poll=POLL, notify=ctrl_c)
    assert stop.value.results.interrupted and batch_server.created == 1
    db = sqlite3.connect(store)
    (status, ids), = db.execute("SELECT status, custom_ids FROM batches").fetchall()
    db.close()
    assert status != "collected" and len(json.loads(ids)) == 3
    batch_server.hold = False
    notes: list[str] = []
    results = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, store=store,
                             batch=True, batch_poll=POLL, notify=notes.append)
    assert batch_server.created == 1 and batch_server.uploads == 1  # re-attached, not submitted again
    assert not any(n.startswith("submitted batch") for n in notes)
    assert any(n.startswith("re-attached to batch") for n in notes)
    assert [j.overall for j in results.judgments] == [5.0, 3.0, 2.0] and results.calls_made == 3


def test_invalid_replies_are_reasked_then_unscored(tmp_path: Path, make_response: Any,
                                                    batch_server: BatchServer) -> None:
    responses = _responses(make_response, ["malformed", "missing", "valid=4"])
    results = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url,
                             store=tmp_path / "s.sqlite", batch=True, batch_poll=POLL, reasks=1)
    first, second, third = results.judgments
    assert first.status == second.status == "unscored" and third.status == "scored"
    assert "invalid reply after 2 attempt(s)" in (first.reason or "") and "missing" in (second.reason or "")
    assert batch_server.created == 2 and first.calls == 2  # one follow-up batch with the two re-asks
    assert results.complete  # invalid replies are not transport failures


def test_error_lines_and_expired_batches_are_retried(tmp_path: Path, make_response: Any,
                                                      batch_server: BatchServer) -> None:
    store = tmp_path / "s.sqlite"
    responses = _responses(make_response, ["500x1,valid=3", "valid=5", "valid=2", "valid=1"])
    run = dict(api_base=batch_server.base_url, store=store, batch=True, batch_poll=POLL)
    batch_server.expire_next = 3  # the first batch answers 3 of its 4 requests, then expires
    first = judgekit.judge(responses, "robustmad", JUDGE, **run)  # type: ignore[arg-type]
    statuses = [j.status for j in first.judgments]
    assert statuses.count("unscored") == 2 and not first.complete and first.transport_failures == 2
    reasons = " ".join(j.reason or "" for j in first.judgments)
    assert "HTTP 500" in reasons and "expired without a reply" in reasons
    second = judgekit.judge(responses, "robustmad", JUDGE, **run)  # type: ignore[arg-type]
    assert [j.overall for j in second.judgments] == [3.0, 5.0, 2.0, 1.0] and second.complete
    assert second.calls_made == 2 and second.calls_cached == 2 and batch_server.created == 2


def test_budget_is_checked_before_submitting(tmp_path: Path, make_response: Any, batch_server: BatchServer) -> None:
    responses = _responses(make_response, ["valid=5"] * 4)
    results = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url,
                             store=tmp_path / "s.sqlite", batch=True, batch_poll=POLL, price_in=1000.0,
                             price_out=1000.0, max_cost=2.0)
    scored = [j for j in results.judgments if j.status == "scored"]
    assert results.budget_reached and 0 < len(scored) < 4 and results.cost <= 2.0
    assert sum(e["attempt"] == 0 for e in batch_server.log) == len(scored)  # the rest was never submitted


def test_batch_prices() -> None:
    assert batch_prices(JudgeSpec(model="openai/x", price_in=2.0, price_out=8.0)) == (1e-6, 4e-6)
    assert batch_prices(JudgeSpec(model="openai/gpt-4o-mini")) == (7.5e-08, 3e-07)  # the price map's batch entry
    assert batch_prices(JudgeSpec(model="openai/no-such-model-xyz")) is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("judgekit")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "judgekit.cli"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_batch_end_to_end(tmp_path: Path, make_response: Any, batch_server: BatchServer) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in _responses(make_response, SCRIPTS[:4])))
    args = ["judge", str(path), "--rubric", "robustmad", "--judge", JUDGE, "--api-base", batch_server.base_url,
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out.jsonl"), "--no-progress"]
    done = _cli(*args, "--batch", "--batch-poll", "0.05")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["scored"] * 4 and rows[0]["overall"] == 5.0
    assert batch_server.created == 1
    again = _cli(*args, "--batch", "--batch-poll", "0.05")  # everything stored: nothing submitted
    assert again.returncode == 0, again.stderr
    assert batch_server.created == 1


def test_cli_bad_cases(tmp_path: Path, make_response: Any) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in _responses(make_response, ["valid=5"])))
    base = ["judge", str(path), "--rubric", "robustmad", "--judge", JUDGE, "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "out.jsonl"), "--no-progress"]
    with ScriptedServer() as live:  # a live server only: no /v1/files
        done = _cli(*base, "--api-base", live.base_url, "--batch", "--batch-poll", "0.05")
        assert done.returncode == 2, done.stderr
        assert "no batch API" in done.stderr and "Traceback" not in done.stderr
        assert live.requests == 0
        poll_only = _cli(*base, "--api-base", live.base_url, "--batch-poll", "1")
        assert poll_only.returncode == 2 and "--batch-poll" in poll_only.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_api_bad_cases(tmp_path: Path, make_response: Any) -> None:
    responses = _responses(make_response, ["valid=5"])
    with pytest.raises(JudgekitError, match="--batch"):
        judgekit.judge(responses, "robustmad", "local/default", store=tmp_path / "s.sqlite", batch=True)
    with pytest.raises(JudgekitError, match="--batch-poll"):
        judgekit.judge(responses, "robustmad", JUDGE, api_base="http://127.0.0.1:9/v1", store=tmp_path / "s.sqlite",
                       batch=True, batch_poll=0)


def test_litellm_transport(tmp_path: Path, make_response: Any, batch_server: BatchServer) -> None:
    """--backend litellm goes through litellm's acreate_file / acreate_batch / aretrieve_batch / afile_content."""
    responses = _responses(make_response, ["valid=5", "valid=2"])
    results = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, backend="litellm",
                             store=tmp_path / "s.sqlite", batch=True, batch_poll=POLL, response_format="json_schema")
    assert [j.overall for j in results.judgments] == [5.0, 2.0] and batch_server.created == 1


def test_a_cancelled_batch_leaves_unscored_judgments(tmp_path: Path, make_response: Any,
                                                     batch_server: BatchServer) -> None:
    """A batch cancelled on the provider's side (its console, another tool): unscored, submitted again later."""
    import urllib.request

    responses = _responses(make_response, ["valid=5", "valid=3"])
    batch_server.hold = True
    store = tmp_path / "s.sqlite"

    def cancel(text: str) -> None:
        if text.startswith("submitted batch"):
            bid = text.split()[2]
            urllib.request.urlopen(urllib.request.Request(f"{batch_server.base_url}/batches/{bid}/cancel",
                                                          method="POST"), timeout=10).read()
            batch_server.hold = False

    first = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, store=store, batch=True,
                           batch_poll=POLL, notify=cancel)
    assert [j.status for j in first.judgments] == ["unscored"] * 2 and not first.complete
    assert all("cancelled without a reply" in (j.reason or "") for j in first.judgments)
    second = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, store=store, batch=True,
                            batch_poll=POLL)
    assert [j.overall for j in second.judgments] == [5.0, 3.0] and batch_server.created == 2


def test_a_panel_sends_one_batch_per_judge(tmp_path: Path, make_response: Any, batch_server: BatchServer) -> None:
    responses = [make_response(f"Answer {i}. [[script@a:valid=5]] [[script@b:valid={i + 1}]]", id=f"r{i}")
                 for i in range(3)]
    judges = ["openai/a", "openai/b"]
    with ScriptedServer() as live_srv:
        live = judgekit.judge(responses, "robustmad", judges, api_base=live_srv.base_url,
                              store=tmp_path / "live.sqlite")
    batch = judgekit.judge(responses, "robustmad", judges, api_base=batch_server.base_url,
                           store=tmp_path / "batch.sqlite", batch=True, batch_poll=POLL)
    assert _view(batch) == _view(live) and batch_server.created == 2
    assert {e["model"] for e in batch_server.log} == {"a", "b"}
    assert _rows(tmp_path / "batch.sqlite") == _rows(tmp_path / "live.sqlite")


def test_unreadable_results_are_read_again_by_the_next_run(tmp_path: Path, make_response: Any,
                                                          batch_server: BatchServer) -> None:
    responses = _responses(make_response, ["valid=5", "valid=3"])
    store = tmp_path / "s.sqlite"
    batch_server.content_status = 404
    first = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, store=store, batch=True,
                           batch_poll=POLL)
    assert [j.status for j in first.judgments] == ["unscored"] * 2
    assert "could not be read" in (first.judgments[0].reason or "")
    batch_server.content_status = None
    second = judgekit.judge(responses, "robustmad", JUDGE, api_base=batch_server.base_url, store=store, batch=True,
                            batch_poll=POLL)
    assert [j.overall for j in second.judgments] == [5.0, 3.0] and batch_server.created == 1  # re-read, not re-sent
