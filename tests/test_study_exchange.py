"""Ratings in and out of a human study (issue 13): the export for ``judgekit agree`` (latest revision, repeats,
gold, unratable), the per-rater summary, Label Studio, the imports (long, wide, Label Studio, Argilla) and the
``judgekit study`` command end to end."""

from __future__ import annotations

import csv
import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from study_fixtures import RESPONSES, make_gold, make_results
from test_cli_e2e import flat, jk

import judgekit
from human_study.design import create_study
from human_study.exchange import COLUMNS, export_label_studio, export_ratings, import_ratings
from human_study.store import StudyStore
from judgekit.io.errors import JudgekitError
from judgekit.judging.rubric import load_rubric

RUBRIC = load_rubric("robustmad")
KEYS = [*RUBRIC.criterion_names, "overall"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path]:
    results = make_results(tmp_path / "results.jsonl")
    create_study(results, rubric="robustmad", responses=RESPONSES, out=tmp_path / "study", raters=4, overlap=2,
                 size=16, repeats=1, gold=make_gold(tmp_path / "g"), seed=2)
    return tmp_path / "study", results


def _score(item: Any, rater: str, key: str) -> int:
    """A made-up human score near the judge's (so the agreement is defined and not constant)."""
    base = item.judge_overall if key == "overall" else (item.judge_scores or {}).get(key, 3)
    return int(min(5, max(1, round(base or 3) + (1 if rater in ("rater2", "rater4") and key == "relevance" else 0))))


def _rate_everything(folder: Path) -> dict[tuple[str, ...], int]:
    """Rate every slot; rater1 revises one main slot, rater3 flags one main slot unratable. Returns the
    expected main rows: (id, model, condition, rater, criterion) -> score."""
    expected: dict[tuple[str, ...], int] = {}
    with StudyStore(folder) as store:
        items = {i.item_key: i for i in store.items()}
        for rater in store.raters():
            flagged = revised = False
            for a in store.assignments(rater):
                item = items[a.item_key]
                if item.gold is not None:
                    scores = {k: item.gold.get(k, 3) for k in KEYS}
                    if rater == "rater1":
                        scores["overall"] = 4 if scores["overall"] == 5 else 2  # off by one on gold
                else:
                    scores = {k: _score(item, rater, k) for k in KEYS}
                if a.kind == "repeat" and rater == "rater2":
                    scores["overall"] = 1 if scores["overall"] > 2 else 5  # inconsistent with the first showing
                if a.kind == "main" and rater == "rater3" and not flagged:
                    store.rate(a.slot, rater, None, unratable=True, reason="the image does not load", seconds=3)
                    flagged = True
                    continue
                store.rate(a.slot, rater, scores, seconds=10.0, comment="ok" if rater == "rater4" else None)
                if a.kind == "main" and rater == "rater1" and not revised:
                    scores = {**scores, "overall": 1 if scores["overall"] != 1 else 2}
                    store.rate(a.slot, rater, scores, seconds=5.5)
                    revised = True
                if a.kind == "main":
                    for k, v in scores.items():
                        expected[(item.id, item.model, item.condition or "", rater, k)] = v
    return expected


