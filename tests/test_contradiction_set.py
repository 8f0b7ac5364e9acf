"""The shipped contradiction set is what bench/build_contradictions.py builds (deterministic; no model)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _builder():  # bench/ is not a package
    spec = importlib.util.spec_from_file_location("build_contradictions", ROOT / "bench" / "build_contradictions.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_set_matches_the_builder():
    mod = _builder()
    built = mod.build()
    shipped = [json.loads(line) for line in mod.OUT.read_text().splitlines()]
    assert built == shipped
    labels = [r["label"] for r in built]
    assert labels.count("contradiction") == 124 and labels.count("correct") == 50
    assert {r["source"] for r in built} == {"sample", "nq", "summeval"}


def test_builder_helpers():
    mod = _builder()
    assert mod.swap_location("a scratch at the top-left of the top", "top-left") == (
        "a scratch at the bottom-right of the top")
    assert mod.swap_location("nothing here", "left") is None
    assert mod.negate_summary("he was here . she is there .") == "he was not here . she is there ."
    assert mod.negate_summary("great goal by smith") == "it is not true that great goal by smith"
    assert mod._shift("in 1995") == "in 2002" and mod._shift("7 times") == "10 times" and mod._shift("Paris") is None
