"""The HTML report (``judgekit report --html``, ``judgekit.report(html=...)``) and the rank ranges of its
leaderboard (:mod:`judgekit.stats.ranks`)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import judgekit
from judgekit.cli import main
from judgekit.stats.ranks import mean_rank_ranges, pass_matrix, rank_ranges, ranks_with_ties

CRITERIA = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity"]
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
BAD_MODEL = f"evil{SCRIPT}"


# ---- rank ranges -----------------------------------------------------------------------------------------------

def _slow_resamples(num: np.ndarray, den: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented scheme, one resample at a time: the same item draw for every model, the pooled ratio
    sum(num) / sum(den) per model (nan when nothing is drawn), competition ranks (nan last). Returns the
    resampled ratios and ranks, one row per resample."""
    rng = np.random.default_rng(seed)
    k, m = num.shape
    values, ranks = [], []
    for _ in range(n):
        draw = rng.integers(0, k, size=k)
        row = []
        for col in range(m):
            d = sum(den[i, col] for i in draw)
            row.append(sum(num[i, col] for i in draw) / d if d else float("nan"))
        values.append(row)
        key = [-1e9 if np.isnan(v) else v for v in row]
        ranks.append([1 + sum(other > mine for other in key) for mine in key])
    return np.array(values), np.array(ranks)


def _slow_rank_ranges(passes: np.ndarray, scored: np.ndarray, n: int, seed: int) -> tuple[list[int], list[int]]:
    """Lower / higher quantiles of the slow loop's ranks."""
    _values, arr = _slow_resamples(passes, scored, n, seed)
    return (list(np.quantile(arr, 0.025, axis=0, method="lower").astype(int)),
            list(np.quantile(arr, 0.975, axis=0, method="higher").astype(int)))


def test_ranks_with_ties_share_the_better_rank() -> None:
    assert ranks_with_ties(np.array([0.5, 0.9, 0.5, np.nan, 0.1])).tolist() == [2, 1, 2, 5, 4]
    assert ranks_with_ties(np.array([[1.0, 1.0], [0.0, 1.0]])).tolist() == [[1, 1], [2, 1]]


def test_clear_winner_and_identical_models() -> None:
    rng = np.random.default_rng(1)
    k = 40
    scored = np.ones((k, 4))
    winner = np.ones(k)
    twin = (rng.random(k) < 0.5).astype(float)
    loser = np.zeros(k)
    loser[0] = 1
    passes = np.column_stack([twin, winner, twin, loser])
    rr = rank_ranges(passes, scored, n_resamples=500, seed=3)
    assert rr.rank.tolist() == [2, 1, 2, 4]
    assert (rr.low[1], rr.high[1]) == (1, 1)
    assert (rr.low[0], rr.high[0]) == (rr.low[2], rr.high[2])  # identical columns: the same range
    assert rr.high[3] == 4 and rr.low[0] <= 2 <= rr.high[0]


def test_rank_ranges_reproducible_and_equal_to_a_slow_loop() -> None:
    rng = np.random.default_rng(7)
    k, m = 15, 4
    scored = rng.integers(0, 3, size=(k, m)).astype(float)  # some cells empty, some items repeated
    passes = np.floor(scored * rng.random((k, m)) * 1.5).clip(0, scored)
    a = rank_ranges(passes, scored, n_resamples=300, seed=11)
    b = rank_ranges(passes, scored, n_resamples=300, seed=11)
    assert a.low.tolist() == b.low.tolist() and a.high.tolist() == b.high.tolist()
    low, high = _slow_rank_ranges(passes, scored, 300, 11)
    assert a.low.tolist() == low and a.high.tolist() == high
    assert np.all(a.low <= a.high)
    with pytest.raises(ValueError):
        rank_ranges(passes + scored + 1, scored)


