"""``judgekit report --probes PROBES.json``: the bias probes of ``judgekit probe`` in the judge card, the JSON and
the Markdown, checked against the probes file, on the command line and in headless Chromium.

The probes are measured on the scripted server (tests/scripted_server.py) with answers whose scores follow their
length (``bylength``) or are fixed (``valid=4``), so the page has shifts that are not all zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from scripted_server import ScriptedServer
from test_report_html import _chromium
from test_report_html_extra import _at, _Cells

import judgekit
from judgekit.io.records import Response

MARKUP = "<script>alert(1)</script>"


def _responses(d: Path) -> list[Response]:
    """Three models x four items, on a clean and a motion-blurred image; one model's name holds markup."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(4):
        clean, blur = d / f"item{k}.png", d / f"item{k}_blur.png"
        img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        cv2.imwrite(str(clean), img)
        cv2.imwrite(str(blur), cv2.GaussianBlur(img, (7, 7), 3))
        for m, model in enumerate(("alpha", "beta", f"gamma {MARKUP}")):
            script = "[[script:bylength=40]]" if m < 2 else "[[script:valid=4]]"
            answer = f"{script} The part shows a scratch near the edge." + " More detail." * k * m
            for cond, img_path in (("clean", clean), ("motion_blur", blur)):
                out.append(Response(id=f"q{k}", model=model, question="Is there a defect?", reference="A scratch.",
                                    response=answer, condition=cond, category="anomaly_detection",
                                    images=[str(img_path)]))
    return out


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("probes_page")
    responses = _responses(d)
    store = d / "store.sqlite"
    with ScriptedServer() as server:
        results = judgekit.judge(responses, "robustmad", "openai/scripted", api_base=server.base_url, store=store,
                                 out=d / "results.jsonl")
        rep = judgekit.probe(responses, "robustmad", "openai/scripted", api_base=server.base_url, store=store,
                             out=d / "probes.json", n=12, consistency_samples=3, temperature=0.5, boot=200)
    page = judgekit.report(d / "results.jsonl", boot=200, seed=1, html=d / "r.html", json=d / "r.json",
                           markdown=d / "r.md", probes=d / "probes.json")
    return {"d": d, "results": results, "probe": rep, "report": page, "html": d / "r.html",
            "text": (d / "r.html").read_text(encoding="utf-8"), "json": json.loads((d / "r.json").read_text()),
            "probes": json.loads((d / "probes.json").read_text()), "md": (d / "r.md").read_text(encoding="utf-8")}


def _check_cells(cells: list[tuple[str, Any, Any]], doc: dict[str, Any]) -> int:
    """Every probe cell's value equals the probes document at its path; the number of cells checked."""
    n = 0
    for _field, path, value in cells:
        if not path:
            continue
        paths = path if isinstance(path[0], list) else [path]
        if paths[0][0] != "probes":
            continue
        values = value if isinstance(path[0], list) else [value]
        assert [_at(doc, p) for p in paths] == values, (paths, values)
        n += 1
    return n


def test_the_probes_measured_something_and_the_baseline_came_from_the_store(probed: dict[str, Any]) -> None:
    doc = probed["probes"]
    names = [p["probe"] for p in doc["probes"]]
    assert names[:2] == ["verbosity+50%", "verbosity+100%"] and "injection (any)" in names
    assert "image:motion_blur" in names
    assert doc["sample"]["answers"] == 12 and doc["sample"]["per_model"] == {"alpha": 4, "beta": 4,
                                                                               f"gamma {MARKUP}": 4}
    verbosity = doc["probes"][0]["shifts"]["overall"]
    assert verbosity["shift"] > 0  # bylength scores grow with the padding
    assert probed["probe"].accounting["calls_cached"] >= 12  # the unchanged answers judged by judgekit.judge


def test_json_and_markdown_carry_the_probes(probed: dict[str, Any]) -> None:
    assert probed["json"]["probes"] == probed["probes"]
    assert "## Bias probes: openai/scripted" in probed["md"]
    assert "verbosity+50%" in probed["md"] and "Shift per criterion" in probed["md"]


