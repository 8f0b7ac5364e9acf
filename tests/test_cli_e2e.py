"""The ``judgekit`` command as a user runs it: subprocesses of the console script against an in-process
scripted OpenAI-compatible server (tests/scripted_server.py)."""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "rubrics" / "robustmad.yaml"
SECRET = "sk-JKSECRET-7f3a9c2e-do-not-store"
PRICE_IN, PRICE_OUT = 0.5, 1.5  # USD per million tokens
CRITERIA = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity"]
RESULT_FIELDS = ["id", "model", "judge", "status", "reason", "scores", "overall", "passed", "tokens_in",
                 "tokens_out", "cost"]


def _judgekit_cmd() -> list[str]:
    script = Path(sys.executable).with_name("judgekit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "judgekit.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("FORCE_COLOR", "COLUMNS", "JK_SECRET", "JK_UNSET_VARIABLE"):
        env.pop(name, None)
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", NO_COLOR="1", **extra)
    return env


def jk(*args: str | Path, cwd: Path | None = None, timeout: float = 120,
       **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_judgekit_cmd(), *map(str, args)], capture_output=True, text=True, env=_env(**env),
                          cwd=cwd, timeout=timeout)


def flat(text: str) -> str:
    """Text with runs of whitespace collapsed (rich wraps long lines)."""
    return " ".join(text.split())


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judge_args(responses: Path, server: ScriptedServer, store: Path, out: Path, *extra: str | Path) -> list[str | Path]:
    return ["judge", responses, "--rubric", RUBRIC, "--judge", "openai/scripted", "--api-base", server.base_url,
            "--store", store, "--out", out, "--no-progress", "--concurrency", "4", *extra]


def calls_made(stdout: str) -> tuple[int, int]:
    m = re.search(r"(\d+) calls made, (\d+) read from the store", flat(stdout))
    assert m is not None, stdout
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


# ---- the main run: 8 responses, 2 models, 2 categories, 2 conditions -------------------------------------
# (id, model, category, condition, score the scripted judge gives to every criterion and overall)
CASES = [
    ("q1", "m1", "catA", "clean", 4), ("q2", "m1", "catA", "clean", 2), ("q3", "m1", "catB", "clean", 5),
    ("q1", "m1", "catA", "blur", 2), ("q1", "m2", "catA", "clean", 4), ("q2", "m2", "catA", "clean", 4),
    ("q3", "m2", "catB", "clean", 3), ("q3", "m2", "catB", "blur", 1),
]
SLOW_INDEX = 6  # answered after 2 s, so the store (and its -wal) can be looked at mid-run


@dataclass
class MainRun:
    server: ScriptedServer  # accepts only requests that carry the API key
    dir: Path
    responses: Path
    store: Path
    out: Path
    proc: subprocess.CompletedProcess[str]
    requests: int
    midrun: dict[str, bytes]  # every file of the run folder, read while the judge was running


def _main_rows() -> list[dict[str, Any]]:
    rows = []
    for i, (qid, model, cat, cond, score) in enumerate(CASES):
        script = f"valid={score}" + (",slow=2" if i == SLOW_INDEX else "")
        rows.append({"id": qid, "model": model, "category": cat, "condition": cond,
                     "question": f"Main run question {qid}: is there a defect?", "reference": "A dent on the top.",
                     "response": f"Answer {i} of {model}. [[script:{script}]]"})
    return rows


def _store_rows(store: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def main_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainRun]:
    with ScriptedServer(api_key=SECRET) as server:
        yield _main_run(server, tmp_path_factory.mktemp("main"))