def test_mean_rank_ranges_equal_a_slow_loop() -> None:
    """By mean overall: the same item draws as rank_ranges, the pooled mean per resample, competition ranks,
    lower/higher rank quantiles and the linear percentile interval of the mean."""
    rng = np.random.default_rng(3)
    k, m, n, seed = 12, 3, 250, 5
    counts = rng.integers(0, 3, size=(k, m)).astype(float)
    totals = counts * rng.uniform(1, 5, size=(k, m))
    rr, lo, hi = mean_rank_ranges(totals, counts, n_resamples=n, seed=seed)
    means_a, ranks_a = _slow_resamples(totals, counts, n, seed)
    assert rr.low.tolist() == np.quantile(ranks_a, 0.025, axis=0, method="lower").astype(int).tolist()
    assert rr.high.tolist() == np.quantile(ranks_a, 0.975, axis=0, method="higher").astype(int).tolist()
    for col in range(m):
        v = means_a[:, col][~np.isnan(means_a[:, col])]
        assert lo[col] == pytest.approx(np.quantile(v, 0.025)) and hi[col] == pytest.approx(np.quantile(v, 0.975))
    assert rr.rate == pytest.approx(totals.sum(0) / counts.sum(0))
    with pytest.raises(ValueError, match="counts"):
        mean_rank_ranges(totals, -counts)


def test_rank_ranges_is_public_and_pass_matrix_counts_scored_only() -> None:
    import judgekit.stats as st

    assert st.rank_ranges is rank_ranges
    js = [judgekit.Judgment(id="q1", model="a", judge="j", status="scored", overall=4, passed=True),
          judgekit.Judgment(id="q1", model="a", judge="j", condition="blur", status="scored", overall=2,
                            passed=False),
          judgekit.Judgment(id="q2", model="b", judge="j", status="unscored", reason="x")]
    passes, scored, ids = pass_matrix(js, ["a", "b"])
    assert ids == ["q1"] and passes.tolist() == [[1, 0]] and scored.tolist() == [[2, 0]]


# ---- fixture: a results file and its responses --------------------------------------------------------------------

def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Results (3 models, one named with markup, x clean/blur x 10 questions, 2 samples each, one unscored) and
    the responses judged (a malicious answer, one real image and one missing)."""
    import cv2

    d = tmp_path_factory.mktemp("html_fixture")
    img = np.zeros((600, 400, 3), dtype=np.uint8)
    img[100:300, 50:200] = (0, 200, 255)
    cv2.imwrite(str(d / "item.png"), img)
    rng = random.Random(5)
    rows, responses = [], []
    skill = {"good": 4, "fair": 3, BAD_MODEL: 2}
    for model, level in skill.items():
        for cond in ("clean", "blur"):
            for i in range(10):
                base = {"id": f"q{i}", "model": model, "condition": cond, "category": "cA" if i % 2 else "cB",
                        "judge": "openai/x", "rubric": "robustmad", "rubric_version": "1.0", "temperature": 0.7,
                        "seed": 0}
                answer = f"answer {i} {SCRIPT} {IMG}" if model == BAD_MODEL else f"answer {i}"
                responses.append({"id": f"q{i}", "model": model, "condition": cond, "question": f"Q{i} {IMG}?",
                                  "reference": "ref", "response": answer,
                                  "images": ["item.png"] if i == 0 else (["gone.png"] if i == 1 else [])})
                if model == "fair" and cond == "blur" and i == 9:
                    rows.append({**base, "status": "unscored", "reason": f"invalid reply {SCRIPT}", "scores": {},
                                 "overall": None, "passed": None,
                                 "samples": [{"sample": 0, "status": "unscored", "reason": "bad"}]})
                    continue
                drop = 1 if cond == "blur" else 0
                samples = []
                for s in range(2):
                    sc = {c: max(1, min(5, level - drop + rng.choice([-1, 0, 1]))) for c in CRITERIA}
                    sc["overall"] = max(1, min(5, level - drop + rng.choice([-1, 0, 0, 1])))
                    samples.append({"sample": s, "status": "scored", "scores": sc, "rationale": f"r{s} {SCRIPT}"})
                scores = {c: (samples[0]["scores"][c] + samples[1]["scores"][c]) / 2 for c in CRITERIA}
                overall = (samples[0]["scores"]["overall"] + samples[1]["scores"]["overall"]) / 2
                spread = {c: abs(samples[0]["scores"][c] - samples[1]["scores"][c]) / 2 for c in [*CRITERIA, "overall"]}
                rows.append({**base, "status": "scored", "scores": scores, "overall": overall,
                             "passed": overall >= 3, "spread": spread, "samples": samples,
                             "rationale": f"because {SCRIPT} {IMG}", "latency_s": 0.5, "cost": 0.001})
    return _write_jsonl(d / "results.jsonl", rows), _write_jsonl(d / "responses.jsonl", responses)


class _Checker(HTMLParser):
    """Collects the leaderboard cells, every tag and attribute, and the parser's complaints."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[dict[str, str | None]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and "leaderboard" in (a.get("class") or ""):
            self.open.append("lb")
        if tag == "td" and self.open and "data-field" in a:
            self.cells.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.open:
            self.open.pop()


