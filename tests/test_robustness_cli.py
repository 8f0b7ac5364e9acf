"""Robustness output as a user sees it: `judgekit judge` on clean + degraded answers prints and writes the
paired comparison; `judgekit report` reproduces it from the results file."""

from __future__ import annotations

import json
from pathlib import Path

from scripted_server import ScriptedServer
from test_cli_e2e import RUBRIC, flat, jk, read_jsonl, write_jsonl


def _responses(tmp: Path, n: int = 12) -> Path:
    rows = []
    for k in range(n):
        for cond, score in (("clean", 4), ("low_light", 2), ("motion_blur", 4)):
            rows.append({"id": f"q{k}", "model": "vlm", "question": "Is there a defect?", "reference": "A dent.",
                         "category": "anomaly" if k % 2 else "objects", "condition": cond,
                         "response": f"A dent. [[script:valid={score}]] #{k}-{cond}"})
    return write_jsonl(tmp / "responses.jsonl", rows)


def test_judge_prints_and_writes_the_robustness_comparison(tmp_path: Path) -> None:
    responses = _responses(tmp_path)
    out, rob = tmp_path / "results.jsonl", tmp_path / "robustness.json"
    with ScriptedServer() as server:
        r = jk("judge", responses, "--rubric", RUBRIC, "--judge", "openai/j", "--api-base", server.base_url,
               "--store", tmp_path / "s.sqlite", "--out", out, "--robustness", rob, "--no-progress")
    assert r.returncode == 0, r.stderr
    text = flat(r.stdout)
    assert "Robustness: degraded vs clean" in text and "low_light" in text
    rows = json.loads(rob.read_text())
    def row(cond: str, crit: str, cat: str = "all") -> dict:  # type: ignore[type-arg]
        return next(x for x in rows if x["condition"] == cond and x["criterion"] == crit and x["category"] == cat)
    dark = row("low_light", "overall")
    assert dark["n"] == 12 and dark["clean"] == 4 and dark["degraded"] == 2 and dark["diff"] == -2
    assert dark["ci_low"] == -2 and dark["ci_high"] == -2 and dark["p_value"] < 0.001 and dark["significant"]
    passed = row("low_light", "pass")
    assert passed["diff"] == -1 and passed["test"] == "mcnemar-exact" and passed["p_value"] < 0.001
    blur = row("motion_blur", "overall")
    assert blur["diff"] == 0 and blur["p_value"] == 1.0 and not blur["significant"]
    assert row("low_light", "overall", "anomaly")["n"] == 6
    pooled = row("degraded (all)", "overall")
    assert pooled["degraded"] == 3 and pooled["diff"] == -1

    md, js = tmp_path / "report.md", tmp_path / "again.json"
    rep = jk("report", out, "--markdown", md, "--json", js)
    assert rep.returncode == 0, rep.stderr
    assert json.loads(js.read_text())["robustness"] == rows  # same figures from the results file
    assert "Pass rates: Wilson and bootstrap 95% intervals (by model x condition)" in flat(rep.stdout)
    body = md.read_text()
    assert "## Robustness: degraded vs clean" in body and "## Per model and condition" in body
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x"}])
    r = jk("report", bad)
    assert r.returncode == 2 and "bad.jsonl:1" in r.stderr and "Traceback" not in r.stderr
    assert len(read_jsonl(out)) == 36


def test_pipeline_perturb_generate_judge(tmp_path: Path) -> None:
    """The robustness loop one command at a time: degrade the sample's images with the robustmad preset, ask a
    model under test the clean and degraded items, judge the answers, compare the conditions."""
    items = Path(__file__).resolve().parents[1] / "judgekit" / "sample_data" / "robustmad_sample" / "items.jsonl"
    deg = tmp_path / "degraded"
    r = jk("perturb", items, "--preset", "robustmad", "--out", deg)
    assert r.returncode == 0, r.stderr
    n_items = len(items.read_text().splitlines())
    responses, results, rob = tmp_path / "responses.jsonl", tmp_path / "results.jsonl", tmp_path / "rob.md"
    with ScriptedServer() as server:
        g = jk("generate", deg / "items.jsonl", "--model", "openai/vlm", "--api-base", server.base_url,
               "--preset", "robustmad", "--out", responses, "--store", tmp_path / "s.sqlite", "--no-progress")
        assert g.returncode == 0, g.stderr
        assert sum(e["image_parts"] for e in server.log) > 0
        j = jk("judge", responses, "--rubric", RUBRIC, "--judge", "openai/j", "--api-base", server.base_url,
               "--store", tmp_path / "s.sqlite", "--out", results, "--robustness", rob, "--no-progress")
    assert j.returncode == 0, j.stderr
    got = read_jsonl(results)
    assert len(got) == 2 * n_items
    conds = {x["condition"] for x in got}
    assert conds == {"clean", "low_light", "motion_blur"}
    md = rob.read_text()
    assert "low_light" in md and "motion_blur" in md
    # one degradation per item: the pooled row pairs every clean answer with its one degraded answer
    pooled = [line for line in md.splitlines() if "| all | degraded (all) | overall |" in line]
    assert len(pooled) == 1 and f"| {n_items} |" in pooled[0]
