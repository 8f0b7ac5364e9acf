"""Protocol tests of the judge runner against the scripted server, for both backends (lean and litellm).

Every response gets a unique question (see ``make_response`` in conftest.py), so the requests the server
saw for it are found by that question in ``server.log``. The ``[[script:...]]`` directive in the answer
text tells the server how to reply (see tests/scripted_server.py).
"""

from __future__ import annotations

import math
import statistics
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer, render

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response, SampleResult
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.prompt import build_messages
from judgekit.judging.rubric import load_rubric
from judgekit.judging.runner import NOT_RUN_BUDGET, RunAborted, Runner, RunOptions, RunReport, _Unit, run_judging
from judgekit.judging.store import Store

RUBRIC_PATH = Path(__file__).resolve().parent.parent / "rubrics" / "robustmad.yaml"
RUBRIC = load_rubric(RUBRIC_PATH)
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}
ANSWER = "The metal nut has a scratch at the top-right."
MakeResponse = Callable[..., Response]  # the make_response fixture of conftest.py


@pytest.fixture(params=["lean", "litellm"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def judge(server: ScriptedServer, backend: str, model: str = "openai/scripted", **kw: Any) -> JudgeSpec:
    return JudgeSpec(model=model, api_base=server.base_url, backend=backend, **kw)  # type: ignore[arg-type]


def run(responses: list[Response], judges: JudgeSpec | list[JudgeSpec], store_path: Path, rubric=RUBRIC,
        **options: Any) -> RunReport:
    specs = judges if isinstance(judges, list) else [judges]
    with Store(store_path) as store:
        return run_judging(responses, rubric, specs, store, RunOptions(**{**FAST, **options}))


def scripted(make_response: MakeResponse, directive: str, **fields: Any) -> Response:
    return make_response(f"{ANSWER} [[script:{directive}]]", **fields)


def seen(server: ScriptedServer, resp: Response) -> list[dict[str, Any]]:
    """The server's log entries for the requests about ``resp`` (its question is unique)."""
    return [e for e in server.log if resp.question in e["first_user_text"]]


def base_messages(resp: Response) -> int:
    return len(build_messages(RUBRIC, resp))


# ---- replies ------------------------------------------------------------------------------------------

SCORED = [  # directive, score, passed (overall >= 3), is_accurate (technical_accuracy >= 3)
    ("valid", 4, True, True),
    ("valid=2", 2, False, False),
    ("valid=3", 3, True, True),
    ("fenced,valid=3", 3, True, True),
    ("prose,valid=5", 5, True, True),
    ("fenced,valid=1", 1, False, False),
]


def test_valid_fenced_and_prose_replies_are_scored(scripted_server: ScriptedServer, make_response: MakeResponse,
                                                   backend: str, tmp_path: Path) -> None:
    responses = [scripted(make_response, d) for d, *_ in SCORED]
    rep = run(responses, judge(scripted_server, backend), tmp_path / "s.db")
    assert rep.calls_made == len(SCORED) and rep.calls_cached == 0 and rep.transport_failures == 0
    assert len(rep.judgments) == len(SCORED)
    for resp, j, (directive, score, passed, accurate) in zip(responses, rep.judgments, SCORED, strict=True):
        assert (j.id, j.judge, j.status, j.reason) == (resp.id, "openai/scripted", "scored", None), directive
        assert j.scores == dict.fromkeys(RUBRIC.criterion_names, float(score))
        assert j.overall == score and j.passed is passed and j.flags == {"is_accurate": accurate}
        assert j.rationale == "scripted" and j.calls == 1 and j.cached_calls == 0
        assert [s.status for s in j.samples] == ["scored"] and j.samples[0].attempts == 1
        assert len(seen(scripted_server, resp)) == 1


INVALID = {
    "malformed": "no JSON object found in the reply",
    "out_of_range": "technical_accuracy=7 is outside the scale 1-5",
    "missing": "missing score(s) for technical_accuracy",
    "float": "technical_accuracy must be an integer, got 3.5",
}


@pytest.mark.parametrize("reasks", [0, 2])
def test_invalid_replies_are_reasked_then_unscored(scripted_server: ScriptedServer, make_response: MakeResponse,
                                                   backend: str, tmp_path: Path, reasks: int) -> None:
    responses = [scripted(make_response, d) for d in INVALID]
    rep = run(responses, judge(scripted_server, backend), tmp_path / "s.db", reasks=reasks)
    tries = reasks + 1
    assert rep.calls_made == len(INVALID) * tries and rep.transport_failures == 0
    for resp, j, why in zip(responses, rep.judgments, INVALID.values(), strict=True):
        log = seen(scripted_server, resp)
        # each re-ask carries the invalid reply and the correction: two more messages per attempt
        assert [e["n_messages"] for e in log] == [base_messages(resp) + 2 * k for k in range(tries)]
        assert j.status == "unscored" and j.reason == f"invalid reply after {tries} attempt(s): {why}"
        assert j.scores == {} and j.overall is None and j.passed is None and j.flags == {} and j.spread == {}
        assert j.calls == tries and j.samples[0].attempts == tries and j.samples[0].scores == {}
    with Store(tmp_path / "s.db") as store:
        rows = list(store.iter_calls())
    assert len(rows) == len(INVALID) * tries and {r["status"] for r in rows} == {"invalid"}
    assert all(r["scores"] is None for r in rows)
    # settled: a re-run asks nothing again
    before = scripted_server.requests
    again = run(responses, judge(scripted_server, backend), tmp_path / "s.db", reasks=reasks)
    assert scripted_server.requests == before and again.calls_made == 0
    assert [j.reason for j in again.judgments] == [j.reason for j in rep.judgments]


def test_malformed_then_valid_is_scored_after_a_reask(scripted_server: ScriptedServer,
                                                      make_response: MakeResponse, backend: str,
                                                      tmp_path: Path) -> None:
    resp = scripted(make_response, "malformed_then_valid")
    rep = run([resp], judge(scripted_server, backend), tmp_path / "s.db", reasks=2)
    (j,) = rep.judgments
    assert j.status == "scored" and j.overall == 4 and j.reason is None
    assert j.calls == 2 and j.samples[0].attempts == 2 and rep.calls_made == 2
    assert [e["n_messages"] for e in seen(scripted_server, resp)] == [base_messages(resp), base_messages(resp) + 2]


def test_rerun_with_more_reasks_resumes_the_conversation(scripted_server: ScriptedServer,
                                                         make_response: MakeResponse, backend: str,
                                                         tmp_path: Path) -> None:
    resp = scripted(make_response, "malformed_then_valid")
    first = run([resp], judge(scripted_server, backend), tmp_path / "s.db", reasks=0)
    assert first.judgments[0].status == "unscored"
    assert first.judgments[0].reason == "invalid reply after 1 attempt(s): no JSON object found in the reply"
    second = run([resp], judge(scripted_server, backend), tmp_path / "s.db", reasks=1)
    (j,) = second.judgments
    assert j.status == "scored" and j.overall == 4
    assert second.calls_made == 1 and second.calls_cached == 1 and j.calls == 2 and j.cached_calls == 1
    assert [e["n_messages"] for e in seen(scripted_server, resp)] == [base_messages(resp), base_messages(resp) + 2]


# ---- transport faults ---------------------------------------------------------------------------------

FAULTS = [("429x2", 3), ("500x1", 2), ("503x1", 2), ("dropx1", 2), ("429x1,dropx1,500x1,valid=5", 4)]


def test_transport_faults_are_retried_and_scored(scripted_server: ScriptedServer, make_response: MakeResponse,
                                                 backend: str, tmp_path: Path) -> None:
    responses = [scripted(make_response, d) for d, _ in FAULTS]
    rep = run(responses, judge(scripted_server, backend), tmp_path / "s.db", retries=3)
    assert rep.transport_failures == 0 and rep.calls_made == len(FAULTS)  # faults are not calls
    for resp, j, (directive, requests) in zip(responses, rep.judgments, FAULTS, strict=True):
        log = seen(scripted_server, resp)
        assert len(log) == requests, directive
        assert j.status == "scored" and j.calls == 1 and j.reason is None, directive
        assert j.overall == (5 if "valid=5" in directive else 4)
        assert all(e["n_messages"] == base_messages(resp) for e in log)  # a retry is the same request


def test_exhausted_retries_leave_unscored_errors_that_a_rerun_retries(scripted_server: ScriptedServer,
                                                                      make_response: MakeResponse,
                                                                      backend: str, tmp_path: Path) -> None:
    down = scripted(make_response, "always500")
    bad = scripted(make_response, "nonsense")  # the server answers 400: permanent, not retried
    rep = run([down, bad], judge(scripted_server, backend), tmp_path / "s.db", retries=2)
    assert len(seen(scripted_server, down)) == 3 and len(seen(scripted_server, bad)) == 1
    assert rep.transport_failures == 2 and rep.calls_made == 0
    for j in rep.judgments:
        assert j.status == "unscored" and j.reason is not None and j.reason.startswith("error:")
        assert j.scores == {} and j.overall is None and j.passed is None and j.calls == 0
    assert "gave up after 3 tries" in (rep.judgments[0].reason or "")
    assert "unknown script token" in (rep.judgments[1].reason or "")  # the server's message
    assert "gave up" not in (rep.judgments[1].reason or "")
    with Store(tmp_path / "s.db") as store:
        assert store.count() == 0  # no reply arrived, so nothing is settled
    again = run([down, bad], judge(scripted_server, backend), tmp_path / "s.db", retries=2)
    assert len(seen(scripted_server, down)) == 6 and len(seen(scripted_server, bad)) == 2
    assert again.transport_failures == 2 and again.calls_cached == 0


def test_timeout_is_an_error_after_retries(scripted_server: ScriptedServer, make_response: MakeResponse,
                                           backend: str, tmp_path: Path) -> None:
    resp = scripted(make_response, "slow=2")
    rep = run([resp], judge(scripted_server, backend, timeout=0.3), tmp_path / "s.db", retries=1)
    (j,) = rep.judgments
    assert j.status == "unscored" and j.reason is not None
    assert j.reason.startswith("error:") and "timed out" in j.reason, j.reason
    assert len(seen(scripted_server, resp)) == 2 and rep.transport_failures == 1
    assert rep.wall_s < 1.8  # two 0.3 s tries, not the server's 2 s


# ---- samples and reduction ----------------------------------------------------------------------------

def test_samples_use_consecutive_seeds(scripted_server: ScriptedServer, make_response: MakeResponse,
                                       backend: str, tmp_path: Path) -> None:
    resp = scripted(make_response, "valid=5")
    spec = judge(scripted_server, backend, temperature=0.7, seed=11)
    rep = run([resp], spec, tmp_path / "s.db", samples=3)
    log = seen(scripted_server, resp)
    assert sorted(e["seed"] for e in log) == [11, 12, 13]
    assert {e["temperature"] for e in log} == {0.7}
    (j,) = rep.judgments
    assert j.status == "scored" and j.reason is None and j.calls == 3
    assert j.temperature == 0.7 and j.seed == 11
    assert j.scores == dict.fromkeys(RUBRIC.criterion_names, 5.0) and j.overall == 5
    assert j.spread == dict.fromkeys(RUBRIC.reply_keys, 0.0)
    assert sorted(s.sample for s in j.samples) == [0, 1, 2] and {s.status for s in j.samples} == {"scored"}
    with Store(tmp_path / "s.db") as store:
        assert sorted(r["seed"] for r in store.iter_calls()) == [11, 12, 13]


def test_no_seed_is_sent_without_one(scripted_server: ScriptedServer, make_response: MakeResponse,
                                     backend: str, tmp_path: Path) -> None:
    resp = scripted(make_response, "valid")
    rep = run([resp], judge(scripted_server, backend, temperature=0.7, seed=None), tmp_path / "s.db", samples=2)
    assert [e["seed"] for e in seen(scripted_server, resp)] == [None, None]
    assert rep.judgments[0].status == "scored" and rep.judgments[0].seed is None


def test_one_invalid_sample_of_three(scripted_server: ScriptedServer, make_response: MakeResponse,
                                     backend: str, tmp_path: Path) -> None:
    # The samples share the server's key, so with no re-asks the first sample gets the malformed reply
    # and the other two valid ones.
    resp = scripted(make_response, "malformed_then_valid")
    spec = judge(scripted_server, backend, temperature=0.7, seed=0)
    rep = run([resp], spec, tmp_path / "s.db", samples=3, reasks=0, concurrency=1)
    (j,) = rep.judgments
    assert len(seen(scripted_server, resp)) == 3
    assert j.status == "scored" and j.overall == 4 and j.passed is True
    assert j.reason is not None and j.reason.startswith("2 of 3 samples valid"), j.reason
    assert "no JSON object found" in j.reason
    assert sorted(s.status for s in j.samples) == ["scored", "scored", "unscored"]


def _units(rows: list[dict[str, int] | None]) -> list[_Unit]:
    out = []
    for i, scores in enumerate(rows):
        res = (SampleResult(sample=i, status="scored", scores=scores, attempts=1) if scores is not None else
               SampleResult(sample=i, status="unscored", reason="invalid reply after 3 attempt(s): x", attempts=3))
        out.append(_Unit(ri=0, ji=0, sample=i, key=f"k{i}", stored=[], result=res, calls=res.attempts))
    return out


@pytest.mark.parametrize(("how", "accuracy", "overall", "passed", "accurate"), [
    ("mean", 2.75, 3.5, True, False),
    ("median", 3.0, 3.5, True, True),
    ("mode", 4.0, 2.0, False, True),  # overall has a tie (2, 2, 5, 5): the lower value, conservatively
])
def test_reduction_of_samples(make_response: MakeResponse, tmp_path: Path, how: str, accuracy: float,
                              overall: float, passed: bool, accurate: bool) -> None:
    """Samples whose scores differ cannot be scripted (the server scores every criterion alike), so the
    reduction is tested on hand-made samples."""
    ta, ov = [1, 2, 4, 4], [2, 2, 5, 5]
    rows: list[dict[str, int] | None] = [
        {"technical_accuracy": t, "comprehensiveness": 3, "relevance": 3 + i % 2, "style_and_clarity": 4,
         "overall": o} for i, (t, o) in enumerate(zip(ta, ov, strict=True))]
    resp = make_response()
    spec = JudgeSpec(model="openai/x", api_base="http://127.0.0.1:9/v1", temperature=0.7)
    with Store(tmp_path / "s.db") as store:
        runner = Runner([resp], RUBRIC, [spec], store, RunOptions(reduce=how))  # type: ignore[arg-type]
        j = runner._judgment(resp, spec, _units(rows))
        assert j.status == "scored" and j.reason is None and j.calls == 4
        assert j.scores["technical_accuracy"] == accuracy and j.overall == overall
        assert j.scores["comprehensiveness"] == 3.0 and j.scores["style_and_clarity"] == 4.0
        assert j.passed is passed and j.flags == {"is_accurate": accurate}
        assert j.spread["technical_accuracy"] == pytest.approx(statistics.pstdev(ta), abs=1e-6)
        assert j.spread["overall"] == 1.5 and j.spread["comprehensiveness"] == 0.0

        partial = runner._judgment(resp, spec, _units([*rows, None]))
        assert partial.status == "scored" and partial.scores == j.scores and partial.overall == overall
        assert partial.reason == "4 of 5 samples valid; invalid reply after 3 attempt(s): x"
        assert len(partial.samples) == 5

        none = runner._judgment(resp, spec, _units([None, None]))
        assert none.status == "unscored" and none.scores == {} and none.overall is None and none.passed is None
        assert none.reason == "invalid reply after 3 attempt(s): x"


# ---- panels -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("how", "expected", "passed"), [("mean", 3.0, True), ("mode", 2.0, False)])
def test_panel_of_two_judges(scripted_server: ScriptedServer, make_response: MakeResponse, backend: str,
                             tmp_path: Path, how: str, expected: float, passed: bool) -> None:
    resp = make_response(f"{ANSWER} [[script:valid=4]] [[script@b:valid=2]]")
    judges = [judge(scripted_server, backend, "openai/a"), judge(scripted_server, backend, "openai/b")]
    rep = run([resp], judges, tmp_path / "s.db", panel_reduce=how)
    assert sorted(e["model"] for e in seen(scripted_server, resp)) == ["a", "b"]
    (j,) = rep.judgments
    assert j.judge == "panel:openai/a+openai/b" and j.status == "scored" and j.reason is None
    assert [(m.judge, m.status, m.overall) for m in j.panel] == [("openai/a", "scored", 4), ("openai/b", "scored", 2)]
    assert j.scores == dict.fromkeys(RUBRIC.criterion_names, expected) and j.overall == expected
    assert j.passed is passed and j.flags == {"is_accurate": expected >= 3}
    assert j.spread == dict.fromkeys(RUBRIC.criterion_names, 1.0)
    assert j.calls == 2 and rep.calls_made == 2
    assert {k: [m.overall for m in v] for k, v in rep.per_judge.items()} == {"openai/a": [4], "openai/b": [2]}


@pytest.mark.parametrize(("quorum", "scored"), [(None, False), (1, True), (2, False)])
def test_panel_with_a_failed_judge(scripted_server: ScriptedServer, make_response: MakeResponse, backend: str,
                                   tmp_path: Path, quorum: int | None, scored: bool) -> None:
    resp = make_response(f"{ANSWER} [[script:valid=4]] [[script@b:always500]]")
    judges = [judge(scripted_server, backend, "openai/a"), judge(scripted_server, backend, "openai/b")]
    rep = run([resp], judges, tmp_path / "s.db", retries=1, panel_quorum=quorum)
    (j,) = rep.judgments
    a, b = j.panel
    assert (a.judge, a.status, a.overall) == ("openai/a", "scored", 4)
    assert b.judge == "openai/b" and b.status == "unscored" and b.reason and b.reason.startswith("error:")
    assert rep.transport_failures == 1
    assert j.reason is not None and f"openai/b unscored ({b.reason})" in j.reason, j.reason
    if scored:  # only with quorum 1: the default quorum of two judges is two
        assert j.status == "scored" and j.overall == 4 and j.reason.startswith("panel: 1 of 2 judges scored;")
    else:
        assert j.status == "unscored" and j.scores == {} and j.overall is None and j.passed is None
        assert j.reason.startswith("panel: 1 of 2 judges scored, quorum is 2")


def test_panel_of_three_judges_majority_quorum(scripted_server: ScriptedServer, make_response: MakeResponse,
                                               backend: str, tmp_path: Path) -> None:
    one_fails = make_response(f"{ANSWER} [[script:valid=5]] [[script@b:malformed]] [[script@c:valid=3]]")
    two_fail = make_response(f"{ANSWER} [[script:valid=5]] [[script@b:malformed]] [[script@c:always503]]")
    judges = [judge(scripted_server, backend, f"openai/{n}") for n in "abc"]
    rep = run([one_fails, two_fail], judges, tmp_path / "s.db", reasks=1, retries=0)
    ok, failed = rep.judgments
    assert ok.status == "scored" and ok.overall == 4.0 and ok.judge == "panel:openai/a+openai/b+openai/c"
    assert ok.reason is not None and ok.reason.startswith("panel: 2 of 3 judges scored;")
    assert "openai/b unscored (invalid reply after 2 attempt(s): no JSON object found in the reply)" in ok.reason
    assert failed.status == "unscored" and failed.reason is not None
    assert failed.reason.startswith("panel: 1 of 3 judges scored, quorum is 2;")
    assert "openai/b unscored (invalid" in failed.reason and "openai/c unscored (error:" in failed.reason
    assert len(seen(scripted_server, one_fails)) == 1 + 2 + 1


# ---- the store ----------------------------------------------------------------------------------------

def test_rerun_is_served_from_the_store(scripted_server: ScriptedServer, make_response: MakeResponse,
                                        backend: str, tmp_path: Path) -> None:
    responses = [scripted(make_response, f"valid={s}") for s in (2, 4, 5)]
    db = tmp_path / "s.db"
    first = run(responses, judge(scripted_server, backend), db)
    assert scripted_server.requests == 3 and first.calls_made == 3
    second = run(responses, judge(scripted_server, backend), db)
    assert scripted_server.requests == 3 and second.calls_made == 0 and second.calls_cached == 3
    for a, b in zip(first.judgments, second.judgments, strict=True):
        assert a.cached_calls == 0 and b.cached_calls == 1
        assert a.model_dump(exclude={"cached_calls"}) == b.model_dump(exclude={"cached_calls"})
    # settings that do not change what the judge is asked (timeout, address) reuse the store
    same = run(responses, judge(scripted_server, backend, timeout=33.0), db)
    assert scripted_server.requests == 3 and same.calls_cached == 3
    # a second sample is new, the first is not
    more = run(responses, judge(scripted_server, backend), db, samples=2)
    assert scripted_server.requests == 6 and more.calls_made == 3 and more.calls_cached == 3


def test_rubric_or_temperature_change_makes_new_calls(scripted_server: ScriptedServer,
                                                      make_response: MakeResponse, backend: str,
                                                      tmp_path: Path) -> None:
    responses = [scripted(make_response, "valid=4") for _ in range(2)]
    db = tmp_path / "s.db"
    run(responses, judge(scripted_server, backend), db)
    assert scripted_server.requests == 2
    edited = tmp_path / "robustmad.yaml"
    edited.write_text(RUBRIC_PATH.read_text(encoding="utf-8").replace(
        "Colours should be named precisely.", "Colours must be named precisely."), encoding="utf-8")
    changed = load_rubric(edited)
    assert changed.version == RUBRIC.version and changed.fingerprint != RUBRIC.fingerprint
    rep = run(responses, judge(scripted_server, backend), db, rubric=changed)
    assert scripted_server.requests == 4 and rep.calls_made == 2 and rep.calls_cached == 0
    rep = run(responses, judge(scripted_server, backend, temperature=0.5), db)
    assert scripted_server.requests == 6 and rep.calls_made == 2 and rep.calls_cached == 0
    assert {e["temperature"] for e in scripted_server.log[-2:]} == {0.5}
    rep = run(responses, judge(scripted_server, backend), db)  # the original settings are still stored
    assert scripted_server.requests == 6 and rep.calls_cached == 2


# ---- the cost budget ----------------------------------------------------------------------------------

def _cost_per_call() -> float:
    """With price_in=0 and price_out=1e6 USD per million tokens a call costs its completion tokens."""
    reply = render("valid", [(k, 1, 5) for k in RUBRIC.reply_keys], 4)
    return float(len(reply.split()))


def test_max_cost_stops_the_run_and_a_rerun_completes(scripted_server: ScriptedServer,
                                                      make_response: MakeResponse, backend: str,
                                                      tmp_path: Path) -> None:
    per_call = _cost_per_call()
    responses = [scripted(make_response, "valid") for _ in range(6)]
    spec = judge(scripted_server, backend, price_in=0.0, price_out=1e6)
    db = tmp_path / "s.db"
    rep = run(responses, spec, db, concurrency=1, max_cost=2.5 * per_call)
    assert rep.budget_reached and rep.calls_made == 3 and scripted_server.requests == 3
    assert rep.cost == pytest.approx(3 * per_call) and rep.unpriced_calls == 0
    assert [j.status for j in rep.judgments] == ["scored"] * 3 + ["unscored"] * 3
    assert all(j.cost == pytest.approx(per_call) for j in rep.judgments[:3])
    assert all(j.reason == NOT_RUN_BUDGET and j.calls == 0 for j in rep.judgments[3:])
    again = run(responses, spec, db, concurrency=1, max_cost=100 * per_call)
    assert not again.budget_reached and [j.status for j in again.judgments] == ["scored"] * 6
    assert again.calls_made == 3 and again.calls_cached == 3 and scripted_server.requests == 6
    assert again.cost == pytest.approx(3 * per_call)  # this run's spending: the first three are not repaid
    assert all(len(seen(scripted_server, r)) == 1 for r in responses)


def test_max_cost_bounds_calls_with_concurrency(scripted_server: ScriptedServer, make_response: MakeResponse,
                                                tmp_path: Path) -> None:
    per_call, concurrency = _cost_per_call(), 4
    responses = [scripted(make_response, "valid,slow=0.02") for _ in range(20)]
    spec = judge(scripted_server, "lean", price_in=0.0, price_out=1e6)
    rep = run(responses, spec, tmp_path / "s.db", concurrency=concurrency, max_cost=2.5 * per_call)
    assert rep.budget_reached
    assert 3 <= rep.calls_made <= math.ceil(2.5) + concurrency - 1 and scripted_server.requests == rep.calls_made
    assert sum(j.status == "scored" for j in rep.judgments) == rep.calls_made
    assert all(j.reason == NOT_RUN_BUDGET for j in rep.judgments if j.status == "unscored")


# ---- rate limit ---------------------------------------------------------------------------------------

def test_requests_per_minute_bound(scripted_server: ScriptedServer, make_response: MakeResponse,
                                   tmp_path: Path) -> None:
    """The limiter sits in the runner, the same for both backends, so the lean one is enough here.
    The bucket holds a tenth of a minute's allowance and refills at ``rpm / 60`` per second: with
    rpm=1200 and 150 calls, 120 go at once and the last 30 take about 1.5 s."""
    rpm, n = 1200, 150
    responses = [scripted(make_response, "valid") for _ in range(n)]
    rep = run(responses, judge(scripted_server, "lean"), tmp_path / "s.db", requests_per_minute=rpm)
    assert rep.calls_made == n and all(j.status == "scored" for j in rep.judgments)
    times = sorted(e["time"] for e in scripted_server.log)
    t0 = times[0]
    for k, t in enumerate(times):  # by time t at most rpm/10 + (t - t0) * rpm / 60 requests started
        assert k + 1 <= rpm / 10 + (t - t0) * rpm / 60 + 1, (k, t - t0)
    assert 1.2 <= times[-1] - t0 < 3.5  # throttled, but not more than asked


# ---- request contents ---------------------------------------------------------------------------------

def _tiny_png(path: Path, rgb: tuple[int, int, int]) -> str:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(rgb))) + chunk(b"IEND", b""))
    return str(path)


