"""Issue 10.9: every command, every kind of bad input file: exit 2, the file named, no traceback, nothing written.

Runs ``judgekit.cli.main`` in-process (an exception escaping it fails the test with its traceback)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from judgekit.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD = '{"id": "q1", "model": "m", "question": "Q?", "reference": "R.", "response": "A."}\n'

# name -> writer of a bad file at a path (the path's suffix is the command's)
BAD: dict[str, Callable[[Path], None]] = {
    "malformed_json": lambda p: p.write_text(GOOD + '{"id": "q2", "model": \n', encoding="utf-8"),
    "duplicate_key": lambda p: p.write_text(GOOD.replace('"id": "q1"', '"id": "q1", "id": "q9"'), encoding="utf-8"),
    "nan_token": lambda p: p.write_text(GOOD.replace('"R."', "NaN"), encoding="utf-8"),
    "lone_surrogate": lambda p: p.write_text(GOOD.replace("A.", "\\ud800"), encoding="utf-8"),
    "binary": lambda p: p.write_bytes(os.urandom(256) + b"\xff\xfe\x00"),
    "empty": lambda p: p.write_bytes(b""),
    "folder": lambda p: p.mkdir(),
    "symlink_loop": lambda p: p.symlink_to(p),
    "deep_nesting": lambda p: p.write_text('{"id": "q1", "meta": ' + "[" * 5000 + "]" * 5000 + "}\n",
                                           encoding="utf-8"),
}


def _commands(bad: Path, tmp: Path) -> dict[str, list[str]]:
    """command name -> argv reading ``bad`` (a .jsonl path) where the command reads a file."""
    results = tmp / "results.jsonl"
    return {
        "judge": ["judge", str(bad), "--rubric", "robustmad", "--judge", "openai/x", "--api-base",
                  "http://127.0.0.1:9/v1", "--store", str(tmp / "out" / "s.sqlite"), "--out",
                  str(tmp / "out" / "r.jsonl")],
        "generate": ["generate", str(bad), "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1",
                     "--store", str(tmp / "out" / "s.sqlite"), "--out", str(tmp / "out" / "r.jsonl")],
        "mcq": ["mcq", str(bad), "--json", str(tmp / "out" / "m.json")],
        "perturb": ["perturb", str(bad), "--ops", "jpeg", "--out", str(tmp / "out" / "p")],
        "report": ["report", str(bad), "--json", str(tmp / "out" / "r.json")],
        "agree_judge": ["agree", "--judge", str(bad), "--human", str(results)],
        "agree_human": ["agree", "--judge", str(results), "--human", str(bad)],
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sweep")
    row = ('{"id": "q1", "model": "m", "judge": "j", "status": "scored", "scores": {"a": 4.0}, "overall": 4.0, '
           '"passed": true}\n')
    (d / "results.jsonl").write_text(row, encoding="utf-8")
    return d / "results.jsonl"


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("command", ["judge", "generate", "mcq", "perturb", "report", "agree_judge", "agree_human"])
def test_every_command_refuses_every_bad_file(tmp_path: Path, results: Path, kind: str, command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    BAD[kind](bad)
    (tmp_path / "results.jsonl").write_bytes(results.read_bytes())
    argv = _commands(bad, tmp_path)[command]
    before = sorted(p.name for p in tmp_path.rglob("*") if not p.is_symlink())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.rglob("*") if not p.is_symlink()) == before, "something was written"


@pytest.mark.parametrize("kind", ["malformed_json", "binary", "empty", "folder", "symlink_loop"])
def test_store_and_rubric_readers_refuse_bad_files(tmp_path: Path, kind: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for name, argv in (("bad.sqlite", ["export", "{bad}", "--out", str(tmp_path / "c.jsonl")]),
                       ("bad.yaml", ["rubric", "check", "{bad}"])):
        bad = tmp_path / name
        BAD[kind](bad)
        data = bad.read_bytes() if bad.is_file() and not bad.is_symlink() else None
        assert main([a.replace("{bad}", str(bad)) for a in argv]) == 2, (name, kind)
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err, err
        if data is not None:
            assert bad.read_bytes() == data  # a read-only command never writes its input
        assert not (tmp_path / "c.jsonl").exists()