def _parse(text: str) -> _Checker:
    p = _Checker()
    p.feed(text)
    p.close()
    return p


def _leaderboard_from_html(p: _Checker) -> list[dict[str, Any]]:
    rows, row = [], {}
    for a in p.cells:
        field, value = a["data-field"], json.loads(a["data-value"] or "null")
        if field == "rank" and row:
            rows.append(row)
            row = {}
        row[field] = value
    if row:
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def page(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    results, responses = files
    d = tmp_path_factory.mktemp("html_out")
    rep = judgekit.report(results, boot=300, seed=1, html=d / "r.html", json=d / "r.json", responses=responses)
    assert rep.to_dict()["leaderboard"] == json.loads((d / "r.json").read_text())["leaderboard"]
    return (d / "r.html").read_text(encoding="utf-8"), json.loads((d / "r.json").read_text())


def test_page_is_self_contained_and_parses(page: tuple[str, dict[str, Any]]) -> None:
    text, _ = page
    p = _parse(text)
    low = text.lower()
    assert "<script" not in low.replace("&lt;script", "")
    assert not any(tag == "script" for tag, _ in p.tags)
    assert not any(tag == "link" for tag, _ in p.tags)
    for tag, attrs in p.tags:
        for name in ("src", "href", "xlink:href"):
            value = attrs.get(name) or ""
            assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
            if tag == "img" and name == "src":
                assert value.startswith("data:image/jpeg;base64,")
    assert "@import" not in text
    assert all(u.startswith("url(#") for u in re.findall(r"url\([^)]*\)", text))  # only the SVGs' own clip paths
    for section in ("leaderboard", "plots", "breakdowns", "judge", "examples"):
        assert f'id="{section}"' in text
    assert sum(tag == "svg" for tag, _ in p.tags) == 4  # pass rates, profile, distributions, slopes
    assert sum(tag == "img" for tag, _ in p.tags) >= 1  # the real image; the missing one is skipped


def test_numbers_equal_the_json(page: tuple[str, dict[str, Any]]) -> None:
    text, payload = page
    shown = _leaderboard_from_html(_parse(text))
    lb = payload["leaderboard"]
    assert len(shown) == len(lb) == 3
    for row, ref in zip(shown, lb, strict=True):
        assert row["model"] == ref["model"] and row["rank"] == ref["rank"]
        assert row["rank_range"] == [ref["rank_low"], ref["rank_high"]]
        for key in ("pass_rate", "wilson_ci", "bootstrap_ci", "mean_overall", "mean_overall_ci", "scored", "unscored"):
            assert row[key] == ref[key], key
        assert row["overall_rank_range"] == [ref["overall_rank"], ref["overall_rank_low"], ref["overall_rank_high"]]
        assert {c: row[f"means.{c}"] for c in CRITERIA} == ref["means"]
    # several conditions: the report's pass rates are by model x condition; the leaderboard pools them (items
    # resampled as clusters) and equals pass_rates by model
    from judgekit.stats.passrate import pass_rates

    js = judgekit.api.Results.read(payload["results_file"]).judgments
    by_model = {r.key[0]: r for r in pass_rates(js, by=["model"], n_resamples=300, seed=1)}
    for ref in lb:
        assert ref["pass_rate"] == by_model[ref["model"]].rate
        assert ref["bootstrap_ci"] == [by_model[ref["model"]].boot_low, by_model[ref["model"]].boot_high]
    assert [r["model"] for r in lb][:2] == ["good", "fair"] and lb[0]["rank_low"] == 1


def test_model_text_is_escaped(page: tuple[str, dict[str, Any]]) -> None:
    text, _ = page
    p = _parse(text)
    assert not any(tag == "script" for tag, _ in p.tags)
    assert not any("onerror" in attrs for _, attrs in p.tags)
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in p.tags)
    assert SCRIPT not in text and IMG not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</pre>" in text  # an answer


