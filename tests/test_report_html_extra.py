"""The optional parts of ``judgekit report``: ``--human RATINGS`` (agreement with people, inter-human ceiling, PPI
pass rates, a judge-vs-human heatmap), ``--compare OTHER_RESULTS`` (the comparison of two runs) and the reduce /
panel settings the runner now records, checked against the JSON, on the command line and in headless
Chromium."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_report_html import _chromium, files  # noqa: F401  (files: the shared module fixture)

import judgekit
from judgekit.cli import main
from judgekit.io.dataio import read_judgments, write_records
from judgekit.io.records import Judgment
from judgekit.reporting.html import judge_card

RATERS = ["ann", "bob", "cyd"]


def _ratings(results: Path, out: Path, seed: int = 3) -> Path:
    """A wide ratings table (id, model, condition, one column per rater) of the clean answers q0-q6 of every
    model: each rater's rating is the judge's overall rounded, plus noise, clipped to 1-5; cyd skips some. The
    answers q7-q9 stay unrated, so the PPI pass rates are computed."""
    rng = random.Random(seed)
    rows = []
    for j in read_judgments(results):
        if j.condition != "clean" or int(j.id[1:]) > 6 or j.status != "scored":
            continue
        row: dict[str, Any] = {"id": j.id, "model": j.model, "condition": j.condition}
        for r in RATERS:
            if r == "cyd" and rng.random() < 0.3:
                row[r] = ""
                continue
            row[r] = max(1, min(5, int(j.overall + 0.5) + rng.choice([-1, 0, 0, 0, 1])))
        rows.append(row)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "model", "condition", *RATERS])
        w.writeheader()
        w.writerows(rows)
    return out


def _other_run(results: Path, out: Path, seed: int = 9) -> Path:
    """The same answers judged again by another judge: overall shifted by noise, pass re-derived."""
    rng = random.Random(seed)
    rows = []
    for line in results.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        r["judge"] = "openai/y"
        if r["status"] == "scored":
            r["overall"] = float(max(1, min(5, round(r["overall"]) + rng.choice([-1, 0, 0, 1]))))
            r["passed"] = r["overall"] >= 3
        rows.append(r)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def extra(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    results, responses = files
    d = tmp_path_factory.mktemp("html_extra")
    ratings = _ratings(results, d / "ratings.csv")
    other = _other_run(results, d / "other.jsonl")
    rep = judgekit.report(results, boot=200, seed=1, html=d / "r.html", json=d / "r.json", markdown=d / "r.md",
                          responses=responses, human=ratings, compare=other)
    return {"results": results, "responses": responses, "ratings": ratings, "other": other, "rep": rep,
            "html": d / "r.html", "text": (d / "r.html").read_text(encoding="utf-8"),
            "json": json.loads((d / "r.json").read_text()), "md": (d / "r.md").read_text(encoding="utf-8")}


class _Cells(HTMLParser):
    """Every cell with a data-path: (data-field, data-path, data-value) as the page holds them."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, Any, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and a.get("data-path"):
            self.cells.append((a["data-field"] or "", json.loads(a["data-path"]), json.loads(a["data-value"] or "")))


def _at(payload: Any, path: list[Any]) -> Any:
    for key in path:
        payload = payload[key]
    return payload


def _check_cells(cells: list[tuple[str, Any, Any]], payload: dict[str, Any]) -> set[str]:
    """Every cell's value equals the JSON at its path; returns the top-level keys seen."""
    seen = set()
    for _name, path, value in cells:
        if path and isinstance(path[0], list):  # several figures (a value and its interval): paths, values
            assert value == [_at(payload, p) for p in path], (path, value)
            seen.add(path[0][0])
        else:
            assert value == _at(payload, path), (path, value)
            seen.add(path[0])
    return seen


