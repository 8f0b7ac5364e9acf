"""Unit tests of reading response files and writing result files (judgekit.io.dataio)."""

from __future__ import annotations

import csv
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgekit.io.dataio import read_responses, write_records
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment, Response, SampleResult

BASE = {"id": "q1", "model": "m1", "question": "Is there a defect?", "reference": "No.", "response": "No defect."}


def rec(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def write_jsonl(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _png_1x1() -> bytes:
    """A valid 1x1 grey PNG (image paths are probed: a bare signature is a truncated file)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png_1x1())
    return path


def error_of(path: Path, **kw: Any) -> JudgekitError:
    with pytest.raises(JudgekitError) as info:
        read_responses(path, **kw)
    return info.value


# ---- JSONL --------------------------------------------------------------------------------------------


def test_jsonl_with_all_optional_fields(tmp_path: Path) -> None:
    d = tmp_path / "data"
    touch(d / "img" / "a.png")
    touch(d / "img" / "b.png")
    touch(d / "ref.png")
    p = write_jsonl(d / "responses.jsonl", [
        rec(category="anomaly", condition="blur", images=["img/a.png", "img/b.png"], reference_images=["ref.png"],
            meta={"source": "x", "n": 3, "nested": {"k": [1, 2]}}),
        rec(id="q2", model="m2"),
    ])
    out = read_responses(p)
    assert len(out) == 2
    a, b = out
    assert isinstance(a, Response)
    assert (a.id, a.model, a.category, a.condition) == ("q1", "m1", "anomaly", "blur")
    assert a.question == "Is there a defect?" and a.reference == "No." and a.response == "No defect."
    assert a.images == [str((d / "img" / "a.png").resolve()), str((d / "img" / "b.png").resolve())]
    assert a.reference_images == [str((d / "ref.png").resolve())]
    assert a.meta == {"source": "x", "n": 3, "nested": {"k": [1, 2]}}
    assert a.uid == ("q1", "m1", "blur")
    assert (b.category, b.condition, b.images, b.reference_images, b.meta) == (None, None, [], [], {})
    assert b.uid == ("q2", "m2", "")


def test_images_relative_to_the_file_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "deep" / "er"
    touch(d / "x.png")
    p = write_jsonl(d / "r.jsonl", [rec(images=["x.png"])])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    touch(elsewhere / "x.png")  # a same-named file next to the cwd must not be picked
    monkeypatch.chdir(elsewhere)
    assert read_responses(os.path.relpath(p, elsewhere))[0].images == [str((d / "x.png").resolve())]


def test_absolute_image_path_kept(tmp_path: Path) -> None:
    img = touch(tmp_path / "abs" / "i.png")
    (tmp_path / "sub").mkdir()
    p = write_jsonl(tmp_path / "sub" / "r.jsonl", [rec(images=[str(img)])])
    assert read_responses(p)[0].images == [str(img)]


def test_missing_image_names_file_line_and_field(tmp_path: Path) -> None:
    touch(tmp_path / "ok.png")
    p = write_jsonl(tmp_path / "r.jsonl", [
        rec(id="1", images=["ok.png"]),
        "",
        rec(id="2", images=["ok.png"], reference_images=["ok.png", "missing.png"]),
    ])
    err = error_of(p)
    assert str(err) == f"{p}:3: field 'reference_images': image file not found: missing.png"
    assert (err.line, err.field) == (3, "reference_images")


def test_missing_image_not_checked_when_asked(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(images=["nope.png"])])
    assert read_responses(p, check_images=False)[0].images == [str((tmp_path / "nope.png").resolve())]


def test_malformed_json_line_counts_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text("\n" + json.dumps(rec(id="1")) + "\n\n   \n" + json.dumps(rec(id="2")) + "\n" + '{"id": "3",\n',
                 encoding="utf-8")
    err = error_of(p)
    assert err.line == 6
    assert str(err).startswith(f"{p}:6: malformed JSON (")
    assert "at column 12)" in str(err)  # just past the end of that line, not "column 1" of the next


def test_malformed_json_in_the_middle(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(id="1"), "", "", "{'id': 'single quotes'}", rec(id="3")])
    err = error_of(p)
    assert err.line == 4
    assert "malformed JSON" in str(err)


def test_line_that_is_not_an_object(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(), "[1, 2]"])
    assert str(error_of(p)) == f"{p}:2: each line must be a JSON object"


@pytest.mark.parametrize("field", ["id", "model", "question", "reference", "response"])
def test_missing_required_field_names_field_and_line(tmp_path: Path, field: str) -> None:
    bad = rec(id="2")
    del bad[field]
    p = write_jsonl(tmp_path / "r.jsonl", [rec(id="1"), "", bad])
    err = error_of(p)
    assert str(err) == f"{p}:3: field '{field}': required field is missing"


def test_null_required_field_is_missing(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(response=None)])
    assert str(error_of(p)) == f"{p}:1: field 'response': required field is missing"


def test_unknown_field_and_wrong_types(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(colour="red")])
    assert str(error_of(p)) == f"{p}:1: field 'colour': unknown field (put free data under 'meta')"
    p = write_jsonl(tmp_path / "r.jsonl", [rec(), rec(id="2", images="a.png")])
    err = error_of(p)
    assert (err.line, err.field) == (2, "images")
    p = write_jsonl(tmp_path / "r.jsonl", [rec(question="")])
    assert (error_of(p).line, error_of(p).field) == (1, "question")
    p = write_jsonl(tmp_path / "r.jsonl", [rec(meta=[1])])
    assert error_of(p).field == "meta"


def test_numeric_ids_accepted_as_text(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(id=7), rec(id=8, model="m2")])
    out = read_responses(p)
    assert [r.id for r in out] == ["7", "8"]
    assert all(isinstance(r.id, str) for r in out)


def test_boolean_and_float_ids_rejected(tmp_path: Path) -> None:
    for bad in (True, 1.5):
        p = write_jsonl(tmp_path / "r.jsonl", [rec(id=bad)])
        err = error_of(p)
        assert (err.line, err.field) == (1, "id")


def test_duplicate_response_is_an_error(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(condition="c"), rec(condition="d"), rec(model="m2"),
                                          rec(condition="c", response="other")])
    err = error_of(p)
    assert err.line == 4
    assert "duplicate response: id='q1' model='m1' condition='c' already given at 1" in str(err)


def test_duplicate_with_numeric_and_text_id(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(id=5), rec(id="5")])
    assert "duplicate response" in str(error_of(p))


def test_same_id_other_model_or_condition_is_fine(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "r.jsonl", [rec(), rec(model="m2"), rec(condition="noise")])
    assert [r.uid for r in read_responses(p)] == [("q1", "m1", ""), ("q1", "m2", ""), ("q1", "m1", "noise")]


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty_jsonl(tmp_path: Path, text: str) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(text, encoding="utf-8")
    assert str(error_of(p)) == f"{p}: no records in file"


def test_ndjson_extension_and_bom(tmp_path: Path) -> None:
    p = tmp_path / "r.NDJSON"
    p.write_text("\ufeff" + json.dumps(rec()) + "\n", encoding="utf-8")
    assert read_responses(p)[0].id == "q1"


def test_unknown_extension(tmp_path: Path) -> None:
    p = tmp_path / "r.txt"
    p.write_text(json.dumps(rec()), encoding="utf-8")
    assert str(error_of(p)) == f"{p}: unknown file type '.txt' (use .jsonl, .csv, .tsv or .parquet)"
    q = tmp_path / "noext"
    q.write_text("x", encoding="utf-8")
    assert "unknown file type ''" in str(error_of(q))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert str(error_of(tmp_path / "nope.jsonl")) == f"{tmp_path / 'nope.jsonl'}: file not found"
    d = tmp_path / "dir.jsonl"
    d.mkdir()
    assert "is a folder" in str(error_of(d))


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes(json.dumps(rec()).encode() + b"\n" + b'{"id": "\xff\xfe"}\n')
    assert "not UTF-8 text" in str(error_of(p))


# ---- CSV ----------------------------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


CSV_HEADER = ["id", "model", "question", "reference", "response", "category", "condition", "images",
              "reference_images", "meta"]


def test_csv_with_all_optional_fields(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "r1.png", "r2.png"):
        touch(tmp_path / "imgs" / name)
    p = write_csv(tmp_path / "r.csv", CSV_HEADER, [
        ["1", "m", "q?", "ref", "resp", "cat", "blur", "imgs/a.png|imgs/b.png", '["imgs/r1.png", "imgs/r2.png"]',
         '{"k": 1, "s": "x"}'],
        ["2", "m", "q2?", "", "resp2", "", "", " imgs/a.png | ", "", ""],
        ["3", "m", "q3?", "ref", "resp3", "", "", '["imgs/b.png"]', "imgs/r1.png", ""],
    ])
    a, b, c = read_responses(p)
    img = (tmp_path / "imgs").resolve()
    assert a.images == [str(img / "a.png"), str(img / "b.png")]
    assert a.reference_images == [str(img / "r1.png"), str(img / "r2.png")]
    assert a.meta == {"k": 1, "s": "x"}
    assert (a.category, a.condition) == ("cat", "blur")
    assert (b.category, b.condition, b.meta, b.reference_images) == (None, None, {}, [])
    assert b.reference == ""  # an empty required text is kept, not dropped
    assert b.images == [str(img / "a.png")]
    assert c.images == [str(img / "b.png")] and c.reference_images == [str(img / "r1.png")]


def test_csv_ids_stay_text(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response"],
                  [["007", "m", "q", "r", "a"], ["7", "m", "q", "r", "a"]])
    assert [r.id for r in read_responses(p)] == ["007", "7"]


def test_csv_blank_lines_and_multiline_values_keep_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text(
        "id,model,question,reference,response\n"   # 1
        "1,m,q,r,a\n"                               # 2
        "\n"                                        # 3
        '2,m,"multi\nline\nquestion",r,a\n'         # 4-6
        "\n"                                        # 7
        "3,m,,r,a\n",                               # 8
        encoding="utf-8")
    err = error_of(p)
    assert (err.line, err.field) == (8, "question")
    assert str(err).startswith(f"{p}:8: field 'question': ")


def test_csv_multiline_record_error_at_its_first_line(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text('id,model,question,reference,response,images\n1,m,q,r,a,\n2,m,"two\nlines",r,a,nope.png\n',
                 encoding="utf-8")
    err = error_of(p)
    assert str(err) == f"{p}:3: field 'images': image file not found: nope.png"


def test_csv_missing_image(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response", "images"],
                  [["1", "m", "q", "r", "a", ""], ["2", "m", "q", "r", "a", "x.png|y.png"]])
    assert str(error_of(p)) == f"{p}:3: field 'images': image file not found: x.png"


def test_csv_missing_required_column(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "response"], [["1", "m", "q", "a"]])
    assert str(error_of(p)) == f"{p}:2: field 'reference': required field is missing"


def test_csv_bad_meta_and_bad_list(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response", "meta"],
                  [["1", "m", "q", "r", "a", "{not json"]])
    assert str(error_of(p)) == f"{p}:2: field 'meta': not a valid JSON object"
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response", "meta"],
                  [["1", "m", "q", "r", "a", "[1, 2]"]])
    err = error_of(p)
    assert (err.line, err.field) == (2, "meta")
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response", "images"],
                  [["1", "m", "q", "r", "a", "[a.png"]])
    assert str(error_of(p)) == f"{p}:2: field 'images': not a valid JSON list"


def test_csv_ragged_rows(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("id,model,question,reference,response\n1,m,q,r,a\n2,m,q,r,a,extra\n", encoding="utf-8")
    assert str(error_of(p)) == f"{p}:3: more values than header columns"
    p.write_text("id,model,question,reference,response\n1,m,q,r\n", encoding="utf-8")
    assert str(error_of(p)) == f"{p}:2: fewer values than header columns"


def test_csv_unknown_column(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response", "score"],
                  [["1", "m", "q", "r", "a", "3"]])
    assert str(error_of(p)) == f"{p}:2: field 'score': unknown field (put free data under 'meta')"
    # an empty optional value is left out, so an unknown but empty column passes
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response", "score"],
                  [["1", "m", "q", "r", "a", ""]])
    assert read_responses(p)[0].meta == {}


def test_csv_duplicate(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "r.csv", ["id", "model", "question", "reference", "response"],
                  [["1", "m", "q", "r", "a"], ["1", "m", "q", "r", "b"]])
    err = error_of(p)
    assert err.line == 3
    assert "already given at 2" in str(err)


def test_csv_empty_and_header_only(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("", encoding="utf-8")
    assert str(error_of(p)) == f"{p}:1: empty CSV file (no header row)"
    p.write_text("id,model,question,reference,response\n\n", encoding="utf-8")
    assert str(error_of(p)) == f"{p}: no records in file"


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("\ufeffid,model,question,reference,response\n1,m,q,r,a\n", encoding="utf-8")
    assert read_responses(p)[0].id == "1"


# ---- Parquet ------------------------------------------------------------------------------------------


def test_parquet_with_all_optional_fields(tmp_path: Path) -> None:
    touch(tmp_path / "p" / "a.png")
    touch(tmp_path / "p" / "r.png")
    table = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "model": ["m", "m"],
        "question": ["q1", "q2"],
        "reference": ["r1", "r2"],
        "response": ["a1", "a2"],
        "category": ["c", None],
        "condition": [None, "noise"],
        "images": pa.array([["p/a.png"], []], pa.list_(pa.string())),
        "reference_images": pa.array([["p/r.png"], None], pa.list_(pa.string())),
        "meta": pa.array([{"k": 1}, None], pa.struct([("k", pa.int64())])),
    })
    path = tmp_path / "r.parquet"
    pq.write_table(table, path)
    a, b = read_responses(path)
    assert (a.id, b.id) == ("1", "2")
    assert a.images == [str((tmp_path / "p" / "a.png").resolve())]
    assert a.reference_images == [str((tmp_path / "p" / "r.png").resolve())]
    assert a.meta == {"k": 1}
    assert (a.category, a.condition) == ("c", None)
    assert (b.category, b.condition, b.images, b.reference_images, b.meta) == (None, "noise", [], [], {})


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "r.pq"
    pq.write_table(pa.table({"id": ["1", "2"], "model": ["m", "m"], "question": ["q", "q"],
                             "reference": ["r", "r"], "response": ["a", None]}), path)
    assert str(error_of(path)) == f"{path} (row 2): field 'response': required field is missing"
    pq.write_table(pa.table({"id": ["1"], "model": ["m"], "question": ["q"], "reference": ["r"],
                             "response": ["a"], "images": [["gone.png"]]}), path)
    assert str(error_of(path)) == f"{path} (row 1): field 'images': image file not found: gone.png"


def test_parquet_damaged_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    path.write_bytes(b"not a parquet file")
    assert "cannot read Parquet file" in str(error_of(path))
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), path)
    assert str(error_of(path)) == f"{path}: no records in file"


# ---- write_records ------------------------------------------------------------------------------------


def judgments() -> list[Judgment]:
    return [
        Judgment(id="1", model="m", judge="j", status="unscored", reason="bad reply",
                 samples=[SampleResult(sample=0, status="unscored", reason="bad reply", attempts=2)]),
        Judgment(id="2", model="m", condition="blur", judge="j", status="scored",
                 scores={"relevance": 4.0, "clarity": 3.5}, overall=4.0, passed=True, flags={"ok": True},
                 rationale="fine, \"quoted\", ünïcode\nnew line", cost=0.001),
    ]


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    js = judgments()
    p = tmp_path / "out" / "j.jsonl"
    write_records(p, js)
    back = [Judgment.model_validate_json(line) for line in p.read_text(encoding="utf-8").splitlines()]
    assert back == js
    assert "ünïcode" in p.read_text(encoding="utf-8")  # not escaped


def test_write_jsonl_responses_read_back(tmp_path: Path) -> None:
    touch(tmp_path / "i.png")
    src = write_jsonl(tmp_path / "in.jsonl", [rec(images=["i.png"], meta={"a": {"b": 1}}), rec(id=2)])
    rs = read_responses(src)
    write_records(tmp_path / "copy.jsonl", rs)
    assert read_responses(tmp_path / "copy.jsonl") == rs


def test_write_jsonl_fast_path_keeps_nan_as_null_and_refuses_an_infinity(tmp_path: Path) -> None:
    """pydantic-core writes the lines; a non-finite number (only possible past validation, model_copy) takes the
    careful path: NaN as null, an infinity refused with its field and nothing written. A text that says "NaN"
    stays text."""
    import math

    ok = judgments()[1].model_copy(update={"rationale": "NaN", "reason": "Infinity"})
    p = tmp_path / "j.jsonl"
    write_records(p, [ok, ok.model_copy(update={"spread": {"relevance": math.nan}})])
    first, second = (json.loads(line) for line in p.read_text(encoding="utf-8").splitlines())
    assert first["rationale"] == "NaN" and first["reason"] == "Infinity" and second["spread"] == {"relevance": None}
    assert Judgment.model_validate(first) == ok
    bad = tmp_path / "bad.jsonl"
    with pytest.raises(ValueError, match=r"infinite number in field 'scores\.clarity'"):
        write_records(bad, [ok, ok.model_copy(update={"scores": {"relevance": 4.0, "clarity": -math.inf}})])
    assert not bad.exists() and sorted(os.listdir(tmp_path)) == ["j.jsonl"]


def test_write_jsonl_of_another_pydantic_model_keeps_the_careful_path(tmp_path: Path) -> None:
    """A model without judgekit's ser_json_inf_nan would serialise an infinity as a silent null: it is written
    the careful way."""
    import math

    from pydantic import BaseModel

    class Row(BaseModel):
        x: float

    write_records(tmp_path / "ok.jsonl", [Row(x=1.5), Row(x=math.nan)])
    assert (tmp_path / "ok.jsonl").read_text(encoding="utf-8") == '{"x": 1.5}\n{"x": null}\n'
    with pytest.raises(ValueError, match="infinite number in field 'x'"):
        write_records(tmp_path / "bad.jsonl", [Row(x=math.inf)])


def test_write_csv_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "j.csv"
    write_records(p, judgments())
    with p.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    first, second = rows
    assert {"scores.relevance", "scores.clarity", "flags.ok", "samples", "panel"} <= set(first)
    assert first["status"] == "unscored" and first["scores.relevance"] == ""
    assert second["scores.relevance"] == "4.0" and second["scores.clarity"] == "3.5"
    assert second["passed"] == "True" and second["flags.ok"] == "True"
    assert second["rationale"] == "fine, \"quoted\", ünïcode\nnew line"
    assert json.loads(first["samples"])[0]["attempts"] == 2
    assert json.loads(second["panel"]) == []


def test_write_csv_responses_read_back(tmp_path: Path) -> None:
    touch(tmp_path / "a.png")
    touch(tmp_path / "b.png")
    src = write_jsonl(tmp_path / "in.jsonl", [rec(images=["a.png", "b.png"], condition="c"), rec(id="2")])
    rs = read_responses(src)
    write_records(tmp_path / "copy.csv", rs)
    assert read_responses(tmp_path / "copy.csv") == rs


def test_write_parquet_round_trip_keeps_every_column(tmp_path: Path) -> None:
    p = tmp_path / "j.parquet"
    write_records(p, judgments())  # the first row has no scores: later rows' columns must still be written
    rows = pq.read_table(p).to_pylist()
    assert len(rows) == 2
    assert rows[0]["scores.relevance"] is None
    assert rows[1]["scores.relevance"] == 4.0 and rows[1]["scores.clarity"] == 3.5
    assert rows[1]["flags.ok"] is True and rows[1]["passed"] is True
    assert rows[1]["rationale"] == "fine, \"quoted\", ünïcode\nnew line"
    assert json.loads(rows[0]["samples"])[0]["reason"] == "bad reply"
    assert rows[0]["reason"] == "bad reply" and rows[1]["reason"] is None


def test_write_parquet_dicts_and_pq_extension(tmp_path: Path) -> None:
    p = tmp_path / "x.pq"
    write_records(p, [{"a": 1, "d": {"x": 1, "y": "z"}, "deep": {"k": {"n": 1}}}, {"a": 2, "b": "late"}])
    t = pq.read_table(p)
    assert t.column_names == ["a", "d.x", "d.y", "deep", "b"]
    assert t.to_pylist()[1] == {"a": 2, "d.x": None, "d.y": None, "deep": None, "b": "late"}
    assert json.loads(t.to_pylist()[0]["deep"]) == {"k": {"n": 1}}


def test_write_empty(tmp_path: Path) -> None:
    write_records(tmp_path / "e.jsonl", [])
    assert (tmp_path / "e.jsonl").read_text() == ""
    write_records(tmp_path / "e.parquet", [])
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


def test_write_leaves_no_temp_file_and_replaces(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text("old\n", encoding="utf-8")
    for name in ("r.jsonl", "r.csv", "r.parquet"):
        write_records(tmp_path / name, [{"a": 1}])
    assert sorted(os.listdir(tmp_path)) == ["r.csv", "r.jsonl", "r.parquet"]
    assert p.read_text(encoding="utf-8") == '{"a": 1}\n'


def test_invalid_extension_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new" / "out.xlsx"
    with pytest.raises(JudgekitError) as info:
        write_records(target, [{"a": 1}])
    assert str(info.value) == f"{target}: unknown output type '.xlsx' (use .jsonl, .csv or .parquet)"
    assert not target.parent.exists()
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text("old\n", encoding="utf-8")
    with pytest.raises(TypeError):
        write_records(p, [{"a": 1}, {"b": object()}])
    assert p.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["r.jsonl"]