def test_export_round_trip_and_agree_reads_it(study: tuple[Path, Path], tmp_path: Path) -> None:
    folder, results = study
    expected = _rate_everything(folder)
    summary = export_ratings(folder, tmp_path / "ratings.csv")
    rows = _rows(tmp_path / "ratings.csv")
    assert list(rows[0]) == COLUMNS
    got = {(r["id"], r["model"], r["condition"], r["rater"], r["criterion"]): int(r["score"]) for r in rows}
    assert got == expected and len(rows) == len(expected) == summary.rows
    assert {r["kind"] for r in rows} == {"main"} and {r["unratable"] for r in rows} == {"0"}
    revised = [r for r in rows if r["revisions"] == "2"]
    assert len(revised) == len(KEYS) and {r["rater"] for r in revised} == {"rater1"}
    assert {r["time_s"] for r in revised} == {"15.5"}  # the seconds of both revisions
    assert all(r["submitted"].endswith("+00:00") for r in rows)
    assert {r["comment"] for r in rows if r["rater"] == "rater4"} == {"ok"}
    # the siblings
    unratable = _rows(tmp_path / "ratings_unratable.csv")
    assert len(unratable) == 1 and unratable[0]["rater"] == "rater3" and unratable[0]["unratable"] == "1"
    assert unratable[0]["score"] == "" and unratable[0]["reason"] == "the image does not load"
    repeats = _rows(tmp_path / "ratings_repeats.csv")
    assert {r["kind"] for r in repeats} == {"repeat"} and len(repeats) == 4 * len(KEYS)
    gold = _rows(tmp_path / "ratings_gold.csv")
    assert {r["kind"] for r in gold} == {"gold"} and len(gold) == 4 * 2 * len(KEYS)
    assert all(r["gold_score"] for r in gold if r["criterion"] in ("technical_accuracy", "overall"))
    # the summary: progress, consistency on repeats, gold accuracy
    by = {p.rater: p for p in summary.raters}
    assert all(p.done == p.total for p in by.values())
    assert by["rater1"].repeat_exact is not None
    assert by["rater2"].repeat_exact is not None and by["rater2"].repeat_exact < 1 and by["rater2"].repeat_mad
    assert by["rater4"].repeat_exact == 1.0 and by["rater4"].repeat_mad == 0.0
    assert by["rater4"].gold_exact == 1.0 and by["rater4"].gold_rated == 2
    assert by["rater1"].gold_exact is not None and by["rater1"].gold_exact < 1 and by["rater1"].gold_mad
    # judgekit agree reads the export as it is
    agreement = judgekit.agree(results, tmp_path / "ratings.csv", rubric="robustmad", boot=50)
    assert sorted(s.criterion for s in agreement.sections) == sorted(KEYS)
    assert all(s.raters == ["rater1", "rater2", "rater3", "rater4"] or len(s.raters) >= 3 for s in agreement.sections)


