"""Many servers behind one judge (several ``--api-base`` for one ``--judge``, or ``--deployments FILE.yaml``):
the choice and cooldown rules of :class:`judgekit.judging.backends.servers.ServerPool`, the deployments file, and
whole runs against 2-4 scripted loopback servers on the lean and the litellm paths and through the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import RUBRIC, flat, jk, read_jsonl, write_jsonl

import judgekit
from judgekit.io.errors import JudgekitError
from judgekit.judging.backends import JudgeSpec, TransientError
from judgekit.judging.backends.servers import (
    COOLDOWN_BASE_S,
    COOLDOWN_MAX_S,
    Deployment,
    ServerPool,
    deployments_of,
    load_deployments,
)

JUDGE = "openai/scripted"


def rows(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` responses with distinct questions (distinct store keys), scored 1-5 by the scripted judge."""
    return [{"id": f"{tag}{i}", "model": "m1", "question": f"[{tag}] servers question {i}?",
             "reference": "A dent on the rim.", "response": f"Answer {i}. [[script:valid={1 + i % 5}]]"}
            for i in range(n)]


@contextmanager
def servers(*kinds: dict[str, Any]) -> Iterator[list[ScriptedServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(ScriptedServer(**k)) for k in kinds]


def dead_url() -> str:
    """The base URL of a server that was started and stopped: nothing answers there (connection refused)."""
    srv = ScriptedServer().start()
    url = srv.base_url
    srv.stop()
    return url


def fingerprint(results: Any) -> list[tuple[Any, ...]]:
    return [(j.id, j.status, tuple(sorted(j.scores.items())), j.overall, j.passed) for j in results.judgments]


# ---- the choice of a server, without a network ------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_least_busy_round_robin_and_weights() -> None:
    pool = ServerPool([Deployment("http://a/v1"), Deployment("http://b/v1"), Deployment("http://c/v1", weight=2)])
    first = [pool.pick() for _ in range(3)]
    assert {s.index for s in first if s is not None} == {0, 1, 2}  # idle servers each get a call
    more = [pool.pick() for _ in range(4)]
    counts = [s.in_flight for s in pool.servers]
    assert counts == [2, 2, 3] or counts[2] >= counts[0], counts  # the weight-2 server carries more
    for s in [*first, *more]:
        assert s is not None
        pool.done(s, latency=0.1)
    assert sum(v["calls"] for v in pool.stats().values()) == 7
    assert all(s.in_flight == 0 for s in pool.servers)


def test_max_concurrency_waits_for_a_slot() -> None:
    async def main() -> list[int]:
        pool = ServerPool([Deployment("http://a/v1", max_concurrency=1), Deployment("http://b/v1", max_concurrency=2)])
        peak = [0, 0]

        async def call() -> None:
            s = await pool.acquire()
            peak[s.index] = max(peak[s.index], s.in_flight)
            await asyncio.sleep(0.01)
            pool.done(s, latency=0.01)

        await asyncio.gather(*(call() for _ in range(12)))
        assert sum(v["calls"] for v in pool.stats().values()) == 12
        return peak

    assert asyncio.run(main()) == [1, 2]


def test_cooldown_is_exponential_capped_and_reset_by_a_success() -> None:
    clock = Clock()
    pool = ServerPool([Deployment("http://a/v1"), Deployment("http://b/v1")], clock=clock)
    a, b = pool.servers
    err = TransientError("HTTP 503")
    for n in range(1, 8):
        a.in_flight += 1
        pool.done(a, error=err, transient=True)
        assert a.cool_until - clock.t == pytest.approx(min(COOLDOWN_BASE_S * 2 ** (n - 1), COOLDOWN_MAX_S))
    picks = [pool.pick() for _ in range(5)]
    assert all(p is b for p in picks)  # the cooling server is skipped while the other is healthy
    for p in picks:
        pool.done(p, latency=0.1)  # type: ignore[arg-type]
    clock.t = a.cool_until + 0.01
    got = pool.pick()
    assert got is a  # cooled down long enough: tried again (least busy)
    pool.done(a, latency=0.1)
    assert a.consecutive == 0 and a.cool_until == 0.0
    stats = pool.stats()
    assert stats["http://a/v1"] == {"calls": 1, "failures": 7, "latency_s": pytest.approx(0.1)}


def test_every_server_cooling_tries_the_first_to_recover_and_connect_needs_all() -> None:
    clock = Clock()
    pool = ServerPool([Deployment("http://a/v1"), Deployment("http://b/v1")], clock=clock)
    a, b = pool.servers
    refused = TransientError("connection error: connection refused", kind="connect")
    a.in_flight += 1
    pool.done(a, error=refused, transient=True, connect=True)
    assert not pool.nothing_answers()  # b has not failed: one dead server is no reason to stop
    b.in_flight += 1
    pool.done(b, error=refused, transient=True, connect=True)
    b.in_flight += 1
    pool.done(b, error=refused, transient=True, connect=True)  # b cools longer than a
    assert pool.nothing_answers()
    assert pool.pick() is a


def test_credentials_in_a_server_url_are_masked() -> None:
    from judgekit.io.redact import redact

    pool = ServerPool([Deployment("http://bob:hunter2pw@a:8000/v1"), Deployment("http://b/v1")])
    assert list(pool.stats()) == ["http://bob:***@a:8000/v1", "http://b/v1"]
    text = "HTTP 503 from http://bob:hunter2pw@a:8000/v1/chat/completions: busy"
    assert redact(text) == "HTTP 503 from http://bob:***@a:8000/v1/chat/completions: busy"
    assert redact("see user@example.com or http://a:8000/v1") == "see user@example.com or http://a:8000/v1"


# ---- the deployments file -----------------------------------------------------------------------------------
def test_deployments_file(tmp_path: Path) -> None:
    path = tmp_path / "servers.yaml"
    path.write_text("- api_base: http://a:8000/v1\n  weight: 2\n  max_concurrency: 16\n"
                    "- api_base: http://b:8000/v1\n  rpm: 600\n  tpm: 100000\n", encoding="utf-8")
    got = load_deployments(path)
    assert got == [Deployment("http://a:8000/v1", weight=2.0, max_concurrency=16),
                   Deployment("http://b:8000/v1", rpm=600.0, tpm=100000.0)]
    assert deployments_of([{"api_base": "http://a/v1"}, "http://b/v1"])[1].api_base == "http://b/v1"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("- api_base: http://a/v1\n- api_base: http://b/v1\n  wieght: 2\n", 3, "unknown field 'wieght'"),
    ("- api_base: http://a/v1\n  max_concurrency: 0\n", 2, "max_concurrency must be a positive integer"),
    ("- api_base: http://a/v1\n  rpm: lots\n", 2, "rpm must be a positive number"),
    ("- api_base: http://a/v1\n- rpm: 5\n", 2, "api_base is missing"),
    ("- api_base: ftp://a/v1\n", 1, "must start with http"),
    ("- api_base: http:///v1\n", 1, "api_base has no host"),
    ("- api_base: http://a:99999/v1\n", 1, "api_base has a bad port"),
    ("- api_base: http://a/v1\n- api_base: http://a/v1/\n", 2, "already server 1"),
    ("api_base: http://a/v1\n", 1, "expected a non-empty YAML list"),
    ("- api_base: [unclosed\n", 2, "invalid YAML"),
])
def test_bad_deployments_file_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "servers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(JudgekitError) as info:
        load_deployments(path)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)
    assert words in str(info.value)