def test_page_cells_equal_the_probes_file(probed: dict[str, Any]) -> None:
    p = _Cells()
    p.feed(probed["text"])
    n = _check_cells(p.cells, probed["probes"])
    assert n >= 12 * len(probed["probes"]["probes"])  # the summary row's cells and every criterion's shift
    assert 'id="probes"' in probed["text"] and 'href="#probes"' in probed["text"]
    assert MARKUP not in probed["text"] and "gamma &lt;script&gt;" in probed["text"]


def test_probes_of_another_judge_are_flagged(probed: dict[str, Any], tmp_path: Path) -> None:
    other = dict(probed["probes"], judge="openai/someone-else")
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other), encoding="utf-8")
    judgekit.report(probed["d"] / "results.jsonl", boot=50, html=tmp_path / "r.html", probes=path)
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Caution: these probes were measured on the judge openai/someone-else" in text
    judgekit.report(probed["d"] / "results.jsonl", boot=50, html=tmp_path / "plain.html")
    assert "Bias probes: not measured" in (tmp_path / "plain.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", ["not json", "not probes", "missing key", "missing file"])
def test_cli_bad_probes_file_exit_2_and_nothing_written(probed: dict[str, Any], tmp_path: Path, case: str) -> None:
    bad = tmp_path / "bad.json"
    if case == "not json":
        bad.write_text('{"kind": "judgekit-probes",\n  oops}', encoding="utf-8")
    elif case == "not probes":
        bad.write_text(json.dumps({"kind": "something"}), encoding="utf-8")
    elif case == "missing key":
        doc = json.loads(json.dumps(probed["probes"]))
        del doc["probes"][1]["pass"]
        bad.write_text(json.dumps(doc), encoding="utf-8")
    outs = [tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.md"]
    cmd = [str(Path(sys.executable).with_name("judgekit")), "report", str(probed["d"] / "results.jsonl"),
           "--probes", str(bad), "--html", str(outs[0]), "--json", str(outs[1]), "--markdown", str(outs[2])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 2, proc.stderr
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    if case == "not json":
        assert f"{bad}:2" in proc.stderr
    if case == "missing key":
        assert "probes[1]" in proc.stderr and "'pass'" in proc.stderr
    assert not any(p.exists() for p in outs)
    assert list(tmp_path.glob("*.tmp")) == []


def test_browser_probes_page(probed: dict[str, Any]) -> None:
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"console": [], "errors": [], "requests": [], "dialogs": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("dialog", lambda dlg: (seen["dialogs"].append(dlg.message), dlg.dismiss()))
            page.goto(probed["html"].as_uri(), wait_until="load")
            cells = page.evaluate("Array.from(document.querySelectorAll('#judge td[data-path]'))"
                                  ".map(td => [td.dataset.field, JSON.parse(td.dataset.path), "
                                  "JSON.parse(td.dataset.value)])")
            forest = page.evaluate("(() => { const f = document.querySelector('#judge figure svg'); "
                                   "if (!f) return null; const r = f.getBoundingClientRect(); "
                                   "return [r.width, r.height, f.querySelectorAll('text').length]; })()")
            shown = page.inner_text("#judge")
            shot = probed["d"] / "probes.png"
            page.locator("#judge").screenshot(path=str(shot))
        finally:
            browser.close()
    assert [c for c in seen["console"] if c[0] in ("error", "warning")] == []
    assert seen["errors"] == [] and seen["dialogs"] == []
    page_url = probed["html"].as_uri()
    assert all(u == page_url or u.startswith("data:") for u in seen["requests"]), seen["requests"]
    assert _check_cells([tuple(c) for c in cells], probed["probes"]) >= 12 * len(probed["probes"]["probes"])
    assert forest is not None and forest[0] > 200 and forest[1] > 100 and forest[2] >= len(probed["probes"]["probes"])
    assert "Bias probes" in shown and f"gamma {MARKUP}" in shown  # the markup shows as text
    assert shot.stat().st_size > 10_000