def test_export_of_a_study_without_ratings_writes_headers(study: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = study
    summary = export_ratings(folder, tmp_path / "out" / "r.csv")
    assert summary.rows == 0 and all(p.done == 0 for p in summary.raters)
    for f in summary.files.values():
        assert f.read_text().startswith("id,model,condition,rater,criterion,score")
    with pytest.raises(JudgekitError, match=r"give a \.csv"):
        export_ratings(folder, tmp_path / "r.json")


# ----------------------------------------------------------------------------------------------- Label Studio

def test_label_studio_export_is_valid_and_its_annotations_come_back(study: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    folder, results = study
    files = export_label_studio(folder, tmp_path / "ls", image_prefix="/data/local-files/?d=ls/")
    root = ET.parse(files["config"]).getroot()
    assert root.tag == "View"
    ratings = root.findall(".//Rating")
    assert [r.get("name") for r in ratings] == KEYS
    assert all(r.get("toName") == "answer" and r.get("maxRating") == "5" for r in ratings)
    headers = [h.get("value") or "" for h in root.iter("Header")]
    assert any(h.startswith("1: Wrong on the main point") for h in headers)  # the level descriptors
    names = {e.get("name") for e in root.iter() if e.get("name")}
    assert {"question", "reference", "answer", "images"} <= names
    tasks = json.loads(files["tasks"].read_text())
    with StudyStore(folder, readonly=True) as store:
        main = [i for i in store.items() if i.gold is None]
    assert len(tasks) == len(main)
    for t in tasks:
        assert set(t["data"]) == {"id", "model", "condition", "question", "reference", "answer", "images",
                                  "reference_images"}
        for url in t["data"]["images"]:
            assert url.startswith("/data/local-files/?d=ls/images/")
            assert (tmp_path / "ls" / url.removeprefix("/data/local-files/?d=ls/")).is_file()
    # a Label Studio export of two annotators' work (one cancelled, one unratable)
    export = []
    for n, t in enumerate(tasks):
        anns = []
        for who in ({"id": 1, "email": "ann@x.org"}, 2):
            result = [{"from_name": k, "to_name": "answer", "type": "rating", "value": {"rating": 1 + (n + i) % 5}}
                      for i, k in enumerate(KEYS)]
            if n == 0 and who == 2:
                result.append({"from_name": "unratable", "to_name": "answer", "type": "choices",
                               "value": {"choices": ["cannot be rated"]}})
            anns.append({"id": n, "completed_by": who, "result": result, "was_cancelled": False, "lead_time": 7.5,
                         "created_at": "2026-01-02T03:04:05Z"})
        anns.append({"completed_by": 3, "result": [], "was_cancelled": True})
        export.append({"id": n + 1, "data": t["data"], "annotations": anns})
    src = tmp_path / "ls_export.json"
    src.write_text(json.dumps(export))
    s = import_ratings(src, tmp_path / "from_ls.csv", rubric="robustmad")
    assert s.format == "label-studio" and s.skipped_unratable == 1 and s.raters == ["2", "ann@x.org"]
    rows = _rows(tmp_path / "from_ls.csv")
    assert len(rows) == (2 * len(tasks) - 1) * len(KEYS)
    first = {r["criterion"]: int(r["score"]) for r in rows if r["rater"] == "ann@x.org" and
             (r["id"], r["model"]) == (tasks[0]["data"]["id"], tasks[0]["data"]["model"])}
    assert first == {k: 1 + i % 5 for i, k in enumerate(KEYS)}
    assert {r["time_s"] for r in rows} == {"7.5"}
    judgekit.agree(results, tmp_path / "from_ls.csv", rubric="robustmad", boot=20)


# ----------------------------------------------------------------------------------------------------- imports

def test_import_long_and_wide_csv(tmp_path: Path) -> None:
    long = tmp_path / "long.csv"
    long.write_text("id,model,condition,rater,criterion,score\nou-01,strong-vlm,clean,a,overall,4\n"
                    "ou-01,strong-vlm,clean,b,overall,5\nou-01,weak-vlm,clean,a,relevance,2\n")
    s = import_ratings(long, tmp_path / "out.csv")
    assert s.format == "csv" and s.rows == 3 and s.criteria == ["overall", "relevance"]
    rows = _rows(tmp_path / "out.csv")
    assert [(r["rater"], r["score"], r["kind"]) for r in rows] == [("a", "4", "main"), ("b", "5", "main"),
                                                                   ("a", "2", "main")]
    wide = tmp_path / "wide.csv"
    wide.write_text("id,model,condition,alice,bob,notes\nou-01,strong-vlm,clean,4,,x\nou-01,weak-vlm,clean,1,2,\n")
    s = import_ratings(wide, tmp_path / "w.csv", raters="alice,bob", criterion="technical_accuracy")
    assert s.format == "wide" and s.rows == 3 and s.criteria == ["technical_accuracy"]
    assert [(r["rater"], r["model"], r["score"]) for r in _rows(tmp_path / "w.csv")] == [
        ("alice", "strong-vlm", "4"), ("alice", "weak-vlm", "1"), ("bob", "weak-vlm", "2")]
    # an id-only wide table: no model/condition columns in the output (judgekit agree keys on id alone)
    (tmp_path / "ids.csv").write_text("id,r1,r2\nq1,3,4\nq2,5,\n")
    import_ratings(tmp_path / "ids.csv", tmp_path / "ids_out.csv")
    assert list(_rows(tmp_path / "ids_out.csv")[0])[:4] == ["id", "rater", "criterion", "score"]
    # errors name the file, line and column
    bad = tmp_path / "bad.csv"
    bad.write_text("id,rater,score\nq1,a,4\nq2,a,four\n")
    with pytest.raises(JudgekitError, match=r"bad\.csv:3: field 'score': not a finite number"):
        import_ratings(bad, tmp_path / "x.csv")
    bad.write_text("id,rater,score\nq1,a,4\nq1,a,5\n")
    with pytest.raises(JudgekitError, match=r"bad\.csv:3: field 'score': rater 'a' rated 'overall' of this answer "
                                            r"twice \(first at line 2\)"):
        import_ratings(bad, tmp_path / "x.csv")
    bad.write_text("id,rater,score\nq1,a,9\n")
    with pytest.raises(JudgekitError, match=r"bad\.csv:2: field 'score': '9' is not an integer within the scale 1-5"):
        import_ratings(bad, tmp_path / "x.csv", rubric="robustmad")
    bad.write_text("id,rater,score\nq1,,3\n")
    with pytest.raises(JudgekitError, match=r"bad\.csv:2: field 'rater': required field is missing"):
        import_ratings(bad, tmp_path / "x.csv")
    with pytest.raises(JudgekitError, match=r"no column 'carol'"):
        import_ratings(wide, tmp_path / "x.csv", raters="alice,carol")
    assert not (tmp_path / "x.csv").exists()
    # unratable rows of a long table are left out and counted
    bad.write_text("id,rater,score,unratable\nq1,a,3,0\nq2,a,,1\n")
    assert import_ratings(bad, tmp_path / "x.csv").skipped_unratable == 1


def test_import_argilla_records(tmp_path: Path) -> None:
    records = [
        {"id": "rec-1", "fields": {"question": "q", "answer": "a"},
         "metadata": {"id": "ou-01", "model": "strong-vlm", "condition": "clean"},
         "responses": {"overall": [{"value": 4, "user_id": "u-1"}, {"value": 5, "user_id": "u-2"}],
                       "relevance": [{"value": 3, "user_id": "u-1", "status": "submitted"},
                                     {"value": 1, "user_id": "u-2", "status": "draft"}],
                       "comment": [{"value": "fine", "user_id": "u-1"}]},
         "suggestions": {}, "vectors": {}, "status": "completed"},
        {"id": "rec-2", "fields": {"id": "ou-02"}, "metadata": {"model": "weak-vlm"},
         "responses": {"overall": [{"value": 2, "user_id": "u-1"}]}},
    ]
    src = tmp_path / "argilla.json"
    src.write_text(json.dumps(records))
    s = import_ratings(src, tmp_path / "out.csv")
    assert s.format == "argilla" and s.rows == 4 and s.notes == ["text questions left out: comment"]
    rows = _rows(tmp_path / "out.csv")
    assert [(r["id"], r["model"], r["condition"], r["rater"], r["criterion"], r["score"]) for r in rows] == [
        ("ou-01", "strong-vlm", "clean", "u-1", "overall", "4"),
        ("ou-01", "strong-vlm", "clean", "u-2", "overall", "5"),
        ("ou-01", "strong-vlm", "clean", "u-1", "relevance", "3"), ("ou-02", "weak-vlm", "", "u-1", "overall", "2")]
    records[1]["responses"]["overall"][0].pop("user_id")  # type: ignore[index]
    src.write_text(json.dumps(records))
    with pytest.raises(JudgekitError, match=r"argilla\.json: field '\[1\]\.responses\.overall\[0\]\.user_id'"):
        import_ratings(src, tmp_path / "x.csv")
    src.write_text('[{"id": 1,, }]')
    with pytest.raises(JudgekitError, match=r"argilla\.json:1: malformed JSON"):
        import_ratings(src, tmp_path / "x.csv", fmt="argilla")
    src.write_text('{"a": 1}')
    with pytest.raises(JudgekitError, match="--format"):
        import_ratings(src, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_import_label_studio_errors_name_the_json_path(tmp_path: Path) -> None:
    src = tmp_path / "ls.json"
    src.write_text(json.dumps([{"data": {"id": "q1"}, "annotations": [
        {"completed_by": 1, "result": [{"from_name": "overall", "type": "rating", "value": {}}]}]}]))
    with pytest.raises(JudgekitError, match=r"ls\.json: field '\[0\]\.annotations\[0\]\.result\[0\]\.value'"):
        import_ratings(src, tmp_path / "x.csv")
    src.write_text(json.dumps([{"data": {"text": "no id"}, "annotations": []}]))
    with pytest.raises(JudgekitError, match=r"field '\[0\]\.data\.id'"):
        import_ratings(src, tmp_path / "x.csv", fmt="label-studio")
    src.write_text(json.dumps([{"data": {"id": "q1"}, "annotations": [
        {"completed_by": 1, "result": [{"from_name": "novelty", "type": "rating", "value": {"rating": 3}}]}]}]))
    with pytest.raises(JudgekitError, match="not a rating key of the rubric"):
        import_ratings(src, tmp_path / "x.csv", rubric="robustmad")
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------------------- the command

@pytest.mark.slow
def test_study_command_end_to_end(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results.jsonl")
    study = tmp_path / "study"
    r = jk("study", "create", results, "--rubric", "robustmad", "--responses", RESPONSES, "--raters", "3",
           "--overlap", "2", "--size", "12", "--repeats", "1", "--gold", make_gold(tmp_path / "g"), "--out", study)
    assert r.returncode == 0, r.stderr
    out = flat(r.stdout)
    assert "rater1: http://HOST:PORT/r/" in out and "admin: http://HOST:PORT/a/" in out
    assert "0 pair(s) share none" in out
    assert stat.S_IMODE((study / "links.csv").stat().st_mode) == 0o600
    r = jk("study", "create", "--add-raters", "1", "--out", study)
    assert r.returncode == 0, r.stderr
    assert "rater4: http://HOST:PORT/r/" in flat(r.stdout)
    with StudyStore(study) as store:
        for rater in store.raters():
            for a in store.assignments(rater):
                store.rate(a.slot, rater, dict.fromkeys(store.rating_keys(), 3 + (rater == "rater2")))
    r = jk("study", "export", study, "--out", tmp_path / "ratings.csv", "--label-studio", tmp_path / "ls")
    assert r.returncode == 0, r.stderr
    assert "rater1" in r.stdout and (tmp_path / "ratings_repeats.csv").is_file()
    assert (tmp_path / "ls" / "config.xml").is_file()
    r = jk("agree", "--judge", results, "--human", tmp_path / "ratings.csv", "--rubric", "robustmad",
           "--criterion", "overall", "--boot", "20")
    assert r.returncode == 0, r.stderr
    r = jk("study", "import", tmp_path / "ratings.csv", "--out", tmp_path / "again.csv", "--rubric", "robustmad")
    assert r.returncode == 0, r.stderr
    assert [(x["id"], x["rater"], x["criterion"], x["score"]) for x in _rows(tmp_path / "again.csv")] == [
        (x["id"], x["rater"], x["criterion"], x["score"]) for x in _rows(tmp_path / "ratings.csv")]

    # bad input: exit 2, the file/line or the flag named, no traceback, nothing written
    def refused(*args: str | Path) -> str:
        r = jk(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.startswith(("judgekit: error:", "usage:"))
        return flat(r.stderr)

    new = tmp_path / "new"
    assert "field '--responses': required" in refused("study", "create", results, "--rubric", "robustmad",
                                                      "--out", new, "--raters", "2")
    assert "--overlap" in refused("study", "create", results, "--rubric", "robustmad", "--responses", RESPONSES,
                                  "--out", new, "--raters", "2", "--overlap", "3")
    assert "--size" in refused("study", "create", results, "--rubric", "robustmad", "--responses", RESPONSES,
                               "--out", new, "--raters", "2", "--size", "0")
    broken = tmp_path / "broken.jsonl"
    lines = results.read_text().splitlines()
    first = json.loads(lines[0])
    assert first["status"] == "scored"
    broken.write_text("\n".join([json.dumps({**first, "status": "done"}), *lines[1:]]) + "\n")
    assert f"{broken}:1: field 'status'" in refused("study", "create", broken, "--rubric", "robustmad",
                                                    "--responses", RESPONSES, "--out", new, "--raters", "2")
    assert not new.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".new.tmp")]
    assert "already exists" in refused("study", "create", results, "--rubric", "robustmad", "--responses",
                                       RESPONSES, "--out", study, "--raters", "2")
    assert "no study here" in refused("study", "export", tmp_path / "nowhere", "--out", tmp_path / "n.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,rater,score\nq1,a,4\nq1,b,nan\n")
    assert f"{bad}:3: field 'score'" in refused("study", "import", bad, "--out", tmp_path / "n.csv")
    assert not (tmp_path / "n.csv").exists()


@pytest.mark.slow
def test_study_serve_starts_the_app_on_the_given_port(study: tuple[Path, Path]) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from test_cli_e2e import _env, _judgekit_cmd

    folder, _ = study
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rater_path = next(r["path"] for r in _rows(folder / "links.csv") if r["role"] == "rater")
    proc = subprocess.Popen([*_judgekit_cmd(), "study", "serve", str(folder), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{rater_path}", timeout=5) as resp:
                    page = resp.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.3)
        for model in ("strong-vlm", "medium-vlm", "weak-vlm", "made-up"):
            assert model not in page  # blind: the rater's page names no model and no judge
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