@pytest.mark.parametrize(("images", "sent"), [("auto", True), ("yes", True), ("no", False)])
def test_images_are_sent_as_image_parts(scripted_server: ScriptedServer, make_response: MakeResponse,
                                        backend: str, tmp_path: Path, images: str, sent: bool) -> None:
    query = _tiny_png(tmp_path / "query.png", (200, 10, 10))
    refs = [_tiny_png(tmp_path / f"ref{i}.png", (10, 10, 10 * i)) for i in (1, 2)]
    both = scripted(make_response, "valid", images=[query], reference_images=refs)
    query_only = scripted(make_response, "valid", images=[query])
    ref_only = scripted(make_response, "malformed_then_valid", reference_images=refs[:1])
    plain = scripted(make_response, "valid")
    spec = judge(scripted_server, backend, images=images)
    rep = run([both, query_only, ref_only, plain], spec, tmp_path / "s.db")
    assert all(j.status == "scored" for j in rep.judgments)
    assert [e["image_parts"] for e in seen(scripted_server, both)] == [3 if sent else 0]
    assert [e["image_parts"] for e in seen(scripted_server, query_only)] == [1 if sent else 0]
    assert [e["image_parts"] for e in seen(scripted_server, ref_only)] == ([1, 1] if sent else [0, 0])  # re-ask too
    assert [e["image_parts"] for e in seen(scripted_server, plain)] == [0]