def test_json_has_agreement_and_comparison_equal_to_agree_and_compare(extra: dict[str, Any]) -> None:
    payload = extra["json"]
    alone = judgekit.agree(extra["results"], extra["ratings"], boot=200, seed=1, rubric="robustmad")
    a, b = payload["agreement"], alone.to_dict()
    assert a["criteria"] == b["criteria"] and a["human_file"] == b["human_file"]
    sec = a["criteria"]["overall"]
    assert sec["raters"] == RATERS and sec["kind"] == "continuous" and sec["ppi"]
    assert {p["group"] for p in sec["ppi"]} == {"good", "fair", "evil<script>alert(1)</script>"}
    comp = judgekit.compare(extra["results"], extra["other"], boot=200, seed=1).to_dict()
    assert payload["comparison"] == json.loads(json.dumps(comp))
    assert payload["comparison"]["judge_b"] == "openai/y"
    md = extra["md"]
    assert "## Agreement with human ratings" in md and "inter-human ceiling" in md and "prediction-powered" in md
    assert "## Comparison with another run" in md and "McNemar p" in md


def test_page_numbers_equal_the_json(extra: dict[str, Any]) -> None:
    p = _Cells()
    p.feed(extra["text"])
    seen = _check_cells(p.cells, extra["json"])
    assert seen == {"agreement", "comparison"}
    fields = {name for name, _, _ in p.cells}
    for name in ("krippendorff_alpha_interval", "spearman", "icc_judge_vs_human_mean", "estimate", "judge_rate",
                 "pass_rate_diff", "mean_overall_diff", "rank_change", "pass_kappa", "overall_spearman"):
        assert any(f.startswith(name) for f in fields), (name, sorted(fields))
    paths = [path for _, path, _ in p.cells if not isinstance(path[0], list)]
    assert any(path[-3:-1] == ["ceiling", "ceiling"] for path in paths)  # the ceiling row, the judge beside it
    assert any(path[-2] == "judge_loo" for path in paths)
    text = extra["text"]
    for anchor in ("#agreement", "#comparison"):
        assert f'href="{anchor}"' in text and f'id="{anchor[1:]}"' in text
    assert "<script" not in text.lower().replace("&lt;script", "")


def test_heatmap_counts_the_rated_answers(extra: dict[str, Any]) -> None:
    from judgekit.reporting.html_extra import confusion_counts

    sec = extra["rep"].agreement["overall"]
    counts, rows, cols = confusion_counts(sec)
    assert rows == cols == ["1", "2", "3", "4", "5"]
    assert sum(map(sum, counts)) == sec.report.n_items
    text = extra["text"]
    assert 'class="heatmap"' in text and "Judge vs human on overall" in text
    svg = text[text.index('<figure class="heatmap">') + len('<figure class="heatmap">'):]
    ET.fromstring(svg[:svg.index("</svg>") + len("</svg>")])


def test_same_input_same_bytes(extra: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "again.html"
    judgekit.report(extra["results"], boot=200, seed=1, html=out, responses=extra["responses"],
                    human=extra["ratings"], compare=extra["other"])
    assert out.read_text(encoding="utf-8") == extra["text"]


def test_binary_labels_heatmap_and_no_ceiling_with_one_rater(tmp_path: Path) -> None:
    js = [Judgment(id=f"q{i}", model="m", judge="j", status="scored", overall=float(1 + i % 5), passed=i % 5 >= 2,
                   scores={"acc": float(1 + i % 5)}) for i in range(30)]
    ratings = tmp_path / "labels.csv"
    ratings.write_text("id,ann\n" + "".join(f"q{i},{'yes' if (i % 5 >= 2) != (i % 7 == 0) else 'no'}\n"
                                            for i in range(20)), encoding="utf-8")
    rep = judgekit.report(js, boot=100, html=tmp_path / "b.html", human=ratings)
    text = (tmp_path / "b.html").read_text()
    from judgekit.reporting.html_extra import confusion_counts

    counts, rows, cols = confusion_counts(rep.agreement["overall"])
    assert (rows, cols) == (["no", "yes"], ["fail", "pass"]) and sum(map(sum, counts)) == 20
    assert "needs at least two raters" in text and "human label (majority)" in text


# ---- the command line ----------------------------------------------------------------------------------------

def _jk(*args: Any) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("judgekit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "judgekit.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})