def test_judge_card_and_examples(page: tuple[str, dict[str, Any]]) -> None:
    text, _ = page
    assert "robustmad version 1.0" in text and "invalid reply &lt;script&gt;" in text
    assert "pass verdict differs between samples" in text and "not computed" not in text
    for title in ("Lowest-scored", "Most disputed", "Random sample"):
        assert title in text
    assert text.count("<details>") >= 11
    assert "Q0 &lt;img src=x onerror=alert(1)&gt;?" in text


def test_same_input_same_bytes(files: tuple[Path, Path], tmp_path: Path) -> None:
    results, responses = files
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    judgekit.report(results, boot=200, html=a, responses=responses)
    judgekit.report(results, boot=200, html=b, responses=responses)
    assert a.read_bytes() == b.read_bytes()


def test_plots_are_valid_deterministic_svg() -> None:
    from judgekit.reporting import plots

    def draw() -> list[str]:
        return [plots.criterion_profile(["a", BAD_MODEL], ["x", "overall"], {"a": {"x": 3.0, "overall": 2.5},
                                                                              BAD_MODEL: {"x": 4.0}}),
                plots.pass_rates(["a", BAD_MODEL], [0.5, 0.7], [0.3, 0.5], [0.7, 0.9]),
                plots.slopes([("a: blur", 3.2, 2.5), (BAD_MODEL, 4.0, 3.9)]),
                plots.distributions(["a", BAD_MODEL, "none"], {"a": [1, 2, 3, 4], BAD_MODEL: [2.5, 3]})]

    first, second = draw(), draw()
    assert first == second
    for svg in first:
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "<script" not in svg and "$" not in svg.replace("&#36;", "")


def test_no_robustness_says_so(tmp_path: Path) -> None:
    js = [judgekit.Judgment(id=f"q{i}", model=m, judge="j", status="scored", overall=float(s), passed=s >= 3,
                            scores={"acc": float(s)})
          for m, base in (("a", 4), ("b", 2)) for i, s in enumerate([base, base + 1, base - 1, base])]
    out = tmp_path / "one.html"
    rep = judgekit.report(js, boot=100, html=out)
    text = out.read_text()
    assert "no robustness comparison" in text and rep.to_dict()["robustness"] == []
    assert "Question, reference and answer: not given" in text
    assert rep.to_dict()["pass_rates"][0]["rate"] == rep.leaderboard[0]["pass_rate"]  # by model: the same figures


# ---- the command line ----------------------------------------------------------------------------------------

