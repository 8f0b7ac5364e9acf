"""Read-only commands never write their inputs; a file that is not a judgekit store is refused, unchanged
(issue 10, point 8).

``judgekit export`` opens the store through ``file:...?mode=ro``; ``judgekit judge --store`` creates a missing
store (with its folder) and otherwise accepts only a judgekit store, an empty file or an SQLite database
without tables; everything else exits 2 with a message naming the file, before any call.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from scripted_server import ScriptedServer
from test_cli_e2e import flat, jk, judge_args, read_jsonl, write_jsonl

from judgekit.io.errors import JudgekitError
from judgekit.judging.store import Store


def _responses(tmp: Path, n: int = 3) -> Path:
    return write_jsonl(tmp / "responses.jsonl", [
        {"id": f"r{i}", "model": "m", "question": f"[ro-{i}] Is there a defect?", "reference": "A dent.",
         "response": "A dent at the top."} for i in range(n)])


def _unrelated_sqlite(path: Path) -> bytes:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (name TEXT, taken REAL)")
    db.executemany("INSERT INTO photos VALUES (?, ?)", [("a.png", 1.0), ("b.png", 2.0)])
    db.commit()
    db.close()
    return path.read_bytes()


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


@pytest.fixture(scope="module")
def server() -> ScriptedServer:
    with ScriptedServer() as srv:
        yield srv  # type: ignore[misc]


def test_judge_refuses_an_unrelated_sqlite_file_and_leaves_it_byte_identical(tmp_path: Path,
                                                                             server: ScriptedServer) -> None:
    other = tmp_path / "photos.sqlite"
    before = _unrelated_sqlite(other)
    n0 = server.requests
    out = tmp_path / "results.jsonl"
    r = jk(*judge_args(_responses(tmp_path), server, other, out))
    assert r.returncode == 2, r.stderr
    assert "photos.sqlite" in r.stderr and "not a judgekit store" in flat(r.stderr)
    assert "Traceback" not in r.stderr
    assert other.read_bytes() == before and _siblings(other) == ["photos.sqlite"]
    assert not out.exists() and server.requests == n0  # nothing written, no call made


def test_export_refuses_an_unrelated_sqlite_file_and_leaves_it_byte_identical(tmp_path: Path) -> None:
    other = tmp_path / "photos.sqlite"
    before = _unrelated_sqlite(other)
    r = jk("export", other, "--out", tmp_path / "c.jsonl")
    assert r.returncode == 2 and "photos.sqlite" in r.stderr and "not a judgekit store" in flat(r.stderr), r.stderr
    assert other.read_bytes() == before and _siblings(other) == ["photos.sqlite"]
    assert not (tmp_path / "c.jsonl").exists()


def test_export_leaves_an_empty_file_untouched(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    r = jk("export", empty, "--out", tmp_path / "c.jsonl")
    assert r.returncode == 2 and "empty.jsonl" in r.stderr and "empty" in flat(r.stderr), r.stderr
    assert empty.read_bytes() == b"" and _siblings(empty) == ["empty.jsonl"]
    assert not (tmp_path / "c.jsonl").exists()


def test_a_text_file_is_not_a_store_for_export_nor_judge(tmp_path: Path, server: ScriptedServer) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 200)
    before = text.read_bytes()
    for r in (jk("export", text, "--out", tmp_path / "c.jsonl"),
              jk(*judge_args(_responses(tmp_path), server, text, tmp_path / "o.jsonl"))):
        assert r.returncode == 2 and "notes.txt" in r.stderr and "not an SQLite database" in flat(r.stderr), r.stderr
    assert text.read_bytes() == before and _siblings(text) == ["notes.txt"]


def test_a_folder_given_as_store_says_it_is_a_folder(tmp_path: Path, server: ScriptedServer) -> None:
    folder = tmp_path / "stores"
    folder.mkdir()
    for r in (jk("export", folder, "--out", tmp_path / "c.jsonl"),
              jk(*judge_args(_responses(tmp_path), server, folder, tmp_path / "o.jsonl"))):
        assert r.returncode == 2 and "is a folder" in r.stderr and "stores" in r.stderr, r.stderr
    assert list(folder.iterdir()) == []


def test_a_store_path_that_cannot_be_created_is_an_error_before_any_call(tmp_path: Path,
                                                                         server: ScriptedServer) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    n0 = server.requests
    r = jk(*judge_args(_responses(tmp_path), server, blocker / "sub" / "s.sqlite", tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "cannot create" in r.stderr and "file" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and server.requests == n0
    with pytest.raises(JudgekitError, match="cannot create"):
        Store("/proc/judgekit-store.sqlite")  # /proc takes no new files, not even from root


def test_store_in_a_missing_folder_is_created_and_export_of_a_real_store_reads_it_unchanged(
        tmp_path: Path, server: ScriptedServer) -> None:
    store = tmp_path / "new" / "deeper" / "s.sqlite"
    r = jk(*judge_args(_responses(tmp_path), server, store, tmp_path / "o.jsonl"))
    assert r.returncode == 0, r.stderr
    before = store.read_bytes()
    r = jk("export", store, "--out", tmp_path / "calls.jsonl")
    assert r.returncode == 0, r.stderr
    assert len(read_jsonl(tmp_path / "calls.jsonl")) == 3
    assert store.read_bytes() == before
    with Store(store, readonly=True) as ro:
        assert ro.count() == 3
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.release_all()


def test_judge_accepts_an_empty_file_as_a_new_store(tmp_path: Path, server: ScriptedServer) -> None:
    """A 0-byte file (``mktemp``; or the file another run just created) is SQLite's empty database: no data to
    lose, so ``judge`` may make it a store; only ``export`` calls it "not a judgekit store"."""
    store = tmp_path / "s.sqlite"
    store.write_bytes(b"")
    r = jk(*judge_args(_responses(tmp_path), server, store, tmp_path / "o.jsonl"))
    assert r.returncode == 0, r.stderr
    with Store(store, readonly=True) as ro:
        assert ro.count() == 3


def test_readonly_store_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JudgekitError, match="not found"):
        Store(tmp_path / "nope.sqlite", readonly=True)
    assert not (tmp_path / "nope.sqlite").exists()


def test_a_store_of_another_schema_version_is_refused_and_gains_no_table(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET v='99'")
    db.execute("DROP TABLE claims")
    db.commit()
    db.close()
    for readonly in (False, True):
        with pytest.raises(JudgekitError, match="schema 99 is not supported"):
            Store(path, readonly=readonly)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert "claims" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