def test_spec_keeps_api_base_and_identity_has_no_server() -> None:
    one = JudgeSpec(model=JUDGE, api_base="http://a/v1")
    many = JudgeSpec(model=JUDGE, deployments=[Deployment("http://b/v1"), Deployment("http://c/v1")])
    assert many.api_base == "http://b/v1" and many.resolved_backend() == "lean"
    assert one.identity() == many.identity()
    assert [d.api_base for d in one.servers()] == ["http://a/v1"]


def test_api_base_rules_for_panels_and_one_judge(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "r.jsonl", rows(2, "rules"))
    with pytest.raises(JudgekitError, match="one per --judge"):  # a panel: N bases for N judges only
        judgekit.judge(data, RUBRIC, ["openai/a", "openai/b"], api_base=["http://x/v1"] * 3,
                       store=tmp_path / "s.sqlite")
    with pytest.raises(JudgekitError, match="not both"):
        judgekit.judge(data, RUBRIC, JUDGE, api_base="http://x/v1", deployments=["http://y/v1"],
                       store=tmp_path / "s.sqlite")
    with pytest.raises(JudgekitError, match="servers of one judge"):
        judgekit.judge(data, RUBRIC, ["openai/a", "openai/b"], deployments=["http://y/v1"],
                       store=tmp_path / "s.sqlite")
    assert not (tmp_path / "s.sqlite").exists()