def test_cli_console_script_human_and_compare(extra: dict[str, Any], tmp_path: Path) -> None:
    html, js = tmp_path / "cli.html", tmp_path / "cli.json"
    r = _jk("report", extra["results"], "--boot", 200, "--seed", 1, "--html", html, "--json", js, "--responses",
            extra["responses"], "--human", extra["ratings"], "--raters", ",".join(RATERS), "--compare", extra["other"])
    assert r.returncode == 0, r.stderr
    assert f"page -> {html}" in r.stdout and "inter-human ceiling" in r.stdout and "McNemar p" in r.stdout
    assert html.read_text(encoding="utf-8") == extra["text"]
    payload = json.loads(js.read_text())
    assert payload["agreement"] == extra["json"]["agreement"] and payload["comparison"] == extra["json"]["comparison"]


@pytest.mark.parametrize("case", ["bad_value", "missing_rater", "no_file"])
def test_cli_bad_ratings_exit_2_and_nothing_written(extra: dict[str, Any], tmp_path: Path, case: str) -> None:
    bad = tmp_path / "bad.csv"
    extra_args: list[str] = []
    line = None
    if case == "bad_value":
        bad.write_text("id,model,condition,ann,bob\nq0,good,clean,4,5\nq1,good,clean,4,9\n", encoding="utf-8")
        line = 3
    elif case == "missing_rater":
        bad.write_text("id,model,condition,ann,bob\nq0,good,clean,4,5\n", encoding="utf-8")
        extra_args = ["--raters", "ann,zed"]
    html, js, md = tmp_path / "p.html", tmp_path / "p.json", tmp_path / "p.md"
    r = _jk("report", extra["results"], "--boot", 50, "--html", html, "--json", js, "--markdown", md, "--human", bad,
            *extra_args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.replace("\n", "")
    assert str(bad) in err and "Traceback" not in r.stderr
    if line is not None:
        assert f"line {line}" in err or f":{line}" in err, err
    assert not html.exists() and not js.exists() and not md.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_in_process_bad_compare_writes_nothing(extra: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zz", "model": "nobody", "judge": "k", "status": "scored", "overall": 3,
                                 "passed": True, "scores": {}}) + "\n", encoding="utf-8")
    html = tmp_path / "p.html"
    assert main(["report", str(extra["results"]), "--boot", "50", "--html", str(html), "--compare", str(other)]) == 2
    assert not html.exists()


# ---- reduce and panel settings in the results file -------------------------------------------------------------

def _judgment(**kw: Any) -> Judgment:
    samples = [{"sample": s, "status": "scored", "scores": {"acc": 3 + s % 2}} for s in range(kw.pop("n", 1))]
    fields: dict[str, Any] = {"id": "q1", "model": "m", "judge": "j", "status": "scored", "overall": 3.5,
                              "passed": True, "scores": {"acc": 3.5}, "samples": samples}
    return Judgment(**{**fields, **kw})


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_reduce_and_panel_fields_round_trip(tmp_path: Path, suffix: str) -> None:
    members = [_judgment(n=3, reduce="median", judge=f"j{i}") for i in range(3)]
    js = [_judgment(n=5, reduce="mean"), _judgment(),
          _judgment(judge="panel:j0+j1+j2", panel=members, panel_reduce="mean", panel_quorum=2)]
    out = tmp_path / f"r{suffix}"
    write_records(out, js)
    back = read_judgments(out)
    assert [(j.reduce, j.panel_reduce, j.panel_quorum) for j in back] == [("mean", None, None), (None, None, None),
                                                                          (None, "mean", 2)]
    assert [m.reduce for m in back[2].panel] == ["median"] * 3


