"""Hostile and malformed text inputs (rubrics, JSONL, CSV, ratings) and how files are written.

Every bad input must end in a :class:`JudgekitError` naming the file and line (exit 2 from the CLI, no
traceback); every written file must be valid (no NaN/Infinity tokens), get the umask's mode and leave no
temp files behind, not even after a killed writer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_cli_e2e import jk

from judgekit import sample_data
from judgekit.io import dataio
from judgekit.io.dataio import atomic_write_text, read_items, read_judgments, read_responses, write_records
from judgekit.io.errors import JudgekitError
from judgekit.io.ratings import read_ratings
from judgekit.judging.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[1]
LEVELS5 = "{1: a, 2: b, 3: c, 4: d, 5: e}"
GOOD_RUBRIC = f"""\
name: t
version: '1'
criteria:
  - name: accuracy
    description: d
    weight: 2
    levels: {LEVELS5}
overall:
  method: weighted_mean
"""


def error_of(fn: Callable[..., Any], *args: Any, **kw: Any) -> JudgekitError:
    with pytest.raises(JudgekitError) as info:
        fn(*args, **kw)
    return info.value


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- rubrics: aliases, nesting, duplicate keys, non-finite numbers ---------------------------------------

BILLION_LAUGHS = textwrap.dedent("""\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """)


def test_rubric_aliases_are_refused_with_file_and_line(tmp_path: Path) -> None:
    small = write(tmp_path / "r.yaml", GOOD_RUBRIC + "description: &d text\ninstructions: *d\n")
    err = error_of(load_rubric, small)
    assert err.path == str(small) and err.line == 10
    assert "anchors and aliases" in err.message
    alias_only = write(tmp_path / "a.yaml", GOOD_RUBRIC.replace("name: t", "name: *nowhere"))
    err = error_of(load_rubric, alias_only)
    assert err.line == 1 and "anchors and aliases" in err.message


def test_billion_laughs_rubric_is_refused_at_once(tmp_path: Path) -> None:
    bomb = write(tmp_path / "bomb.yaml", BILLION_LAUGHS)
    start = time.perf_counter()
    err = error_of(load_rubric, bomb)
    assert time.perf_counter() - start < 2
    assert err.line == 1 and "anchors and aliases" in err.message
    r = jk("rubric", "check", bomb, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"judgekit: error: {bomb}:1: ")


@pytest.mark.parametrize("text", ["[" * 100_000, "{a: " * 100_000, "".join(" " * i + "k:\n" for i in range(3000)),
                                  "".join(" " * i + "- \n" for i in range(3000))])
def test_deeply_nested_rubric_is_a_clear_error(tmp_path: Path, text: str) -> None:
    deep = write(tmp_path / "deep.yaml", text)
    err = error_of(load_rubric, deep)
    assert err.path == str(deep) and err.line is not None
    assert "nested more than" in err.message


def test_deeply_nested_rubric_cli_exit_2(tmp_path: Path) -> None:
    deep = write(tmp_path / "deep.yaml", "[" * 100_000)
    r = jk("rubric", "check", deep)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    assert f"{deep}:1: " in r.stderr and "nested more than" in r.stderr


def test_rubric_duplicate_keys_name_the_line(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yaml", GOOD_RUBRIC + "name: again\n")
    err = error_of(load_rubric, top)
    assert err.line == 10 and "duplicate key 'name'" in err.message and "line 1" in err.message
    nested = write(tmp_path / "nested.yaml", GOOD_RUBRIC.replace("    weight: 2\n", "    weight: 2\n    weight: 3\n"))
    err = error_of(load_rubric, nested)
    assert err.line == 7 and "duplicate key 'weight'" in err.message
    levels = write(tmp_path / "levels.yaml", GOOD_RUBRIC.replace(LEVELS5, "{1: a, 2: b, 3: c, 4: d, 5: e, 1: f}"))
    err = error_of(load_rubric, levels)
    assert err.line == 7 and "duplicate key 1" in err.message


@pytest.mark.parametrize(("old", "new", "line", "field"), [
    ("weight: 2", "weight: .inf", 6, "criteria.0.weight"),
    ("weight: 2", "weight: .nan", 6, "criteria.0.weight"),
    ("weight: 2", "weight: -.Inf", 6, "criteria.0.weight"),
    ("weight: 2", "weight: 2\n    scale: [1, .inf]", 7, "criteria.0.scale"),
    ("version: '1'", "version: .nan", 2, "version"),
    ("  method: weighted_mean", "  method: weighted_mean\npass: {field: overall, op: '>=', value: .nan}", 10, "pass"),
])
def test_rubric_non_finite_numbers_are_errors(tmp_path: Path, old: str, new: str, line: int, field: str) -> None:
    path = write(tmp_path / "r.yaml", GOOD_RUBRIC.replace(old, new))
    text = str(error_of(load_rubric, path))
    assert f"{path}:{line}: field '{field}" in text and "finite" in text, text


# ---- rubrics by name ------------------------------------------------------------------------------------


def test_shipped_rubrics_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sample_data.shipped_rubrics() == ["forge", "general", "robustmad"]
    assert load_rubric("general").name == "general"
    assert load_rubric(Path("robustmad")).name == load_rubric(ROOT / "rubrics" / "robustmad.yaml").name
    err = error_of(load_rubric, "nosuch")
    assert "no rubric file or shipped rubric named 'nosuch'" in str(err) and "forge, general, robustmad" in str(err)
    err = error_of(load_rubric, "nosuch.yaml")
    assert err.message.startswith("file not found") and "forge, general, robustmad" in err.message


def test_an_existing_file_wins_over_a_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "general", GOOD_RUBRIC)
    assert load_rubric("general").name == "t"


def test_rubric_check_by_name_cli(tmp_path: Path) -> None:
    r = jk("rubric", "check", "general", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "rubric 'general'" in " ".join(r.stdout.split())
    r = jk("rubric", "check", "nosuch", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "shipped rubric named 'nosuch'" in r.stderr and "general, robustmad" in r.stderr


# ---- JSONL: duplicate keys, lone surrogates, NaN/Infinity, nesting -------------------------------------

RESPONSE = {"id": "1", "model": "m", "question": "q?", "reference": "r", "response": "a"}
JUDGMENT = {"id": "1", "model": "m", "judge": "j", "status": "scored", "scores": {"x": 3}, "overall": 3,
            "passed": True}
RATING = {"id": "1", "rater": "ann", "score": 3}
READERS: dict[str, tuple[Callable[[Path], Any], dict[str, Any]]] = {
    "responses": (read_responses, RESPONSE),
    "items": (read_items, {"id": "1", "question": "q?", "reference": "r"}),
    "results": (read_judgments, JUDGMENT),
    "ratings": (read_ratings, RATING),
}


def jsonl_with_bad_second_line(tmp_path: Path, good: dict[str, Any], bad_line: str) -> Path:
    return write(tmp_path / "in.jsonl", json.dumps(good) + "\n" + bad_line + "\n")


@pytest.mark.parametrize("kind", list(READERS))
def test_jsonl_duplicate_key_names_file_line_and_key(tmp_path: Path, kind: str) -> None:
    read, good = READERS[kind]
    bad = json.dumps(good)[:-1] + ', "id": "2"}'
    path = jsonl_with_bad_second_line(tmp_path, good, bad)
    err = error_of(read, path)
    assert (err.path, err.line, err.field) == (str(path), 2, "id")
    assert "duplicate key 'id'" in err.message


def test_jsonl_nested_duplicate_key(tmp_path: Path) -> None:
    path = jsonl_with_bad_second_line(tmp_path, RESPONSE, json.dumps(RESPONSE)[:-1] + ', "meta": {"a": 1, "a": 2}}')
    err = error_of(read_responses, path)
    assert (err.line, err.field) == (2, "meta.a") and "duplicate key 'a'" in err.message


@pytest.mark.parametrize("kind", list(READERS))
@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "x\\ud83d"])
def test_jsonl_lone_surrogate_is_rejected(tmp_path: Path, kind: str, escape: str) -> None:
    read, good = READERS[kind]
    row = dict(good)
    row["id"] = "@"
    bad = json.dumps(row).replace('"@"', f'"{escape}"')
    path = jsonl_with_bad_second_line(tmp_path, good, bad)
    err = error_of(read, path)
    assert (err.path, err.line, err.field) == (str(path), 2, "id")
    assert "lone surrogate" in err.message


def test_jsonl_surrogate_pair_and_nested_lone_surrogate(tmp_path: Path) -> None:
    ok = write(tmp_path / "ok.jsonl", json.dumps({**RESPONSE, "response": "\U0001f600"}) + "\n")  # \ud83d\ude00
    assert "\\ud83d\\ude00" in ok.read_text()
    assert read_responses(ok)[0].response == "\U0001f600"
    nested = json.dumps(RESPONSE)[:-1] + ', "meta": {"k": ["a", "\\udc00"]}}'
    bad = jsonl_with_bad_second_line(tmp_path, RESPONSE, nested)
    err = error_of(read_responses, bad)
    assert (err.line, err.field) == (2, "meta.k.1")
    key = jsonl_with_bad_second_line(tmp_path, RESPONSE, json.dumps(RESPONSE)[:-1] + ', "meta": {"\\ud800": 1}}')
    assert "lone surrogate" in error_of(read_responses, key).message


@pytest.mark.parametrize("kind", list(READERS))
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_jsonl_non_finite_numbers_are_errors(tmp_path: Path, kind: str, token: str) -> None:
    read, good = READERS[kind]
    field = {"responses": "meta", "items": "meta", "results": "overall", "ratings": "score"}[kind]
    row = {**good, field: "@"}
    bad = json.dumps(row).replace('"@"', token)
    path = jsonl_with_bad_second_line(tmp_path, good, bad)
    err = error_of(read, path)
    assert (err.path, err.line) == (str(path), 2)
    assert "not a finite number" in err.message and token.lstrip("-") in err.message


def test_jsonl_nested_too_deeply(tmp_path: Path) -> None:
    for depth in (150, 100_000):
        bad = json.dumps(RESPONSE)[:-1] + ', "meta": {"a": ' + "[" * depth + "]" * depth + "}}"
        path = jsonl_with_bad_second_line(tmp_path, RESPONSE, bad)
        err = error_of(read_responses, path)
        assert err.line == 2 and "nested more than" in err.message
    fine = json.dumps({**RESPONSE, "meta": {"a": [[[[{"b": [1]}]]]]}})
    assert read_responses(write(tmp_path / "ok.jsonl", fine + "\n"))[0].meta["a"][0][0][0][0] == {"b": [1]}


def test_csv_json_cells_are_checked_like_jsonl(tmp_path: Path) -> None:
    head = "id,model,question,reference,response,meta\n"
    for cell, what in (('"{""a"": 1, ""a"": 2}"', "duplicate key 'a'"), ('"{""a"": NaN}"', "not a finite number"),
                       ('"{""a"": ""\\ud800""}"', "lone surrogate")):
        path = write(tmp_path / "r.csv", head + "1,m,q,r,a,{}\n2,m,q,r,a," + cell + "\n")
        err = error_of(read_responses, path)
        assert err.line == 3 and what in err.message, err


def test_cli_judge_refuses_a_lone_surrogate_before_writing(tmp_path: Path) -> None:
    responses = write(tmp_path / "responses.jsonl", json.dumps(RESPONSE).replace('"a"}', '"\\ud800"}') + "\n")
    store = tmp_path / "s.sqlite"
    r = jk("judge", responses, "--rubric", "general", "--judge", "openai/x", "--api-base", "http://127.0.0.1:9",
           "--out", tmp_path / "out.jsonl", "--store", store, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{responses}:1: field 'response': " in r.stderr and "lone surrogate" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["responses.jsonl"]


# ---- CSV: huge fields, duplicate columns --------------------------------------------------------------


def test_csv_field_over_the_default_limit(tmp_path: Path) -> None:
    big = "x" * 300_000
    path = write(tmp_path / "r.csv", f"id,model,question,reference,response\n1,m,q,r,\"{big}\"\n")
    assert read_responses(path)[0].response == big
    ratings = write(tmp_path / "ratings.csv", f"id,rater,score,note\n1,ann,3,\"{big}\"\n")
    got = read_ratings(ratings)
    assert got.values["overall"][("1",)] == {"ann": 3.0} and got.extras[("1",)]["note"] == big
    tsv = write(tmp_path / "ratings.tsv", f"id\tann\tnote\n1\t4\t{big}\n")
    assert read_ratings(tsv, raters=["ann"]).values["overall"][("1",)] == {"ann": 4.0}


def test_csv_reader_errors_name_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    old = csv.field_size_limit()
    monkeypatch.setattr(dataio, "CSV_FIELD_LIMIT", 10)
    try:
        csv.field_size_limit(10)  # a field over even the raised limit: an error with its line, no traceback
        path = write(tmp_path / "r.csv", "id,model,question,reference,response\n1,m,q,r,a\n2,m,q,r," + "x" * 20 + "\n")
        err = error_of(read_responses, path)
        assert err.line == 3 and err.message.startswith("malformed CSV (field larger than field limit")
    finally:
        csv.field_size_limit(old)


def test_csv_duplicate_header_column(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.csv", "id,rater,score,score\n1,ann,3,4\n")
    err = error_of(read_ratings, path)
    assert (err.line, err.field) == (1, "score") and "duplicate column" in err.message
    resp = write(tmp_path / "r.csv", "id,model,question,reference,response,model\n1,m,q,r,a,n\n")
    err = error_of(read_responses, resp)
    assert (err.line, err.field) == (1, "model") and "duplicate column" in err.message


def test_ratings_non_finite_cells_are_errors_not_gaps(tmp_path: Path) -> None:
    wide = write(tmp_path / "wide.csv", "id,ann,bob\n1,3,4\n2,nan,5\n")
    err = error_of(read_ratings, wide)  # before: 'ann' silently stopped being a rater column
    assert (err.line, err.field) == (3, "ann") and "not a finite number: 'nan'" in err.message
    long = write(tmp_path / "long.csv", "id,rater,score\n1,ann,3\n1,bob,-inf\n")
    err = error_of(read_ratings, long)
    assert (err.line, err.field) == (3, "score") and "not a finite number" in err.message
    pq.write_table(pa.table({"id": ["1", "2"], "ann": [3.0, float("nan")]}), tmp_path / "w.parquet")
    err = error_of(read_ratings, tmp_path / "w.parquet")
    assert err.path == f"{tmp_path / 'w.parquet'} (row 2)" and err.field == "ann"
    ok = write(tmp_path / "ok.csv", "id,ann,bob\n1,3,4\n2,,5\n")  # an empty cell: not rated
    assert read_ratings(ok).values["overall"] == {("1",): {"ann": 3.0, "bob": 4.0}, ("2",): {"bob": 5.0}}


def test_parquet_duplicate_column(tmp_path: Path) -> None:
    path = tmp_path / "ratings.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["1"]), pa.array([3]), pa.array([4]), pa.array(["a"])],
                                        names=["id", "score", "score", "rater"]), path)
    err = error_of(read_ratings, path)
    assert err.field == "score" and "duplicate column" in err.message


# ---- writing: no NaN/Infinity, the umask's mode, no stale temp files ----------------------------------


def test_write_records_turns_nan_into_null_and_refuses_infinity(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    write_records(p, [{"a": float("nan"), "b": {"c": [1.0, float("nan")]}}])
    text = p.read_text()
    assert "NaN" not in text and json.loads(text) == {"a": None, "b": {"c": [1.0, None]}}
    c = tmp_path / "r.csv"
    write_records(c, [{"a": float("nan"), "b": 1}])
    assert c.read_text().splitlines() == ["a,b", ",1"]
    p.write_text("old\n")
    with pytest.raises(ValueError, match=r"infinite number in field 'b\.c'"):
        write_records(p, [{"a": 1, "b": {"c": float("-inf")}}])
    assert p.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["r.csv", "r.jsonl"]


def test_atomic_write_json(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    dataio.atomic_write_json(p, {"a": float("nan"), "b": [1.5]})
    assert json.loads(p.read_text()) == {"a": None, "b": [1.5]} and "NaN" not in p.read_text()
    with pytest.raises(ValueError, match="infinite"):
        dataio.atomic_write_json(p, {"a": float("inf")})


@pytest.fixture
def umask022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("name", ["r.jsonl", "r.csv", "r.parquet", "r.md"])
def test_written_files_get_the_umask_mode(tmp_path: Path, umask022: None, name: str) -> None:
    p = tmp_path / name
    for _ in range(2):  # a new file and a replaced one
        if name.endswith(".md"):
            atomic_write_text(p, "text\n")
        else:
            write_records(p, [{"a": 1}])
        assert p.stat().st_mode & 0o777 == 0o644
    os.umask(0o077)
    private = tmp_path / f"private.{name}"
    if name.endswith(".md"):
        atomic_write_text(private, "text\n")
    else:
        write_records(private, [{"a": 1}])
    assert private.stat().st_mode & 0o777 == 0o600


KILLED_WRITER = """
import os, sys
import judgekit.io.dataio as d
d.os.replace = lambda *a: os._exit(9)  # killed after the temp file was written, before the rename
getattr(d, sys.argv[2])(sys.argv[1], *([[{"a": 1}]] if sys.argv[2] == "write_records" else ["text"]))
"""


@pytest.mark.parametrize(("name", "writer"), [("r.jsonl", "write_records"), ("r.parquet", "write_records"),
                                              ("r.md", "atomic_write_text")])
def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path: Path, name: str, writer: str) -> None:
    dest = tmp_path / name
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(dest), writer], capture_output=True,
                            text=True, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert killed.returncode == 9, killed.stderr
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".{name}.") and left[0].endswith(".tmp")
    other = write(tmp_path / f".other{name}.pid999999999.abcdefgh.tmp", "x")  # another destination's temp
    if writer == "write_records":
        write_records(dest, [{"a": 2}])
    else:
        atomic_write_text(dest, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, other.name])  # others' temps stay


def test_stale_temp_rules(tmp_path: Path) -> None:
    dest = tmp_path / "r.jsonl"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live_other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": f".r.jsonl.pid{dead.pid}.k2j3h4g5.tmp",
            "live": f".r.jsonl.pid{live_other.pid}.a1b2c3d4.tmp",
            "mine": f".r.jsonl.pid{os.getpid()}.zzzzzzzz.tmp",
            "old_live": f".r.jsonl.pid{live_other.pid}.oldoldol.tmp",
            "legacy_new": ".r.jsonl.q8w7e6r5.tmp",
            "legacy_old": ".r.jsonl.abcdefgh.tmp",
            "other_dest": f".r.jsonl.5.pid{dead.pid}.k2j3h4g5.tmp",  # a temp of destination 'r.jsonl.5'
            "not_a_temp": f".r.jsonl.pid{dead.pid}.tmp.keep",
        }
        for n in names.values():
            write(tmp_path / n, "partial")
        two_days_ago = time.time() - 2 * 86400
        for key in ("old_live", "legacy_old"):
            os.utime(tmp_path / names[key], (two_days_ago, two_days_ago))
        write_records(dest, [{"a": 1}])
        left = {p.name for p in tmp_path.iterdir()}
        assert left == {"r.jsonl", names["live"], names["mine"], names["legacy_new"], names["other_dest"],
                        names["not_a_temp"]}
    finally:
        live_other.kill()
        live_other.wait()
