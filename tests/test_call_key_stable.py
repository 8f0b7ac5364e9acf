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
from judgekit.judging.store import _file_sha256, call_key, call_keys


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
        key_of = call_keys(judge_identity=spec.identity(), rubric_fingerprint="f" * 64, rubric_version="1.0",
                           prompt_version="1")
        assert key_of(resp, sample) == got


def test_call_key_is_pinned() -> None:
    """A known key: changing what goes into a key (or how it is written) must be a deliberate decision."""
    resp = Response(id="q1", question="Is there a defect?", reference="No.", model="m", response="Yes.")
    got = call_key(response=resp, judge_identity=JudgeSpec(model="openai/judge").identity(),
                   rubric_fingerprint="f" * 64, rubric_version="1.0", prompt_version="1", sample=0)
    assert got == "e00359a3bf0a43e94be0c44f2e0fd382fc9d9675c5f80855b164c5b4b7474155"


_AWKWARD = ["", "plain", "Ünïcödé ✓ \"q\" \\ \n\t\r\b\f\x00\x1f\x7f", "日本語 🙂 \ud7ff\ue000", "</script>\u2028\u2029",
            "\\u0041 \\/ /", "{\"a\": 1}, \"j\": 2", " lead and trail "]


@pytest.mark.parametrize("spec", [
    JudgeSpec(model="openai/judge"),
    JudgeSpec(model="x/\u00e9\"q", temperature=1e-7, seed=None, max_tokens=7,
              extra={"top_p": 0.9, "nan": float("inf"), "z": [1, {"b": 2, "a": None}], "é": "\n"}),
])
def test_call_keys_equal_call_key_on_awkward_text(tmp_path: Path, spec: JudgeSpec) -> None:
    """The run's key maker writes the key text itself: every field, of every shape a record allows (None or
    text, empty or several images, control characters, non-BMP characters, quotes, backslashes, text that
    looks like JSON), gives the key :func:`call_key` gives; so do point clouds and non-text constants, which
    take :func:`call_key` itself."""
    imgs = []
    for i in range(3):
        img = tmp_path / f"i{i}.png"
        img.write_bytes(b"\x89PNG " + bytes([i]))
        imgs.append(str(img))
    cloud = tmp_path / "c.xyz"
    cloud.write_text("0 0 0\n1 1 1\n", encoding="utf-8")
    ident = spec.identity()
    for n, text in enumerate(_AWKWARD):
        other = _AWKWARD[(n + 3) % len(_AWKWARD)] or "x"
        for extra in ({}, {"category": text, "condition": other}, {"images": imgs[:n % 4],
                                                                   "reference_images": imgs[:(n + 1) % 4]},
                      {"point_clouds": [str(cloud)]}):
            resp = Response(id=other, question=other, reference=text, model=other, response=text, **extra)
            for constants in (("f" * 64, "1.0", "1"), (text, other, text)):
                key_of = call_keys(judge_identity=ident, rubric_fingerprint=constants[0],
                                   rubric_version=constants[1], prompt_version=constants[2])
                for sample in (0, 11):
                    expected = call_key(response=resp, judge_identity=ident, rubric_fingerprint=constants[0],
                                        rubric_version=constants[1], prompt_version=constants[2], sample=sample)
                    assert key_of(resp, sample) == expected, (text, extra, constants, sample)
    # a constant that is not text: the generic encoder's spelling, via call_key itself
    resp = Response(id="q", question="q", reference="r", model="m", response="a")
    key_of = call_keys(judge_identity=ident, rubric_fingerprint="f", rubric_version=2, prompt_version="1")  # type: ignore[arg-type]
    assert key_of(resp, 0) == call_key(response=resp, judge_identity=ident, rubric_fingerprint="f",
                                       rubric_version=2, prompt_version="1", sample=0)  # type: ignore[arg-type]