# ---- whole runs on loopback servers ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["lean", "litellm"])
def test_calls_spread_over_servers_and_results_match_one_server(tmp_path: Path, backend: str) -> None:
    n = 48
    data = write_jsonl(tmp_path / "r.jsonl", rows(n, f"spread-{backend}"))
    with servers({"latency": 0.03}, {"latency": 0.03}, {"latency": 0.03}) as srvs:
        store = tmp_path / "many.sqlite"
        many = judgekit.judge(data, RUBRIC, JUDGE, api_base=[s.base_url for s in srvs], backend=backend,
                              concurrency=6, store=store)
        assert many.calls_made == n and all(j.status == "scored" for j in many.judgments)
        got = [s.requests for s in srvs]
        assert sum(got) == n and min(got) >= n // 6, got  # every server gets a share
        per = many.run.per_server  # type: ignore[union-attr]
        assert sorted(per) == sorted(s.base_url for s in srvs)
        assert sum(v["calls"] for v in per.values()) == many.calls_made
        assert [per[s.base_url]["calls"] for s in srvs] == got
        assert all(v["failures"] == 0 and v["latency_s"] > 0.02 for v in per.values())
        again = judgekit.judge(data, RUBRIC, JUDGE, api_base=[s.base_url for s in srvs], backend=backend,
                               concurrency=6, store=store)
        assert again.calls_made == 0 and sum(s.requests for s in srvs) == n
        # one server, same store: the same keys (no URL in them), so nothing to call
        same = judgekit.judge(data, RUBRIC, JUDGE, api_base=srvs[0].base_url, backend=backend, store=store)
        assert same.calls_made == 0
        # one server, a fresh store: the same results
        single = judgekit.judge(data, RUBRIC, JUDGE, api_base=srvs[1].base_url, backend=backend, concurrency=6,
                                store=tmp_path / "one.sqlite")
        assert single.calls_made == n
        assert fingerprint(single) == fingerprint(many)


@pytest.mark.parametrize("backend", ["lean", "litellm"])
def test_failing_and_dead_servers_are_cooled_down(tmp_path: Path, backend: str) -> None:
    n = 80
    data = write_jsonl(tmp_path / "r.jsonl", rows(n, f"fail-{backend}"))
    dead = dead_url()
    with servers({"latency": 0.02}, {"latency": 0.02}, {"fail_all": 503}) as srvs:
        bases = [srvs[0].base_url, dead, srvs[1].base_url, srvs[2].base_url]
        res = judgekit.judge(data, RUBRIC, JUDGE, api_base=bases, backend=backend, concurrency=8,
                             store=tmp_path / "s.sqlite")
        assert res.complete and res.calls_made == n
        assert all(j.status == "scored" for j in res.judgments)
        per = res.run.per_server  # type: ignore[union-attr]
        assert per[dead]["calls"] == 0 and per[srvs[2].base_url]["calls"] == 0
        assert per[dead]["failures"] >= 1 and per[srvs[2].base_url]["failures"] >= 1
        # cooled down: a handful of tries each (exponential cooldown), far from their share (half the calls)
        assert per[dead]["failures"] + per[srvs[2].base_url]["failures"] <= n // 4, per
        assert sum(v["calls"] for v in per.values()) == n == srvs[0].requests + srvs[1].requests
        again = judgekit.judge(data, RUBRIC, JUDGE, api_base=bases, backend=backend, store=tmp_path / "s.sqlite")
        assert again.calls_made == 0


