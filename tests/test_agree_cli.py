"""`judgekit agree` as a user runs it: real human labels (NQ-open, three annotators, GPT-4 as the judge), long
1-5 ratings of several models with PPI pass rates, fractional judge scores, and every refusal."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli_e2e import flat, jk

NQ = Path(__file__).resolve().parents[1] / "judgekit" / "local" / "devsets" / "nq301_dev.tsv.gz"


def _nq_files(tmp: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(NQ.read_bytes()).decode()), delimiter="\t"))
    results = tmp / "results.jsonl"
    with results.open("w") as fh:
        for i, r in enumerate(rows):
            yes = r["gpt4_label"] == "Yes"
            fh.write(json.dumps({"id": f"r{i}", "model": "qa", "judge": "gpt-4", "status": "scored", "passed": yes,
                                 "overall": 5.0 if yes else 1.0, "scores": {}}) + "\n")
    ratings = tmp / "ratings.tsv"
    with ratings.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["id", "qid", "annotator1", "annotator2", "annotator3"])
        for i, r in enumerate(rows):
            w.writerow([f"r{i}", r["qid"], r["annotator1"], r["annotator2"], r["annotator3"]])
    return results, ratings, rows


def _entry(section: dict[str, Any], name: str, level: str = "-") -> dict[str, Any]:
    return next(e for e in section["report"]["entries"] if e["name"] == name and e["level"] == level)


def test_real_binary_labels_judge_vs_three_annotators(tmp_path: Path) -> None:
    results, ratings, rows = _nq_files(tmp_path)
    out = tmp_path / "agree.json"
    r = jk("agree", "--judge", results, "--human", ratings, "--group-by", "qid", "--json", out)
    assert r.returncode == 0, r.stderr
    text = flat(r.stdout)
    assert f"{len(rows)} responses rated by 3 human(s)" in text and "binary" in text
    assert "annotator1" in text and "inter-human ceiling" in text
    sec = json.loads(out.read_text())["criteria"]["overall"]
    assert sec["kind"] == "binary" and sec["raters"] == ["annotator1", "annotator2", "annotator3"]
    # the figures, recomputed here from the file: majority of the annotators (ties -> No) vs GPT-4
    lab = np.array([[{"Yes": 1.0, "No": 0.0}.get(r[f"annotator{k}"], np.nan) for k in (1, 2, 3)] for r in rows])
    majority = (np.nanmean(lab, axis=1) > 0.5).astype(float)
    judge = np.array([r["gpt4_label"] == "Yes" for r in rows], float)
    acc = float((judge == majority).mean())
    po, pj, ph = acc, judge.mean(), majority.mean()
    pe = pj * ph + (1 - pj) * (1 - ph)
    kappa = (po - pe) / (1 - pe)
    assert _entry(sec, "accuracy")["value"] == pytest.approx(acc, abs=1e-12)
    assert _entry(sec, "cohen_kappa")["value"] == pytest.approx(kappa, abs=1e-12)
    assert 0.70 < kappa < 0.75  # data README: GPT-4 vs human kappa ~0.70-0.73
    low, high = _entry(sec, "cohen_kappa")["ci_low"], _entry(sec, "cohen_kappa")["ci_high"]
    assert low < kappa < high and high - low < 0.2
    assert "cluster bootstrap over 150 groups" in sec["report"]["resampling"]
    ceiling = sec["report"]["ceiling"]
    assert [x["rater"] for x in ceiling["raters"]] == ["annotator1", "annotator2", "annotator3"]
    assert "ppi" not in sec  # every response is rated: no PPI


def _ordinal_files(tmp: Path, *, fractional: bool = False) -> tuple[Path, Path]:
    rng = random.Random(1)
    results, ratings = tmp / "res.jsonl", tmp / "long.csv"
    with results.open("w") as res, ratings.open("w", newline="") as lon:
        w = csv.writer(lon)
        w.writerow(["id", "model", "rater", "criterion", "score"])
        for m in ("m1", "m2", "m3"):
            for q in range(60):
                truth = rng.randint(1, 5)
                js = min(5, max(1, truth + rng.choice([-1, 0, 0, 1])))
                judge_overall = js + 0.5 if fractional and js < 5 else js
                res.write(json.dumps({"id": f"q{q}", "model": m, "judge": "j", "status": "scored",
                                      "scores": {"technical_accuracy": js}, "overall": judge_overall,
                                      "passed": judge_overall >= 3}) + "\n")
                if q < 20:  # humans rate a third of each model's answers
                    for rater in ("ann", "bob"):
                        w.writerow([f"q{q}", m, rater, "overall", min(5, max(1, truth + rng.choice([-1, 0, 0, 1])))])
                        w.writerow([f"q{q}", m, rater, "technical_accuracy", min(5, max(1, truth))])
    return results, ratings


def test_long_ordinal_ratings_three_levels_and_ppi(tmp_path: Path) -> None:
    results, ratings = _ordinal_files(tmp_path)
    out = tmp_path / "a.json"
    r = jk("agree", "--judge", results, "--human", ratings, "--group-by", "id", "--json", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())["criteria"]
    assert set(data) == {"overall", "technical_accuracy"}
    sec = data["overall"]
    assert sec["kind"] == "ordinal" and sec["levels"] == ["sample", "summary", "system"]
    for level in ("sample", "summary", "system"):
        assert _entry(sec, "spearman", level)["value"] is not None
    assert _entry(sec, "cohen_kappa_quadratic")["value"] > 0.5
    ppi = {p["group"]: p for p in sec["ppi"]}
    assert set(ppi) == {"m1", "m2", "m3"} and all(p["n_labeled"] == 20 and p["n_unlabeled"] == 40
                                                   for p in ppi.values())
    assert "ppi" not in data["technical_accuracy"]  # PPI is about the pass rate (overall)
    assert "prediction-powered" in flat(r.stdout)


def test_fractional_judge_scores_use_continuous_statistics(tmp_path: Path) -> None:
    results, ratings = _ordinal_files(tmp_path, fractional=True)
    out = tmp_path / "a.json"
    r = jk("agree", "--judge", results, "--human", ratings, "--criterion", "overall", "--json", out)
    assert r.returncode == 0, r.stderr
    sec = json.loads(out.read_text())["criteria"]["overall"]
    names = {e["name"] for e in sec["report"]["entries"]}
    assert sec["kind"] == "continuous" and "pearson" in names and "krippendorff_alpha_interval" in names
    assert not any(n.startswith("cohen_kappa") for n in names)  # no kappa on fractional scores


def test_refusals_exit_2_and_write_nothing(tmp_path: Path) -> None:
    results, ratings = _ordinal_files(tmp_path)
    out = tmp_path / "a.json"

    def refused(human: Path, *extra: str, judge: Path = results) -> str:
        r = jk("agree", "--judge", judge, "--human", human, *extra, "--json", out)
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and not out.exists()
        return r.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("id,model,rater,score\nq1,m1,ann,3\nq999,m1,ann,4\n")
    assert "not in the judge's results (mismatched ids)" in refused(bad)
    bad.write_text("id,model,rater,score\nq1,m1,ann,3\nq2,m1,ann,6\n")
    err = refused(bad)
    assert "bad.csv:3" in err and "outside the scale 1-5" in err and "'score'" in err
    rubric = Path(__file__).resolve().parents[1] / "rubrics" / "robustmad.yaml"
    assert "outside the scale 1-5" in refused(bad, "--rubric", str(rubric))
    ten = tmp_path / "ten.yaml"  # a rubric on 1-10: its scale admits the 6
    levels = "\n".join(f"      {k}: level {k}." for k in range(1, 11))
    ten.write_text(f"name: ten\nversion: '1'\nscale: [1, 10]\ncriteria:\n  - name: quality\n"
                   f"    description: How good.\n    levels:\n{levels}\noverall:\n  method: weighted_mean\n")
    r = jk("agree", "--judge", results, "--human", bad, "--rubric", ten)
    assert r.returncode == 0, r.stderr
    bad.write_text("id,model,rater,score\nq1,m1,ann,maybe\n")
    assert "bad.csv:2" in refused(bad) and "not a rating" in refused(bad)
    bad.write_text("id,rater,score\nq1,ann,3\n")  # no model column: q1 is ambiguous (three models answered it)
    assert "add the columns model" in refused(bad)
    bad.write_text("id,model,rater,score\nq1,m1,ann,3\nq1,m1,ann,4\n")
    assert "twice" in refused(bad)
    unscored = tmp_path / "unscored.jsonl"
    unscored.write_text(json.dumps({"id": "q1", "model": "m1", "judge": "j", "status": "unscored",
                                    "reason": "invalid reply"}) + "\n")
    bad.write_text("id,model,rater,score\nq1,m1,ann,3\n")
    assert "empty join" in refused(bad, judge=unscored)
    assert "no ratings of criterion 'relevance'" in refused(ratings, "--criterion", "relevance")
    assert "expected LO-HI" in refused(ratings, "--scale", "five")


def test_shipped_rubric_by_name_and_strict_rating_files(tmp_path: Path) -> None:
    results, ratings = _ordinal_files(tmp_path)
    r = jk("agree", "--judge", results, "--human", ratings, "--rubric", "robustmad", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = ratings.read_text().splitlines()  # add a free-text column far over csv's default 131,072 characters
    wide_note = "\n".join([text[0] + ",note", *(f"{line},{'x' * 200_000 if i == 0 else ''}"
                                                 for i, line in enumerate(text[1:]))]) + "\n"
    ratings.write_text(wide_note)
    r = jk("agree", "--judge", results, "--human", ratings)
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.jsonl"
    out = tmp_path / "a.json"
    for line, expected in (('{"id": "q1", "model": "m1", "rater": "ann", "score": 3, "score": 4}',
                            "bad.jsonl:1: field 'score': duplicate key 'score'"),
                           ('{"id": "q1", "model": "m1", "rater": "ann", "score": NaN}',
                            "bad.jsonl:1: field 'score': not a finite number: NaN"),
                           ('{"id": "q1\\ud800", "model": "m1", "rater": "ann", "score": 3}',
                            "bad.jsonl:1: field 'id': lone surrogate \\ud800")):
        bad.write_text(line + "\n")
        r = jk("agree", "--judge", results, "--human", bad, "--json", out)
        assert r.returncode == 2 and "Traceback" not in r.stderr and not out.exists(), r.stderr
        assert expected in r.stderr, r.stderr