def _main_run(server: ScriptedServer, d: Path) -> MainRun:
    responses = write_jsonl(d / "responses.jsonl", _main_rows())
    store, out = d / "store.sqlite", d / "results.jsonl"
    before = server.requests
    args = judge_args(responses, server, store, out, "--api-key-env", "JK_SECRET", "--price-in", str(PRICE_IN),
                      "--price-out", str(PRICE_OUT))
    proc = subprocess.Popen([*_judgekit_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(JK_SECRET=SECRET))
    midrun: dict[str, bytes] = {}
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            wal = store.with_name(store.name + "-wal")
            if wal.exists() and _store_rows(store) >= len(CASES) - 1:
                midrun = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
                break
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"rc {proc.returncode}\n{stdout}\n{stderr}"
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return MainRun(server, d, responses, store, out, done, server.requests - before, midrun)


def test_help_works_without_heavy_imports() -> None:
    r = jk("--help")
    assert r.returncode == 0, r.stderr
    for word in ("judge", "rubric", "export"):
        assert word in r.stdout
    r = jk("judge", "--help")
    assert r.returncode == 0 and "--max-cost" in r.stdout and "--api-key-env" in r.stdout
    # --help must stay fast: litellm, scipy and pyarrow are imported by the commands, not at --help time
    probe = ("import sys\nfrom judgekit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted(m for m in ('litellm', 'scipy', 'pyarrow', 'openai') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout


def test_rubric_check_ok() -> None:
    r = jk("rubric", "check", "rubrics/robustmad.yaml", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "robustmad" in r.stdout


BAD_RUBRICS = {
    "bad_criterion": ('name: broken\nversion: "1"\nscale: [1, 5]\ncriteria:\n  - name: accuracy\n'
                      '    description: Is it right?\n    levels: {1: wrong, 2: poor, 3: ok, 4: good, 5: right}\n'
                      '  - name: Bad Name\n    description: x\n'
                      '    levels: {1: a, 2: b, 3: c, 4: d, 5: e}\noverall:\n  method: weighted_mean\n'
                      'pass: overall >= 3\n', 8),
    "yaml_syntax": ('name: broken\nversion: "1"\ncriteria: [\n  {name: a, description: b\n', 5),
}


@pytest.mark.parametrize("case", sorted(BAD_RUBRICS))
def test_rubric_check_broken(tmp_path: Path, case: str) -> None:
    text, line = BAD_RUBRICS[case]
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    r = jk("rubric", "check", path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert f"{path}:{line}" in r.stderr, r.stderr


def test_judge_results_jsonl(main_run: MainRun) -> None:
    assert "Traceback" not in main_run.proc.stderr
    results = read_jsonl(main_run.out)
    assert len(results) == len(CASES)
    assert main_run.requests == len(CASES)
    assert all(e["auth_ok"] for e in main_run.server.log), "the API key was not sent"
    assert calls_made(main_run.proc.stdout) == (len(CASES), 0)
    for res, (qid, model, cat, cond, score) in zip(results, CASES, strict=True):
        missing = [f for f in RESULT_FIELDS if f not in res]
        assert not missing, missing
        assert (res["id"], res["model"], res["category"], res["condition"]) == (qid, model, cat, cond)
        assert res["judge"] == "openai/scripted"
        assert res["status"] == "scored" and res["reason"] is None
        assert res["scores"] == {c: score for c in CRITERIA}
        assert res["overall"] == score
        assert res["passed"] is (score >= 3)
        assert res["tokens_in"] > 0 and res["tokens_out"] > 0
        expected_cost = (res["tokens_in"] * PRICE_IN + res["tokens_out"] * PRICE_OUT) / 1e6
        assert res["cost"] == pytest.approx(expected_cost, rel=1e-9)


def _expected_rate(scores: list[int]) -> str:
    from judgekit.stats.aggregate import wilson_interval

    passed = sum(s >= 3 for s in scores)
    lo, hi = wilson_interval(passed, len(scores))
    return f"{100 * passed / len(scores):.1f}% [{100 * lo:.1f}-{100 * hi:.1f}]"


def test_judge_summary_tables(main_run: MainRun) -> None:
    out = main_run.proc.stdout
    rows: dict[str, list[list[str]]] = {}
    current = None
    for line in out.splitlines():
        if line.strip().startswith("by "):
            current = rows.setdefault(line.strip(), [])
        elif line.strip().startswith("Robustness"):  # the clean-vs-degraded table follows the summaries
            current = None
        elif current is not None and line.startswith("│"):
            current.append([c.strip() for c in line.strip().strip("│").split("│")])
    assert set(rows) == {"by model", "by model x category", "by model x condition"}, list(rows)
    assert "pass rate [95% CI]" in out
    groupings = {"by model": (1,), "by model x category": (1, 2), "by model x condition": (1, 3)}
    for title, fields in groupings.items():
        expected: dict[tuple[str, ...], list[int]] = {}
        for case in CASES:
            expected.setdefault(tuple(case[f] for f in fields), []).append(case[4])
        got = {tuple(r[: len(fields)]): r for r in rows[title]}
        assert set(got) == set(expected), (title, list(got))
        for key, scores in expected.items():
            row = got[key]
            assert row[len(fields)] == str(len(scores)), (title, row)  # n
            assert row[len(fields) + 1] == "0", (title, row)  # unscored
            assert row[-1] == _expected_rate(scores), (title, row)
            assert row[-2] == f"{sum(scores) / len(scores):.2f}", (title, row)  # mean overall


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_judge_csv_and_parquet_output(main_run: MainRun, suffix: str) -> None:
    server = main_run.server
    out = main_run.dir / f"results{suffix}"
    before = server.requests
    r = jk(*judge_args(main_run.responses, server, main_run.store, out), JK_SECRET=SECRET)
    assert r.returncode == 0, r.stderr
    assert server.requests == before, "a re-run on the same store made calls"
    assert calls_made(r.stdout) == (0, len(CASES))
    if suffix == ".csv":
        with out.open(encoding="utf-8", newline="") as fh:
            records = list(csv.DictReader(fh))
    else:
        import pyarrow.parquet as pq

        records = pq.read_table(out).to_pylist()
    assert len(records) == len(CASES)
    original = read_jsonl(main_run.out)  # the results of the run that made the calls
    for field in ("id", "model", "judge", "status", "overall", "passed", "tokens_in", "tokens_out", "cost",
                  *(f"scores.{c}" for c in CRITERIA)):
        assert field in records[0], (field, list(records[0]))
    for rec, case, orig in zip(records, CASES, original, strict=True):
        assert (rec["id"], rec["model"], rec["status"]) == (case[0], case[1], "scored")
        # read back from the store: the same tokens and cost as when the calls were made
        assert int(rec["tokens_in"]) == orig["tokens_in"] and int(rec["tokens_out"]) == orig["tokens_out"]
        assert float(rec["cost"]) == pytest.approx(orig["cost"], rel=1e-9)
        assert float(rec["overall"]) == case[4]
        assert float(rec["scores.technical_accuracy"]) == case[4]
        assert str(rec["passed"]).lower() == str(case[4] >= 3).lower()


def test_export_parquet_without_api_key(main_run: MainRun) -> None:
    import pyarrow.parquet as pq

    exported = main_run.dir / "calls.parquet"
    r = jk("export", main_run.store, "--out", exported)
    assert r.returncode == 0, r.stderr
    table = pq.read_table(exported)
    assert table.num_rows == len(CASES)
    for col in ("key", "attempt", "status", "response_id", "model", "judge", "reply", "tokens_in", "cost",
                "settings", "rubric", "rubric_version"):
        assert col in table.column_names, (col, table.column_names)
    assert not [c for c in table.column_names if "key" in c.lower() and c != "key"]
    assert SECRET not in json.dumps(table.to_pylist(), default=str)
    assert sorted(table.column("response_id").to_pylist()) == sorted(c[0] for c in CASES)
    r = jk("export", main_run.store, "--out", main_run.dir / "calls.jsonl")
    assert r.returncode == 0, r.stderr
    assert len(read_jsonl(main_run.dir / "calls.jsonl")) == len(CASES)


def test_api_key_is_never_written(main_run: MainRun) -> None:
    # make sure every kind of output exists before grepping
    for name in ("calls.jsonl", "calls.csv"):
        if not (main_run.dir / name).exists():
            assert jk("export", main_run.store, "--out", main_run.dir / name).returncode == 0
    assert any(name.endswith("-wal") for name in main_run.midrun), (
        f"the store's -wal was not seen mid-run: {sorted(main_run.midrun)}")
    leaks = [f"mid-run {name}" for name, data in main_run.midrun.items() if SECRET.encode() in data]
    written = [p for p in main_run.dir.rglob("*") if p.is_file()]
    assert {"store.sqlite", "results.jsonl", "calls.jsonl", "calls.csv"} <= {p.name for p in written}
    leaks += [str(p) for p in written if SECRET.encode() in p.read_bytes()]
    assert not leaks, f"the API key was written to {leaks}"


def _bad_input(tmp: Path, case: str) -> tuple[list[str | Path], list[str]]:
    """(extra judge arguments, texts the error message must contain) for one kind of bad input."""
    good = {"id": "q1", "model": "m1", "question": "What is it?", "reference": "A nut.", "response": "A nut."}
    responses = tmp / "responses.jsonl"
    write_jsonl(responses, [good, {**good, "id": "q2"}, {**good, "id": "q3"}])
    lines = responses.read_text(encoding="utf-8").splitlines()
    if case == "malformed_line":
        lines[1] = '{"id": "q2", "model": "m1", "question": '
        responses.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [], [f"{responses}:2", "malformed JSON"]
    if case == "missing_field":
        write_jsonl(responses, [good, {k: v for k, v in good.items() if k != "reference"} | {"id": "q2"}])
        return [], [f"{responses}:2", "reference"]
    if case == "missing_image":
        write_jsonl(responses, [good, {**good, "id": "q2", "images": ["img/missing.png"]}])
        return [], [f"{responses}:2", "images", "img/missing.png"]
    if case == "duplicate_response":
        write_jsonl(responses, [good, {**good, "id": "q2"}, {**good, "response": "Another answer."}])
        return [], [f"{responses}:3", "duplicate"]
    if case == "unknown_out_extension":
        return ["--out", tmp / "out" / "results.txt"], ["--out", ".txt"]
    if case == "unset_api_key_env":
        return ["--api-key-env", "JK_UNSET_VARIABLE"], ["--api-key-env", "JK_UNSET_VARIABLE"]
    raise AssertionError(case)


BAD_INPUTS = ["malformed_line", "missing_field", "missing_image", "duplicate_response", "unknown_out_extension",
              "unset_api_key_env"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_judge_bad_input_writes_nothing(tmp_path: Path, case: str) -> None:
    extra, expect = _bad_input(tmp_path, case)
    store, out = tmp_path / "st" / "store.sqlite", tmp_path / "out" / "results.jsonl"
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    args = ["judge", tmp_path / "responses.jsonl", "--rubric", RUBRIC, "--judge", "openai/scripted",
            "--api-base", "http://127.0.0.1:9/v1", "--store", store, "--out", out, "--no-progress", *extra]
    r = jk(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    for text in expect:
        assert text in r.stderr, (text, r.stderr)
    after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert after == before, f"files written on bad input: {sorted(map(str, after - before))}"


def test_export_missing_store(tmp_path: Path) -> None:
    r = jk("export", tmp_path / "nope.sqlite", "--out", tmp_path / "calls.parquet")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nope.sqlite" in r.stderr
    assert not (tmp_path / "calls.parquet").exists() and not (tmp_path / "nope.sqlite").exists()


def test_max_cost_then_resume(tmp_path: Path, server: ScriptedServer) -> None:
    n = 8
    rows = [{"id": f"b{i}", "model": "m1", "question": f"Budget question {i}?", "reference": "Yes.",
             "response": f"Budget answer {i}."} for i in range(n)]
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    store, out = tmp_path / "store.sqlite", tmp_path / "results.jsonl"
    # ~700 tokens in per call at $1/M: about $0.0007 a call, so a $0.002 budget stops after about 3 calls
    prices = ["--price-in", "1", "--price-out", "1", "--concurrency", "1"]
    before = server.requests
    r = jk(*judge_args(responses, server, store, out, *prices, "--max-cost", "0.002"))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "budget" in flat(r.stderr)
    first = server.requests - before
    assert 0 < first < n
    assert calls_made(r.stdout) == (first, 0)
    results = read_jsonl(out)
    assert len(results) == n
    assert sum(x["status"] == "scored" for x in results) == first
    assert all("budget" in (x["reason"] or "") for x in results if x["status"] != "scored")
    # one model, no category, one condition: only the per-model table
    assert "by model" in r.stdout and "by model x category" not in r.stdout
    assert "by model x condition" not in r.stdout
    mid = server.requests
    r = jk(*judge_args(responses, server, store, out, *prices, "--max-cost", "1"))
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    second = server.requests - mid
    assert second == n - first, "the re-run repaid calls stored by the budget-stopped run"
    assert calls_made(r.stdout) == (n - first, first)
    results = read_jsonl(out)
    assert len(results) == n and all(x["status"] == "scored" for x in results)


def read_records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return read_jsonl(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_transport_failure_exit_3(tmp_path: Path, server: ScriptedServer, suffix: str) -> None:
    base = {"model": "m1", "question": f"Transport question ({suffix})?", "reference": "Yes."}
    # the failing response comes first: its empty scores must not decide the columns of a Parquet file
    rows = [{**base, "id": "t-fail", "response": "Broken server. [[script:always500]]"},
            {**base, "id": "t-ok", "response": "Working server."}]
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    store, out = tmp_path / "store.sqlite", tmp_path / f"results{suffix}"
    before = server.requests
    r = jk(*judge_args(responses, server, store, out, "--retries", "1"))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "incomplete" in flat(r.stderr)
    assert server.requests - before == 3  # two tries of the failing one, one of the other
    by_id = {x["id"]: x for x in read_records(out)}
    ok = by_id["t-ok"]
    assert ok["status"] == "scored" and ok["passed"] is True
    if suffix == ".parquet":
        assert ok["scores.technical_accuracy"] == 4, sorted(ok)
    else:
        assert ok["scores"]["technical_accuracy"] == 4
    failed = by_id["t-fail"]
    assert failed["status"] == "unscored" and failed["passed"] is None and failed["overall"] is None
    assert "500" in failed["reason"] and "2 tries" in failed["reason"], failed["reason"]
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1  # a failure is not a stored call
    finally:
        db.close()


def test_export_parquet_keeps_every_column(tmp_path: Path, server: ScriptedServer) -> None:
    """The first stored call is an invalid reply (no scores): later calls' scores must still be exported."""
    base = {"model": "m1", "question": "Export question?", "reference": "Yes."}
    rows = [{**base, "id": "e1", "response": "First. [[script:malformed_then_valid,valid=5]]"},
            {**base, "id": "e2", "response": "Second. [[script:valid=2]]"}]
    responses = write_jsonl(tmp_path / "responses.jsonl", rows)
    store, out = tmp_path / "store.sqlite", tmp_path / "results.jsonl"
    r = jk(*judge_args(responses, server, store, out, "--concurrency", "1"))
    assert r.returncode == 0, r.stderr
    r = jk("export", store, "--out", tmp_path / "calls.parquet")
    assert r.returncode == 0, r.stderr
    calls = read_records(tmp_path / "calls.parquet")
    assert [(c["response_id"], c["attempt"], c["status"]) for c in calls] == [
        ("e1", 0, "invalid"), ("e1", 1, "ok"), ("e2", 0, "ok")]
    assert calls[0]["reason"]
    assert [c.get("scores.technical_accuracy") for c in calls[1:]] == [5, 2], sorted(calls[1])