@pytest.mark.parametrize(("fmt", "sent"), [("auto", True), ("json_schema", True), ("json_object", True),
                                           ("none", False)])
def test_response_format(scripted_server: ScriptedServer, make_response: MakeResponse, backend: str,
                         tmp_path: Path, fmt: str, sent: bool) -> None:
    resp = scripted(make_response, "valid=3")
    rep = run([resp], judge(scripted_server, backend, response_format=fmt), tmp_path / "s.db")
    assert rep.judgments[0].status == "scored" and rep.judgments[0].overall == 3
    assert [e["has_response_format"] for e in seen(scripted_server, resp)] == [sent]


# ---- the API key --------------------------------------------------------------------------------------

def _store_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("s.db*")))


def test_api_key_goes_in_the_header_and_nowhere_else(make_response: MakeResponse, backend: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    key = "jk-test-key-5f0c2a9d7e"
    monkeypatch.setenv("JK_TEST_KEY", key)
    responses = [scripted(make_response, "valid"), scripted(make_response, "always500"),
                 scripted(make_response, "malformed_then_valid")]
    with ScriptedServer(api_key=key) as server:
        rep = run(responses, judge(server, backend, api_key_env="JK_TEST_KEY"), tmp_path / "s.db", retries=0)
        log = server.log
    assert [j.status for j in rep.judgments] == ["scored", "unscored", "scored"]
    assert len(log) == 4 and all(e["has_auth"] and e["auth_ok"] for e in log)
    blob = _store_bytes(tmp_path)
    assert b"jk-test-key" not in blob and b"JK_TEST_KEY" not in blob and len(blob) > 0
    assert "jk-test-key" not in "".join(j.model_dump_json() for j in rep.judgments) + repr(rep)


def test_wrong_api_key_is_refused(make_response: MakeResponse, backend: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JK_TEST_KEY", "jk-wrong-key-81d3b6")
    resp = scripted(make_response, "valid")
    with ScriptedServer(api_key="jk-right-key-0000") as server:
        # a refused key is a setup mistake: the whole run stops at once with the cause (issue 10.6)
        with pytest.raises(RunAborted) as exc:
            run([resp], judge(server, backend, api_key_env="JK_TEST_KEY"), tmp_path / "s.db", retries=3)
        log = server.log
    assert len(log) == 1 and log[0]["has_auth"] and log[0]["auth_ok"] is False  # 401 is not retried
    assert "401" in str(exc.value) and "jk-wrong-key" not in str(exc.value)
    assert b"jk-wrong-key" not in _store_bytes(tmp_path)


def test_missing_api_key_variable_is_an_error(scripted_server: ScriptedServer, make_response: MakeResponse,
                                              backend: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JK_TEST_KEY", raising=False)
    responses = [scripted(make_response, "valid") for _ in range(3)]
    with pytest.raises(JudgekitError, match="JK_TEST_KEY"):
        run(responses, judge(scripted_server, backend, api_key_env="JK_TEST_KEY"), tmp_path / "s.db")
    assert scripted_server.requests == 0
    with Store(tmp_path / "s.db") as store:
        assert store.count() == 0


def test_judgments_assembled_during_the_run_equal_those_assembled_after_it(
        make_response: MakeResponse, tmp_path: Path) -> None:
    """Each response's judgments are built as its last sample settles (Runner.assemble_early); with a panel, several
    samples, re-asks and an unscored response they must be exactly what assembling after the run gives (each run
    against a fresh scripted server: the server counts attempts per question)."""
    responses = [scripted(make_response, "valid=4"), scripted(make_response, "malformed_then_valid,valid=2"),
                 scripted(make_response, "byseed"), scripted(make_response, "malformed")]

    class AfterTheRun(Runner):
        assemble_early = False

    def judgments(cls: type[Runner], store: Path) -> list[dict[str, Any]]:
        with ScriptedServer() as server, Store(store) as st:
            specs = [judge(server, "lean", "openai/a"), judge(server, "lean", "openai/b")]
            report = cls(responses, RUBRIC, specs, st, RunOptions(samples=3, **FAST)).run_sync()
        assert report.calls_made > 0  # judged now, not read from a store
        return [{**j.model_dump(exclude={"latency_s", "panel"}),
                 "panel": [m.model_dump(exclude={"latency_s"}) for m in j.panel or []]} for j in report.judgments]

    early = judgments(Runner, tmp_path / "early.sqlite")
    late = judgments(AfterTheRun, tmp_path / "late.sqlite")
    assert early == late
    assert [j["status"] for j in early] == ["scored", "scored", "scored", "unscored"]
