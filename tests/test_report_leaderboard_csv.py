"""``judgekit report --csv`` (the leaderboard as CSV), the judge-human gap examples and the rubric's sha256 in the
judge card of a page with ``--human``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_report_html import files  # noqa: F401  (the shared module fixture)
from test_report_html_extra import _ratings

import judgekit
from judgekit.judging.rubric import load_rubric
from judgekit.sample_data import rubric_path


def _num(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return int(cell)
    except ValueError:
        return float(cell)


def test_csv_leaderboard_equals_the_json(files: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    results, _ = files
    rep = judgekit.report(results, boot=100, seed=2, json=tmp_path / "r.json", csv=tmp_path / "r.csv")
    rows = json.loads((tmp_path / "r.json").read_text())["leaderboard"]
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as fh:
        read = list(csv.DictReader(fh))
    assert len(read) == len(rows) == len(rep.leaderboard) and rows
    for row, line in zip(rows, read, strict=True):
        assert line["judge"] == row["judge"] and line["model"] == row["model"]
        for k, v in row.items():
            if k in ("judge", "model", "resampled"):
                assert line[k] == v
            elif k == "means":
                assert {c: _num(line[f"mean_{c}"]) for c in v} == pytest.approx(v)
            elif isinstance(v, list):
                assert [_num(line[f"{k}_low"]), _num(line[f"{k}_high"])] == pytest.approx(v)
            else:
                assert _num(line[k]) == (pytest.approx(v) if v is not None else None), k
    assert "cost_per_1000" in read[0] and "judge_s_per_1000" in read[0]


def test_csv_bad_suffix_exit_2_nothing_written(files: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    from judgekit.io.errors import JudgekitError

    with pytest.raises(JudgekitError, match="--csv"):
        judgekit.report(files[0], csv=tmp_path / "r.txt", json=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.txt").exists()


def test_human_gap_examples_and_rubric_sha(files: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    results, responses = files
    ratings = _ratings(results, tmp_path / "ratings.csv")
    rubric = load_rubric(rubric_path("robustmad"))
    rep = judgekit.report(results, boot=100, seed=1, html=tmp_path / "r.html", responses=responses, human=ratings,
                          rubric=rubric)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Largest judge-human gap (overall" in page
    section = page[page.index("Largest judge-human gap"):page.index("Random sample")]
    gaps = [abs(float(j) - float(h)) for h, j in
            re.findall(r"mean rating ([0-9.]+) on overall \(the judge: ([0-9.]+)\)", section)]
    assert gaps and gaps == sorted(gaps, reverse=True) and gaps[0] > 0
    jn = next(c for c in rep.agreement.sections if c.criterion == "overall").joined
    import numpy as np

    largest = max(abs(float(jn.judge[i]) - float(np.nanmean(jn.humans[i]))) for i in range(len(jn.ids)))
    assert gaps[0] == pytest.approx(largest, abs=0.006)  # shown with 2 decimals
    if (rubric.name, rubric.version) in {(j.rubric, j.rubric_version) for j in rep.judgments}:
        assert f"rubric sha256</dt><dd>{rubric.fingerprint}" in page
