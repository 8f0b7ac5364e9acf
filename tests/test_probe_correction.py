"""Multiple-comparison control in the bias-probes table (``judgekit probe --correction``): the family is every
probe row's Wilcoxon test of overall and McNemar test of its pass flips (:func:`judgekit.stats.probes.
correct_probes`); the stars follow the adjusted p-values; a probes file written before the adjustment still reads
and renders (its adjusted values computed on reading)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scripted_server import ScriptedServer
from statsmodels.stats.multitest import multipletests
from test_cli_e2e import flat, jk
from test_multiple import _sample_results

import judgekit
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response
from judgekit.reporting.probes import probe_table, probes_html, probes_markdown, read_probes, rows
from judgekit.stats._format import json_ready
from judgekit.stats.multiple import adjust_pvalues
from judgekit.stats.probes import correct_probes, pooled_shift, probe_shift


def _s(a: float) -> dict[str, float]:
    return {"a": a, "overall": a}


def _doc(up: int = 6, flat_rows: int = 1) -> dict[str, Any]:
    """A probes document: two probes that move every answer up by 3 (one way: Wilcoxon and McNemar both
    ``0.5 ** (up - 1)``), ``flat_rows`` that move nothing, and a pooled row (Wilcoxon only)."""
    shifts = [probe_shift([_s(1)] * up, [_s(4)] * up, [False] * up, [True] * up, ["a", "overall"], probe=f"up{k}",
                          family="verbosity", n_boot=50) for k in range(2)]
    shifts += [probe_shift([_s(3)] * 6, [_s(3)] * 6, [True] * 6, [True] * 6, ["a", "overall"], probe=f"flat{k}",
                           family="injection", n_boot=50) for k in range(flat_rows)]
    shifts.append(pooled_shift([_s(1)] * up, [[_s(4)] * up, [_s(4)] * up], [False] * up, [[True] * up] * 2,
                               ["a", "overall"], probe="injection (any)", family="injection", n_boot=50))
    return json_ready({"kind": "judgekit-probes", "version": 1, "judge": "openai/j", "criteria": ["a"],
                       "probes": [s.to_dict() for s in shifts], "notes": []})


def _raw(doc: dict[str, Any]) -> list[float]:
    """The family in its documented order: per probe, Wilcoxon of overall then McNemar (nan without a test)."""
    out = []
    for p in doc["probes"]:
        for x in (p["shifts"]["overall"]["p_value"], p["pass"]["mcnemar_p"]):
            out.append(math.nan if x is None else x)
    return out


def _adj(doc: dict[str, Any]) -> list[float]:
    out = []
    for p in doc["probes"]:
        for x in (p["shifts"]["overall"]["p_adjusted"], p["pass"]["mcnemar_p_adjusted"]):
            out.append(math.nan if x is None else x)
    return out


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh"), ("none", None)])
def test_adjusted_values_are_adjust_pvalues_over_the_documented_family(method: str, sm: str | None) -> None:
    doc = _doc()
    before = json.dumps(doc)
    out = correct_probes(doc, method)
    assert json.dumps(doc) == before  # the input is not changed
    raw = _raw(doc)
    np.testing.assert_allclose(_adj(out), adjust_pvalues(raw, method))
    tested = [x for x in raw if not math.isnan(x)]
    # 4 rows x 2 tests, the pooled row without McNemar: 7 tests
    assert len(raw) == 8 and len(tested) == 7 and out["family_size"] == 7 and out["correction"] == method
    assert out["probes"][-1]["pass"]["mcnemar_p_adjusted"] is None
    if sm is not None:
        np.testing.assert_allclose([x for x in _adj(out) if not math.isnan(x)], multipletests(tested, method=sm)[1])
    else:
        assert _adj(out) == pytest.approx(raw, nan_ok=True)
    assert "family of 7 tests" in out["family"] or "7 tests shown" in out["family"]
    assert "Wilcoxon" in out["family"] and "McNemar" in out["family"]
    assert correct_probes(json_ready({"kind": "judgekit-probes", "probes": []}))["family_size"] == 0
    with pytest.raises(ValueError, match="correction"):
        correct_probes(doc, "bonferroni")


def test_stars_follow_p_adj_not_the_raw_p_nor_the_interval() -> None:
    # every "up" row: interval [+3, +3] excludes 0 and raw p = 0.03125 < 0.05; Holm over 7 tests: not significant
    doc = _doc(up=6)
    assert doc["probes"][0]["shifts"]["overall"]["p_value"] == pytest.approx(0.03125)
    holm = correct_probes(doc, "holm")
    shown = rows(holm)
    assert all(not r["overall"].endswith("*") and not r["McNemar p adj"].endswith("*") for r in shown)
    assert shown[0]["p"] == "0.0312" and shown[0]["p adj"] == "0.2188"
    # no correction: the same rows are starred
    none = rows(correct_probes(doc, "none"))
    assert none[0]["overall"].endswith(" *") and none[0]["McNemar p adj"] == "0.0312 *"
    assert not none[2]["overall"].endswith("*")  # the flat row
    # the per-criterion table shows intervals only
    md = probes_markdown(holm)
    crit = md.split("Shift per criterion")[1]
    assert "*" not in crit.split("\n", 1)[1] and "not a test" in crit
    assert "| p | p adj |" in md and "| McNemar p | McNemar p adj |" in md
    assert "Holm-Bonferroni (family-wise error rate) over a family of 7 tests" in md
    # a strong effect survives Holm: 10 answers one way, p = 0.002
    strong = rows(correct_probes(_doc(up=10), "holm"))
    assert strong[0]["overall"].endswith(" *") and strong[0]["McNemar p adj"].endswith(" *")
    html = probes_html(correct_probes(doc, "none"))
    assert 'data-field="p_adjusted"' in html and 'data-field="mcnemar_p_adjusted"' in html
    assert "no correction for multiple comparisons" in html and "Wilcoxon p adj" in html


def test_an_old_probes_file_reads_and_renders(tmp_path: Path) -> None:
    old = _doc()  # as judgekit wrote it before the adjustment: no p_adjusted, no correction
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    doc = read_probes(path)
    assert doc["correction"] == "holm" and doc["family_size"] == 7
    np.testing.assert_allclose(_adj(doc), adjust_pvalues(_raw(old), "holm"))
    assert read_probes(path, "bh")["correction"] == "bh"
    # the renderers take an old document as is too
    assert rows(old)[0]["p adj"] == "0.2188"
    assert probe_table(old).caption and "p adj" in probes_markdown(old)
    assert 'data-field="p_adjusted"' in probes_html(old)
    # a new file is read as written (its own correction kept)
    new = tmp_path / "new.json"
    new.write_text(json.dumps(correct_probes(old, "none")), encoding="utf-8")
    assert read_probes(new, "holm")["correction"] == "none"


def test_report_reads_an_old_probes_file(tmp_path: Path) -> None:
    results = _sample_results(tmp_path)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(dict(_doc(), judge="judge/a")), encoding="utf-8")
    js, md, html = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.html"
    r = jk("report", results, "--probes", old, "--correction", "bh", "--boot", "100", "--json", js, "--markdown", md,
           "--html", html)
    assert r.returncode == 0, r.stderr
    probes = json.loads(js.read_text())["probes"]
    assert probes["correction"] == "bh" and probes["family_size"] == 7
    np.testing.assert_allclose(_adj(probes), adjust_pvalues(_raw(probes), "bh"))
    assert "McNemar p adj" in md.read_text() and "Benjamini-Hochberg" in html.read_text()
    assert "Benjamini-Hochberg" in flat(r.stdout)


# ---- through judgekit.probe and the console script -------------------------------------------------------------

def _answers() -> list[Response]:
    return [Response(id=f"q{i}", model=m, question=f"Is there a defect? ({m} {i}, correction)",
                     reference="A scratch.", response="A scratch. [[script:bylength=40]]" + " More." * i)
            for m in ("m1", "m2", "m3") for i in range(3)]


def test_api_and_cli_correction(tmp_path: Path) -> None:
    answers = _answers()
    with ScriptedServer() as server:
        kw = {"judges": "openai/scripted", "api_base": server.base_url, "store": tmp_path / "s.sqlite", "boot": 100,
              "probes": "verbosity", "concurrency": 4}
        bh = judgekit.probe(answers, "robustmad", correction="BH", out=tmp_path / "bh.json", **kw)
        doc = json.loads((tmp_path / "bh.json").read_text())
        assert doc == bh.to_dict() and doc["correction"] == "bh" and doc["family_size"] == 4
        np.testing.assert_allclose(_adj(doc), adjust_pvalues(_raw(doc), "bh"))
        default = judgekit.probe(answers, "robustmad", **kw).to_dict()
        assert default["correction"] == "holm"
        np.testing.assert_allclose(_adj(default), adjust_pvalues(_raw(default), "holm"))
        with pytest.raises(JudgekitError) as err:
            judgekit.probe(answers, "robustmad", correction="bonferroni", **kw)
        assert err.value.field == "--correction"
        rfile = tmp_path / "responses.jsonl"
        rfile.write_text("".join(a.model_dump_json(exclude_defaults=True) + "\n" for a in answers), encoding="utf-8")
        out = tmp_path / "none.json"
        r = jk("probe", rfile, "--rubric", "robustmad", "--judge", "openai/scripted", "--api-base", server.base_url,
               "--out", out, "--store", tmp_path / "s.sqlite", "--boot", "100", "--probes", "verbosity",
               "--correction", "none", "--no-progress")
        assert r.returncode == 0, r.stderr
        none = json.loads(out.read_text())
        assert none["correction"] == "none" and _adj(none) == pytest.approx(_raw(none), nan_ok=True)
        assert "McNemar p adj" in flat(r.stdout) and "no correction for multiple comparisons" in flat(r.stdout)
        bad = jk("probe", rfile, "--rubric", "robustmad", "--judge", "openai/scripted", "--api-base",
                 server.base_url, "--out", tmp_path / "x.json", "--correction", "bogus", "--no-progress")
        assert bad.returncode == 2 and "--correction" in bad.stderr and not (tmp_path / "x.json").exists()
