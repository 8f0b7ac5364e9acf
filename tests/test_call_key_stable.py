"""The store key must never change for the same call (stored judgments would silently be re-made): the
fast encoder in :func:`judgekit.judging.store.call_key` must give exactly ``json.dumps(doc, sort_keys=True,
ensure_ascii=False)`` of the documented key document."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from judgekit.io.records import Response
from judgekit.judging.backends import JudgeSpec
from judgekit.judging.store import _file_sha256, call_key


def _reference_key(response: Response, ident: dict[str, Any], fp: str, rv: str, pv: str, sample: int) -> str:
    doc = {
        "p": pv, "r": fp, "rv": rv, "j": ident, "id": response.id, "q": response.question,
        "ref": response.reference, "cat": response.category, "cond": response.condition, "m": response.model,
        "a": response.response, "img": [_file_sha256(p) for p in response.images],
        "rimg": [_file_sha256(p) for p in response.reference_images], "s": sample,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@pytest.mark.parametrize("fields", [
    {},
    {"category": "anomaly", "condition": "blur"},
    {"response": "Ünïcödé ✓ \"quoted\" \\ back\nslash\t日本語 🙂", "question": "</script> \u2028"},
])
@pytest.mark.parametrize("spec", [
    JudgeSpec(model="openai/judge"),
    JudgeSpec(model="anthropic/x", temperature=0.7, seed=None, extra={"top_p": 0.9, "z": [1, {"b": 2, "a": None}]}),
])
def test_call_key_matches_the_documented_serialisation(tmp_path: Path, fields: dict[str, Any],
                                                       spec: JudgeSpec) -> None:
    img = tmp_path / "a.png"
    img.write_bytes(b"\x89PNG fake")
    data: dict[str, Any] = {"id": "q1", "question": "Is there a defect?", "reference": "No.", "model": "m",
                            "response": "Yes.", "images": [str(img)]}
    resp = Response(**{**data, **fields})
    for sample in (0, 3):
        got = call_key(response=resp, judge_identity=spec.identity(), rubric_fingerprint="f" * 64,
                       rubric_version="1.0", prompt_version="1", sample=sample)
        assert got == _reference_key(resp, spec.identity(), "f" * 64, "1.0", "1", sample)


def test_call_key_is_pinned() -> None:
    """A known key: changing what goes into a key (or how it is written) must be a deliberate decision."""
    resp = Response(id="q1", question="Is there a defect?", reference="No.", model="m", response="Yes.")
    got = call_key(response=resp, judge_identity=JudgeSpec(model="openai/judge").identity(),
                   rubric_fingerprint="f" * 64, rubric_version="1.0", prompt_version="1", sample=0)
    assert got == "e00359a3bf0a43e94be0c44f2e0fd382fc9d9675c5f80855b164c5b4b7474155"