def test_a_server_that_dies_mid_run(tmp_path: Path) -> None:
    n = 60
    data = write_jsonl(tmp_path / "r.jsonl", rows(n, "mid"))
    with servers({"latency": 0.02}, {"latency": 0.02}) as srvs:
        seen: list[int] = []

        def progress(done: int, total: int, cost: float = 0.0) -> None:
            if done >= 15 and not seen:
                seen.append(done)
                srvs[1].set_fail_all("drop")  # every request to it now loses its connection

        res = judgekit.judge(data, RUBRIC, JUDGE, api_base=[s.base_url for s in srvs], concurrency=4,
                             store=tmp_path / "s.sqlite", progress=progress)
        assert res.complete and all(j.status == "scored" for j in res.judgments)
        per = res.run.per_server  # type: ignore[union-attr]
        assert sum(v["calls"] for v in per.values()) == n
        assert per[srvs[1].base_url]["failures"] >= 1 and per[srvs[0].base_url]["calls"] > n // 2


def test_nothing_answering_at_any_server_stops_the_run(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "r.jsonl", rows(12, "dead"))
    with pytest.raises(JudgekitError, match="nothing answers"):
        judgekit.judge(data, RUBRIC, JUDGE, api_base=[dead_url(), dead_url()], concurrency=4,
                       store=tmp_path / "s.sqlite")


# ---- the CLI ---------------------------------------------------------------------------------------------------
def test_cli_repeated_api_base_and_deployments(tmp_path: Path) -> None:
    n = 24
    data = write_jsonl(tmp_path / "r.jsonl", rows(n, "cli"))
    with servers({"latency": 0.02}, {"latency": 0.02}) as srvs:
        secret_base = srvs[0].base_url.replace("http://", "http://alice:pw-s3cr3t-xyz@")
        common = ["judge", data, "--rubric", RUBRIC, "--judge", JUDGE, "--no-progress", "--concurrency", "4"]
        r = jk(*common, "--api-base", secret_base, "--api-base", srvs[1].base_url,
               "--store", tmp_path / "a.sqlite", "--out", tmp_path / "a.jsonl")
        assert r.returncode == 0, r.stderr
        text = flat(r.stdout)
        assert "calls per server" in text and "alice:***@" in text, r.stdout
        assert "pw-s3cr3t-xyz" not in r.stdout + r.stderr
        assert f"{n} calls made" in text
        assert srvs[0].requests > 0 and srvs[1].requests > 0
        dep = tmp_path / "servers.yaml"
        dep.write_text(f"- api_base: {srvs[0].base_url}\n  max_concurrency: 2\n"
                       f"- api_base: {srvs[1].base_url}\n  weight: 2\n", encoding="utf-8")
        r = jk(*common, "--deployments", dep, "--store", tmp_path / "b.sqlite", "--out", tmp_path / "b.jsonl")
        assert r.returncode == 0, r.stderr
        assert "calls per server" in flat(r.stdout) and f"{n} calls made" in flat(r.stdout)
        keep = ("id", "status", "scores", "overall", "passed", "rationale")
        a, b = ([{k: row[k] for k in keep} for row in read_jsonl(tmp_path / f"{x}.jsonl")] for x in "ab")
        assert a == b and len(a) == n


def test_cli_bad_deployments_file_exit_2(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "r.jsonl", rows(2, "clibad"))
    dep = tmp_path / "servers.yaml"
    dep.write_text("- api_base: http://127.0.0.1:9/v1\n  max_concurrency: many\n", encoding="utf-8")
    r = jk("judge", data, "--rubric", RUBRIC, "--judge", JUDGE, "--deployments", dep, "--no-progress",
           "--store", tmp_path / "s.sqlite", "--out", tmp_path / "o.jsonl")
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{dep}:2" in flat(r.stderr) and "max_concurrency" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(("base", "words"), [("ftp://127.0.0.1/v1", "must start with http"),
                                             ("http:///v1", "has no host"), ("http://127.0.0.1:70000/v1", "bad port")])
def test_a_bad_api_base_is_refused_before_anything_is_written(tmp_path: Path, base: str, words: str) -> None:
    """One --api-base is checked like a deployments file's servers: exit 2 naming the flag, no store, no results."""
    data = write_jsonl(tmp_path / "r.jsonl", rows(1, "badbase"))
    r = jk("judge", data, "--rubric", RUBRIC, "--judge", JUDGE, "--api-base", base, "--store", tmp_path / "s.sqlite",
           "--out", tmp_path / "out.jsonl", "--no-progress")
    assert r.returncode == 2 and "--api-base" in r.stderr and words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "out.jsonl").exists()
