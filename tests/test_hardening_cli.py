"""Issue 10 as a user meets it: wrong figures, a steerable parser, secrets, setup mistakes, flags, readers.

Every test runs the ``judgekit`` console script as a subprocess (or ``judgekit.cli.main`` in-process where the
exit code and message are all that matter) against the scripted loopback server of tests/scripted_server.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import RUBRIC, _env, _judgekit_cmd, flat, jk, judge_args, read_jsonl, write_jsonl

from judgekit.cli import main

SECRET = "sk-ECHOED-4c1d9e7b2a-never-on-disk"


def _rows(n: int = 6, script: str = "valid=4", **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"h{i}", "model": "m1", "question": f"Hardening question {i}{extra.pop('tag', '')}?",
             "reference": "A scratch on the rim.", "response": f"Answer {i}. [[script:{script}]]",
             "condition": "clean"} for i in range(n)]


@pytest.fixture(scope="module")
def srv() -> Any:
    with ScriptedServer() as s:
        yield s


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, srv: ScriptedServer) -> Path:
    """A real results file: 6 scored judgments, one condition."""
    d = tmp_path_factory.mktemp("results")
    rows = [{**r, "question": r["question"] + " (results fixture)"} for r in _rows()]
    rows[1]["response"] = "Answer 1. [[script:valid=2]]"
    responses = write_jsonl(d / "responses.jsonl", rows)
    r = jk(*judge_args(responses, srv, d / "store.sqlite", d / "results.jsonl"))
    assert r.returncode == 0, r.stderr
    return d / "results.jsonl"


# ---- 1. no silent wrong figure -----------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r.pop("overall"), "overall"),
    (lambda r: r.update(overall=None), "overall"),
    (lambda r: r.update(overall="high"), "overall"),
    (lambda r: r.pop("passed"), "passed"),
    (lambda r: r["scores"].update(relevance="x"), "scores.relevance"),
    (lambda r: r["scores"].pop("relevance"), "scores.relevance"),
])
def test_report_refuses_a_scored_row_with_a_missing_or_bad_score(
        tmp_path: Path, results: Path, change: Any, field: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = read_jsonl(results)
    change(rows[2])
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and field in err, err
    assert "Traceback" not in err


def test_report_mean_is_over_real_scores(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 5 answers scored 4 and one scored 2 on every criterion: overall mean (5*4 + 2) / 6 = 3.67
    assert main(["report", str(results)]) == 0
    assert "3.67" in capsys.readouterr().out


# ---- 10. every command reads what judge --out writes ------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_report_and_agree_read_csv_and_parquet_results(tmp_path: Path, results: Path, suffix: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from judgekit.io.dataio import read_judgments, write_records

    judgments = read_judgments(results)
    other = tmp_path / f"results{suffix}"
    write_records(other, judgments)
    again = read_judgments(other)
    assert [j.model_dump() for j in again] == [j.model_dump() for j in judgments]
    assert main(["report", str(results)]) == 0
    want = capsys.readouterr().out
    assert main(["report", str(other)]) == 0
    assert capsys.readouterr().out == want
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("id,rater,score\n" + "".join(f"h{i},r1,{4 if i != 1 else 2}\nh{i},r2,{3 + i % 2}\n"
                                                   for i in range(6)), encoding="utf-8")
    assert main(["agree", "--judge", str(other), "--human", str(ratings), "--criterion", "overall"]) == 0


def test_report_json_for_one_condition_and_markdown_with_every_table(tmp_path: Path, results: Path) -> None:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["report", str(results), "--json", str(out_json), "--markdown", str(out_md)]) == 0
    payload = json.loads(out_json.read_text())
    assert payload["judgments"] == 6 and payload["robustness"] == []
    assert "no robustness comparison" in payload["robustness_note"]
    assert payload["pass_rates"][0]["passed"] == 5
    md = out_md.read_text()
    assert "## Pass rates" in md and "bootstrap CI" in md and "Wilson CI" in md
    assert "83.3" in md  # 5 of 6 pass, as the console shows


def test_agree_markdown_holds_the_tables(tmp_path: Path, results: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("id,rater,score\n" + "".join(f"h{i},r1,{4 if i != 1 else 2}\nh{i},r2,{3 + i % 2}\n"
                                                   for i in range(6)), encoding="utf-8")
    md = tmp_path / "agree.md"
    assert main(["agree", "--judge", str(results), "--human", str(ratings), "--criterion", "overall",
                 "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "judge vs humans" in text and "| statistic |" in text and "inter-human ceiling" in text


def test_agree_says_why_one_fractional_rating_switches_to_continuous(tmp_path: Path, results: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("id,rater,score\n" + "".join(f"h{i},r1,{4 if i else 3.5}\n" for i in range(6)),
                       encoding="utf-8")
    args = ["agree", "--judge", str(results), "--human", str(ratings), "--criterion", "overall"]
    assert main(args) == 0
    out = flat(capsys.readouterr().out)
    assert "1 of 6 human ratings switch the analysis to continuous" in out and "--level ordinal" in out
    assert main([*args, "--level", "ordinal"]) == 0
    out = flat(capsys.readouterr().out)
    assert "ordinal statistics" in out and "rounded 0 fractional judge score(s) and 1 fractional" in out


# ---- 2. the parser cannot be steered ----------------------------------------------------------------------

def test_quoted_injected_verdict_is_never_stored_as_a_score(tmp_path: Path, srv: ScriptedServer) -> None:
    rows = _rows(4, script="inject", tag=" (inject)")
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    r = jk(*judge_args(responses, srv, tmp_path / "store.sqlite", tmp_path / "results.jsonl", "--reasks", "1"))
    assert r.returncode == 0, r.stderr
    out = read_jsonl(tmp_path / "results.jsonl")
    assert all(j["status"] == "unscored" for j in out)
    assert all("different score objects" in j["reason"] for j in out)
    assert all(j["calls"] == 2 for j in out)  # asked, re-asked, then unscored


# ---- 4. no secret on disk ---------------------------------------------------------------------------------

def test_a_key_echoed_inside_a_200_reply_never_reaches_a_file(tmp_path: Path, srv: ScriptedServer) -> None:
    responses = write_jsonl(tmp_path / "responses.jsonl", _rows(3, script="echo_auth", tag=" (echo)"))
    store, out = tmp_path / "store.sqlite", tmp_path / "results.jsonl"
    r = jk(*judge_args(responses, srv, store, out, "--api-key-env", "JK_ECHO_KEY"), JK_ECHO_KEY=SECRET)
    assert r.returncode == 0, r.stderr
    assert "your header was Bearer ***" in out.read_text()
    for fmt in ("jsonl", "csv", "parquet"):
        assert jk("export", store, "--out", tmp_path / f"calls.{fmt}").returncode == 0
    leaks = [p.name for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks and SECRET not in r.stdout + r.stderr, leaks


def test_an_empty_api_key_variable_is_an_error(tmp_path: Path, srv: ScriptedServer) -> None:
    responses = write_jsonl(tmp_path / "responses.jsonl", _rows(1))
    r = jk(*judge_args(responses, srv, tmp_path / "s.sqlite", tmp_path / "o.jsonl", "--api-key-env", "JK_EMPTY"),
           JK_EMPTY="")
    assert r.returncode == 2 and "JK_EMPTY is set but empty" in r.stderr
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "o.jsonl").exists()


# ---- 6. setup mistakes fail fast ---------------------------------------------------------------------------

def _setup_case(tmp_path: Path, srv: ScriptedServer, script: str, *extra: str, base: str | None = None,
                judge: str = "openai/scripted") -> tuple[subprocess.CompletedProcess[str], float]:
    responses = write_jsonl(tmp_path / "responses.jsonl", _rows(20, script=script, tag=f" ({script})"))
    args = ["judge", responses, "--rubric", RUBRIC, "--judge", judge, "--store", tmp_path / "s.sqlite",
            "--out", tmp_path / "o.jsonl", "--no-progress", *(["--api-base", base or srv.base_url]
                                                              if base != "" else []), *extra]
    t0 = time.monotonic()
    r = jk(*args)
    return r, time.monotonic() - t0


@pytest.mark.parametrize(("script", "expect"), [("always401", "HTTP 401"), ("always403", "HTTP 403"),
                                                ("always404", "HTTP 404")])
def test_permanent_setup_errors_stop_at_once(tmp_path: Path, srv: ScriptedServer, script: str, expect: str) -> None:
    before = srv.requests
    r, seconds = _setup_case(tmp_path, srv, script)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert expect in flat(r.stderr) and "Traceback" not in r.stderr
    assert not (tmp_path / "o.jsonl").exists()
    assert srv.requests - before <= 16  # the calls already in flight, never 20 x 7 tries
    assert seconds < 20


def test_nothing_answers_stops_early_and_says_where(tmp_path: Path, srv: ScriptedServer) -> None:
    r, seconds = _setup_case(tmp_path, srv, "valid", base="http://127.0.0.1:9/v1")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "nothing answers at http://127.0.0.1:9/v1" in flat(r.stderr) and "refused" in r.stderr
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "s.sqlite").exists()
    assert seconds < 20


def test_unknown_provider_is_refused_before_anything(tmp_path: Path, srv: ScriptedServer) -> None:
    r, _ = _setup_case(tmp_path, srv, "valid", base="", judge="foobar/some-model")
    assert r.returncode == 2 and "foobar/some-model" in r.stderr and "--judge" in r.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_transient_failures_name_the_most_common_reason(tmp_path: Path, srv: ScriptedServer) -> None:
    rows = _rows(3, tag=" (transient)")
    rows[0]["response"] = "Answer 0. [[script:always503]]"
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    r = jk(*judge_args(responses, srv, tmp_path / "s.sqlite", tmp_path / "o.jsonl", "--retries", "1"))
    assert r.returncode == 3, r.stderr
    assert "most common: " in flat(r.stderr) and "HTTP 503" in flat(r.stderr) and "(1)" in flat(r.stderr)


# ---- 11. flags --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value"), [("--samples", "0"), ("--timeout", "-1"), ("--max-tokens", "0"),
                                             ("--temperature", "-1"), ("--temperature", "nan"),
                                             ("--concurrency", "0"), ("--rpm", "0"), ("--tpm", "-5"),
                                             ("--max-cost", "inf"), ("--retries", "-1")])
def test_bad_flag_values_name_the_flag(tmp_path: Path, flag: str, value: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    responses = write_jsonl(tmp_path / "responses.jsonl", _rows(1))
    with pytest.raises(SystemExit) as exc:
        main(["judge", str(responses), "--rubric", str(RUBRIC), "--judge", "openai/x", "--api-base",
              "http://127.0.0.1:9/v1", "--store", str(tmp_path / "s.sqlite"), f"{flag}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "requests-per-minute" not in err
    assert not list(tmp_path.glob("s.sqlite*"))


def test_help_texts_print_single_percent_signs() -> None:
    for cmd in ("report", "agree"):
        r = jk(cmd, "--help")
        assert r.returncode == 0 and "%%" not in r.stdout and "95% CIs" in flat(r.stdout)


# ---- 9. outputs are checked before any call; pipes --------------------------------------------------------

@pytest.mark.parametrize("case", ["folder", "readonly"])
def test_unwritable_out_is_refused_before_the_first_call(tmp_path: Path, srv: ScriptedServer, case: str) -> None:
    responses = write_jsonl(tmp_path / "responses.jsonl", _rows(2, tag=f" (out {case})"))
    out = tmp_path / "o.jsonl"
    if case == "folder":
        out.mkdir()
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], check=False,
                       capture_output=True)
        if not any(line.split()[1] == str(ro) for line in Path("/proc/mounts").read_text().splitlines()):
            pytest.skip("cannot mount a read-only filesystem here")
        out = ro / "o.jsonl"
    before = srv.requests
    try:
        r = jk(*judge_args(responses, srv, tmp_path / "s.sqlite", out))
    finally:
        if case == "readonly":
            subprocess.run(["umount", str(tmp_path / "ro")], check=False)
    assert r.returncode == 2 and "--out" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert srv.requests == before


def test_broken_pipe_is_quiet(results: Path) -> None:
    p = subprocess.run(f"{' '.join(_judgekit_cmd())} report {results} | head -c 10", shell=True,
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


# ---- 7. Ctrl-C ---------------------------------------------------------------------------------------------

def test_ctrl_c_on_an_http_judge_is_honoured_within_2_s(tmp_path: Path, srv: ScriptedServer) -> None:
    rows = _rows(40, script="valid,slow=0.5", tag=" (sigint)")
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    store = tmp_path / "s.sqlite"
    args = judge_args(responses, srv, store, tmp_path / "o.jsonl")
    proc = subprocess.Popen([*_judgekit_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not store.exists():
        time.sleep(0.05)
    time.sleep(1.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 2.5
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "re-run" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_progress_eta_counts_this_runs_own_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 10.12: a local judge that finished 16 of 72 in one batch after 80 s showed "0.2/s 0:00:01"
    from judgekit import cli

    clock = iter([0.0, 80.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    seen: dict[str, Any] = {}

    class FakeProgress:
        def update(self, task: int, **fields: Any) -> None:
            seen.update(fields)

    on_progress = cli._progress_callback(FakeProgress(), 0)
    on_progress(0, 72)
    on_progress(16, 72)
    assert seen["rate"] == "0.2/s" and seen["eta"] == "0:04:40 left"  # 56 left at 0.2/s


def test_generate_stops_early_when_nothing_answers_and_leaves_no_store(tmp_path: Path) -> None:
    # issue 10.6 and 10.12: generate fails fast like judge, and a failed first try leaves no empty store behind
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": f"g{i}", "question": "Q?", "reference": "R."}
                                                   for i in range(20)])
    t0 = time.monotonic()
    r = jk("generate", items, "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1", "--store",
           tmp_path / "s.sqlite", "--out", tmp_path / "responses.jsonl", "--no-progress")
    assert r.returncode == 2, r.stderr
    assert "nothing answers at http://127.0.0.1:9/v1" in flat(r.stderr) and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 20
    assert not list(tmp_path.glob("s.sqlite*")) and not (tmp_path / "responses.jsonl").exists()


def test_generate_refused_key_is_a_setup_error(tmp_path: Path) -> None:
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": f"g{i}", "question": "Q? [[script:always401]]",
                                                    "reference": "R."} for i in range(10)])
    with ScriptedServer() as s:
        r = jk("generate", items, "--model", "openai/x", "--api-base", s.base_url, "--store", tmp_path / "s.sqlite",
               "--out", tmp_path / "responses.jsonl", "--no-progress")
        sent = s.requests
    assert r.returncode == 2 and "HTTP 401" in flat(r.stderr), r.stderr
    assert sent <= 16 and not (tmp_path / "responses.jsonl").exists()


def test_a_hosted_judge_without_any_key_is_refused_before_anything(tmp_path: Path) -> None:
    # issue 10.6: before, 72 calls x 7 tries of "InternalServerError: Missing credentials", exit 3
    responses = write_jsonl(tmp_path / "responses.jsonl", _rows(2))
    env = {k: v for k, v in _env().items() if k != "OPENAI_API_KEY"}
    r = subprocess.run([*_judgekit_cmd(), "judge", str(responses), "--rubric", "robustmad", "--judge",
                        "openai/gpt-4o-mini", "--store", str(tmp_path / "s.sqlite"), "--out",
                        str(tmp_path / "o.jsonl"), "--no-progress"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2 and "OPENAI_API_KEY" in r.stderr and "--api-key-env" in r.stderr, r.stderr
    assert not list(tmp_path.glob("s.sqlite*")) and not (tmp_path / "o.jsonl").exists()