def test_old_results_file_without_the_fields_reads_and_the_card_says_so(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    row = _judgment(n=2).model_dump(mode="json")
    for key in ("reduce", "panel_reduce", "panel_quorum"):
        row.pop(key)
    old.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (j,) = read_judgments(old)
    assert j.reduce is None
    card = dict(judge_card([j]))
    assert card["reduce"].startswith("not recorded (results file written before judgekit recorded it)")
    assert dict(judge_card([_judgment(n=5, reduce="mean")]))["reduce"] == "mean over 5 samples"
    assert dict(judge_card([_judgment()]))["reduce"].startswith("one sample per judgment")
    members = [_judgment(judge=f"j{i}") for i in range(3)]
    panel = _judgment(judge="panel", panel=members, panel_reduce="mean", panel_quorum=2)
    assert dict(judge_card([panel]))["panel"] == "mean of 3 judges, quorum 2"
    old_panel = _judgment(judge="panel", panel=members)
    assert dict(judge_card([old_panel]))["panel"].startswith("not recorded")


def test_runner_records_reduce_and_panel(make_response: Any, tmp_path: Path) -> None:
    """The runner records --reduce on judgments of several samples (not on one-sample ones), and --panel-reduce
    with the quorum (default: a majority) on panel judgments; the members keep their own reduce."""
    from judgekit.io.records import SampleResult
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.rubric import load_rubric
    from judgekit.judging.runner import Runner, RunOptions, _Unit
    from judgekit.judging.store import Store

    rubric = load_rubric(Path(__file__).resolve().parent.parent / "rubrics" / "robustmad.yaml")

    def units(n: int) -> list[_Unit]:
        scores = dict.fromkeys(rubric.reply_keys, 4)
        return [_Unit(ri=0, ji=0, sample=i, key=f"k{i}", stored=[], calls=1,
                      result=SampleResult(sample=i, status="scored", scores=scores, attempts=1)) for i in range(n)]

    resp = make_response()
    specs = [JudgeSpec(model=f"openai/{n}", api_base="http://127.0.0.1:9/v1") for n in "abc"]
    with Store(tmp_path / "s.db") as store:
        runner = Runner([resp], rubric, specs, store, RunOptions(reduce="median", panel_reduce="mode"))
        several, one = runner._judgment(resp, specs[0], units(3)), runner._judgment(resp, specs[0], units(1))
        assert (several.reduce, one.reduce) == ("median", None)
        panel = runner._panel(resp, [runner._judgment(resp, s, units(2)) for s in specs])
        assert (panel.panel_reduce, panel.panel_quorum, panel.reduce) == ("mode", 2, None)
        assert [m.reduce for m in panel.panel] == ["median"] * 3
        assert dict(judge_card([panel]))["panel"] == "mode of 3 judges, quorum 2"
        assert dict(judge_card([panel]))["reduce"] == "median over 2 samples"


# ---- in a real browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browsed(extra: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"console": [], "errors": [], "requests": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(extra["html"].as_uri(), wait_until="load")
            seen["cells"] = page.evaluate(
                "Array.from(document.querySelectorAll('td[data-path]'))"
                ".map(td => [td.dataset.field, JSON.parse(td.dataset.path), JSON.parse(td.dataset.value)])")
            seen["heatmap"] = page.evaluate(
                "(() => { const s = document.querySelector('figure.heatmap svg'); if (!s) return null;"
                " const b = s.getBoundingClientRect(); return [b.width, b.height,"
                " s.querySelectorAll('text').length]; })()")
            seen["overflow"] = page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            shot = tmp_path_factory.mktemp("shot") / "extra.png"
            page.screenshot(path=str(shot), full_page=True)
            seen["shot"] = shot
        finally:
            browser.close()
    return seen


def test_browser_human_and_compare(browsed: dict[str, Any], extra: dict[str, Any]) -> None:
    assert [c for c in browsed["console"] if c[0] in ("error", "warning")] == [] and browsed["errors"] == []
    page_url = extra["html"].as_uri()
    assert all(u == page_url or u.startswith("data:") for u in browsed["requests"]), browsed["requests"]
    cells = [tuple(c) for c in browsed["cells"]]
    assert len(cells) > 50 and _check_cells(cells, extra["json"]) == {"agreement", "comparison"}
    width, height, texts = browsed["heatmap"]
    assert width > 150 and height > 120 and texts >= 25  # 25 counts of the 5 x 5 table, plus the labels
    assert browsed["overflow"]  # no horizontal scroll of the page: wide tables scroll in their own box
