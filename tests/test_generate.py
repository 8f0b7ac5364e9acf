"""judgekit generate: prompts and presets, answers from a scripted loopback server (images inline, retries,
resume after kill -9 without repaying a call), multiple-choice settings, the embedded local model."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import _env, _judgekit_cmd, flat, jk, read_jsonl, write_jsonl

from judgekit.generation.candidates import PRESETS, ROBUSTMAD_INSTRUCTION, generation_messages, settings_for
from judgekit.io.dataio import read_responses
from judgekit.io.records import Item
from judgekit.judging.backends import JudgeSpec

SAMPLE = Path(__file__).resolve().parents[1] / "judgekit" / "sample_data" / "robustmad_sample"


def _items(tmp: Path, n: int = 4, script: str = "say=a_dent_at_the_top-left") -> Path:
    rows = [{"id": f"i{k}", "question": f"Is there a defect? [[script:{script}]] #{k}", "reference": "A dent.",
             "category": "anomaly", "images": [str(SAMPLE / "images" / "metal_nut_dent.png")],
             "reference_images": [str(SAMPLE / "images" / "metal_nut_good.png")]} for k in range(n)]
    return write_jsonl(tmp / "items.jsonl", rows)


def test_messages_put_reference_images_first_and_letter_the_options() -> None:
    item = Item(id="1", question="Which defect?", reference="B", options=["Scratch", "Dent"],
                images=[str(SAMPLE / "images" / "metal_nut_dent.png")],
                reference_images=[str(SAMPLE / "images" / "metal_nut_good.png")])
    msgs = generation_messages(item, PRESETS["robustmad"])
    parts = msgs[0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    good = (SAMPLE / "images" / "metal_nut_good.png").read_bytes()
    import base64

    assert base64.b64decode(parts[0]["image_url"]["url"].split(",", 1)[1]) == good  # the reference comes first
    assert parts[2]["text"] == "Which defect?\nA. Scratch\nB. Dent\nReply with the letter of the correct option only."
    spec = JudgeSpec(model="openai/x")
    assert settings_for(item, spec, PRESETS["robustmad"], temperature=0.9, max_tokens=300) == (0.0, 10)
    open_item = item.model_copy(update={"options": [], "reference": "A dent."})
    assert settings_for(open_item, spec, PRESETS["robustmad"], temperature=None, max_tokens=None) == (0.2, 100)
    assert settings_for(open_item, spec, PRESETS["plain"], temperature=0.7, max_tokens=None) == (0.7, 512)
    text = generation_messages(open_item, PRESETS["robustmad"], images=False)[0]["content"]
    assert text == f"Which defect?\n{ROBUSTMAD_INSTRUCTION}" and len(ROBUSTMAD_INSTRUCTION.split()) <= 50


def test_generate_robustmad_preset_end_to_end_then_judge(tmp_path: Path) -> None:
    items = _items(tmp_path)
    out, store = tmp_path / "responses.jsonl", tmp_path / "store.sqlite"
    with ScriptedServer() as server:
        r = jk("generate", items, "--model", "openai/cand", "--api-base", server.base_url, "--preset", "robustmad",
               "--out", out, "--store", store, "--no-progress")
        assert r.returncode == 0, r.stderr
        log = server.log
        assert len(log) == 4
        assert all(e["temperature"] == 0.2 and e["max_tokens"] == 100 and e["image_parts"] == 2 and e["seed"] == 0
                   for e in log)
        rows = read_jsonl(out)
        assert [x["response"] for x in rows] == ["a dent at the top-left"] * 4
        assert rows[0]["model"] == "openai/cand" and rows[0]["meta"]["generation"]["temperature"] == 0.2
        responses = read_responses(out)  # readable by judge; image paths resolve from the file's folder
        assert Path(responses[0].images[0]).name == "metal_nut_dent.png"
        again = jk("generate", items, "--model", "openai/cand", "--api-base", server.base_url, "--preset",
                   "robustmad", "--out", out, "--store", store, "--no-progress")
        assert again.returncode == 0 and len(server.log) == 4
        assert "0 calls made, 4 read from the store" in flat(again.stdout)
        judged = jk("judge", out, "--rubric", Path(__file__).resolve().parents[1] / "rubrics" / "robustmad.yaml",
                    "--judge", "openai/judge", "--api-base", server.base_url, "--store", store,
                    "--out", tmp_path / "results.jsonl", "--no-progress")
        assert judged.returncode == 0, judged.stderr
        assert len(read_jsonl(tmp_path / "results.jsonl")) == 4


def test_transient_faults_are_retried_and_lasting_ones_exit_incomplete(tmp_path: Path) -> None:
    rows = [{"id": "ok", "question": "Q [[script:500x2,say=fine]]", "reference": "r"},
            {"id": "dead", "question": "Q [[script:always503]]", "reference": "r"}]
    items = write_jsonl(tmp_path / "items.jsonl", rows)
    out, store = tmp_path / "r.jsonl", tmp_path / "s.sqlite"
    with ScriptedServer() as server:
        r = jk("generate", items, "--model", "openai/m", "--api-base", server.base_url, "--retries", "2",
               "--out", out, "--store", store, "--no-progress")
        assert r.returncode == 3, r.stderr
        assert "incomplete" in r.stderr and "dead" in r.stderr and "Traceback" not in r.stderr
        assert [x["id"] for x in read_jsonl(out)] == ["ok"]
        assert read_jsonl(out)[0]["response"] == "fine"
        with sqlite3.connect(store) as db:
            assert db.execute("SELECT COUNT(*) FROM failures WHERE response_id='dead'").fetchone()[0] == 1


def test_kill_mid_run_then_resume_repays_nothing(tmp_path: Path) -> None:
    n = 12
    items = _items(tmp_path, n, script="slow=0.3,say=ok")
    out, store = tmp_path / "r.jsonl", tmp_path / "s.sqlite"
    with ScriptedServer() as server:
        args = ["generate", items, "--model", "openai/m", "--api-base", server.base_url, "--concurrency", "2",
                "--out", out, "--store", store, "--no-progress"]
        proc = subprocess.Popen([*_judgekit_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_env())
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline:
            if store.exists():
                with sqlite3.connect(store) as db:
                    try:
                        stored = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
                    except sqlite3.OperationalError:
                        stored = 0
                if stored >= 3:
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()
        with sqlite3.connect(store) as db:
            kept = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        assert 3 <= kept < n
        before = len(server.log)
        r = jk(*args)
        assert r.returncode == 0, r.stderr
        assert len(server.log) - before == n - kept  # only the missing answers are asked for
        assert len(read_jsonl(out)) == n


def test_multiple_choice_is_greedy_with_ten_tokens_and_scores(tmp_path: Path) -> None:
    rows = [{"id": f"m{k}", "question": f"Is there a defect? [[script:say={ans}]] #{k}", "reference": ref,
             "options": ["Yes", "No"], "category": "Anomaly Discrimination", "dataset": "toy"}
            for k, (ans, ref) in enumerate([("A", "A"), ("B", "A"), ("b", "B"), ("maybe", "B")])]
    items = write_jsonl(tmp_path / "items.jsonl", rows)
    out = tmp_path / "r.jsonl"
    with ScriptedServer() as server:
        r = jk("generate", items, "--model", "openai/m", "--api-base", server.base_url, "--preset", "robustmad",
               "--temperature", "0.7", "--out", out, "--store", tmp_path / "s.sqlite", "--no-progress")
        assert r.returncode == 0, r.stderr
        assert all(e["temperature"] == 0 and e["max_tokens"] == 10 for e in server.log)
    report = tmp_path / "mcq.json"
    m = jk("mcq", out, "--json", report)
    assert m.returncode == 0, m.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    group = data["groups"][0]
    assert group["correct"] == 2 and group["unparsable"] == 1 and group["n"] == 4


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    items = _items(tmp_path, 1)
    out = tmp_path / "r.jsonl"
    for args, msg in ((["--model", "local/default"], "text-only"),
                      (["--model", "openai/a", "--model", "openai/b", "--name", "x"], "one --name per --model"),
                      (["--model", "openai/a", "--backend", "lean"], "--api-base"),
                      (["--model", "openai/a", "--api-key-env", "JK_UNSET_VARIABLE"], "JK_UNSET_VARIABLE")):
        r = jk("generate", items, *args, "--out", out, "--store", tmp_path / "s.sqlite")
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert not out.exists()
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "question": "q"}])
    r = jk("generate", bad, "--model", "openai/a", "--out", out)
    assert r.returncode == 2 and "bad.jsonl:1" in r.stderr and "reference" in r.stderr


@pytest.mark.slow
def test_embedded_local_model_answers_text_only(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from judgekit.local.models import default_gguf

    try:
        default_gguf()
    except Exception as exc:  # pragma: no cover - the model package is part of the test install
        pytest.skip(f"embedded model not installed: {exc}")
    rows = [{"id": "t1", "question": "What colour is a ripe banana?", "reference": "Yellow."},
            {"id": "t2", "question": "Is there a defect?", "reference": "A", "options": ["Yes", "No"]}]
    items = write_jsonl(tmp_path / "items.jsonl", rows)
    out = tmp_path / "r.jsonl"
    r = jk("generate", items, "--model", "local/default", "--max-tokens", "12", "--out", out,
           "--store", tmp_path / "s.sqlite", "--no-progress", timeout=600)
    assert r.returncode == 0, r.stderr
    got = read_jsonl(out)
    assert len(got) == 2 and all(isinstance(x["response"], str) for x in got)
    assert got[0]["meta"]["generation"]["max_tokens"] == 12 and got[1]["meta"]["generation"]["max_tokens"] == 10
    assert any(x["response"] for x in got)
    again = jk("generate", items, "--model", "local/default", "--max-tokens", "12", "--out", out,
               "--store", tmp_path / "s.sqlite", "--no-progress", timeout=600)
    assert again.returncode == 0 and read_jsonl(out) == got and "0 calls made" in flat(again.stdout)