def test_cli_writes_the_page(files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, responses = files
    out = tmp_path / "page.html"
    assert main(["report", str(results), "--boot", "200", "--html", str(out), "--responses", str(responses)]) == 0
    assert out.is_file() and f"page -> {out}" in capsys.readouterr().out
    api = tmp_path / "api.html"
    judgekit.report(results, boot=200, html=api, responses=responses)
    assert api.read_bytes() == out.read_bytes()


def test_cli_console_script(files: tuple[Path, Path], tmp_path: Path) -> None:
    results, _ = files
    out = tmp_path / "s.html"
    exe = Path(sys.executable).with_name("judgekit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "judgekit.cli"]
    proc = subprocess.run([*cmd, "report", str(results), "--boot", "100", "--html", str(out)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("case", ["folder", "suffix", "under_a_file", "readonly", "bad_responses"])
def test_cli_bad_html_output_exit_2(files: tuple[Path, Path], tmp_path: Path, case: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    results, _ = files
    extra: list[str] = []
    if case == "folder":
        target = tmp_path / "adir"
        target.mkdir()
    elif case == "suffix":
        target = tmp_path / "page.txt"
    elif case == "under_a_file":
        (tmp_path / "afile").write_text("x", encoding="utf-8")
        target = tmp_path / "afile" / "page.html"
    elif case == "readonly":
        locked = tmp_path / "locked"
        locked.mkdir()
        target = locked / "page.html"
        locked.chmod(0o500)
        if os.access(locked, os.W_OK):  # root ignores the mode
            locked.chmod(0o700)
            pytest.skip("running as root: a read-only folder is still writable")
    else:
        target = tmp_path / "page.html"
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"id": "q1"}\n', encoding="utf-8")
        extra = ["--responses", str(bad)]
    json_out = tmp_path / "r.json"
    try:
        code = main(["report", str(results), "--html", str(target), "--json", str(json_out), *extra])
    finally:
        if case == "readonly":
            locked.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 2
    named = target if case != "bad_responses" else tmp_path / "bad.jsonl"
    assert str(named) in err.replace("\n", "")
    assert not json_out.exists()
    assert not target.exists() or target.is_dir()
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.html"))


# ---- in a real browser: headless Chromium (Debian's chromium, driven by Playwright) ----------------------------

def _chromium() -> str:
    import shutil
    from importlib.util import find_spec

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None or find_spec("playwright") is None:
        pytest.skip("headless-browser test: needs Debian's chromium and playwright (.ci/run installs both)")
    return exe


@pytest.fixture(scope="module")
def browsed(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fixture's page opened in headless Chromium with every example unfolded: what the browser logged,
    requested and showed, the leaderboard cells read from the DOM, and a full-page screenshot."""
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    results, responses = files
    d = tmp_path_factory.mktemp("html_browser")
    html = d / "report.html"
    rep = judgekit.report(results, boot=300, seed=1, html=html, responses=responses)
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
            page.goto(html.as_uri(), wait_until="load")
            page.evaluate("document.querySelectorAll('details').forEach(el => { el.open = true; })")
            page.wait_for_timeout(300)
            seen["cells"] = page.evaluate(
                "Array.from(document.querySelectorAll('table.leaderboard td[data-field]'))"
                ".map(td => [td.dataset.field, td.dataset.value])")
            seen["text"] = page.inner_text("body")
            seen["images"] = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)])")
            seen["svgs"] = page.evaluate("document.querySelectorAll('svg').length")
            seen["screenshot"] = d / "report.png"
            page.screenshot(path=str(seen["screenshot"]), full_page=True)
        finally:
            browser.close()
    seen["html"], seen["report"] = html, rep.to_dict()
    return seen


def test_browser_no_console_error_no_network_no_script_runs(browsed: dict[str, Any]) -> None:
    assert [c for c in browsed["console"] if c[0] in ("error", "warning")] == []
    assert browsed["errors"] == [] and browsed["dialogs"] == []  # alert(1) of the answers never ran
    page_url = browsed["html"].as_uri()
    assert all(u == page_url or u.startswith("data:") for u in browsed["requests"]), browsed["requests"]
    assert SCRIPT in browsed["text"] and IMG in browsed["text"]  # shown as text, not run


def test_browser_shows_what_the_json_says(browsed: dict[str, Any]) -> None:
    rows, row = [], {}
    for field, value in browsed["cells"]:
        if field == "rank" and row:
            rows.append(row)
            row = {}
        row[field] = json.loads(value)
    rows.append(row)
    expected = browsed["report"]["leaderboard"]
    assert len(rows) == len(expected) == 3
    for got, want in zip(rows, expected, strict=True):  # as the DOM holds them, the same as the JSON
        assert got["model"] == want["model"] and got["rank"] == want["rank"]
        assert got["rank_range"] == [want["rank_low"], want["rank_high"]]
        for key in ("pass_rate", "wilson_ci", "bootstrap_ci", "mean_overall", "mean_overall_ci", "scored", "unscored"):
            assert got[key] == want[key], key
        assert got["overall_rank_range"] == [want["overall_rank"], want["overall_rank_low"], want["overall_rank_high"]]
        assert {c: got[f"means.{c}"] for c in CRITERIA} == want["means"]


def test_browser_renders_plots_and_images(browsed: dict[str, Any]) -> None:
    assert browsed["svgs"] >= 4  # pass rate, profile, distribution, clean-vs-degraded
    loaded = [i for i in browsed["images"] if i[2].startswith("data:image/")]
    assert loaded and all(done and width > 0 for done, width, _src in loaded)  # the embedded example image
    import cv2

    shot = cv2.imread(str(browsed["screenshot"]))
    assert shot is not None and shot.shape[1] == 1280 and shot.shape[0] > 2000  # the whole page, unfolded


def test_a_header_sits_left_over_a_column_of_text_cells() -> None:
    """Headers align like their columns: left over the leading text columns and over a column of text cells (a note,
    a test's name), right over numbers."""
    from judgekit.reporting.html import _cell, _table

    rows = [["m1", _cell("n", 3, "3"), _cell("note", "fine", "fine", text=True)],
            ["m2", _cell("n", 4, "4"), _cell("note", "late", "late", text=True)]]
    html = _table(["model", "n", "note"], rows)
    assert "<th class=t>model</th><th>n</th><th class=t>note</th>" in html
    assert _table(["model", "n"], [["m1", "3"]]).count("<th class=t>") == 1
