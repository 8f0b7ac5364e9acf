"""The local judge's combination and calibration (pure functions; no model needed)."""

from __future__ import annotations

import json

import pytest

from judgekit.local.judge import CALIBRATION_PATH, calibrated, combine, interpolate, role_of, to_int


def test_role_of_criterion_names():
    assert role_of("technical_accuracy") == "accuracy"
    assert role_of("correctness") == "accuracy"
    assert role_of("comprehensiveness") == "coverage"
    assert role_of("completeness") == "coverage"
    assert role_of("relevance") == "relevance"
    assert role_of("style_and_clarity") == "style"
    assert role_of("clarity") == "style"
    assert role_of("overall") == "overall"
    assert role_of("something_else") == "overall"


def test_interpolate_is_monotone_and_clamped():
    xs, ys = [0.0, 1.0, 2.0], [1.0, 3.0, 5.0]
    assert interpolate(-5, xs, ys) == 1.0
    assert interpolate(9, xs, ys) == 5.0
    assert interpolate(0.5, xs, ys) == pytest.approx(2.0)
    vals = [interpolate(x / 10, xs, ys) for x in range(-10, 31)]
    assert vals == sorted(vals)


def test_to_int_rounds_half_up_and_clips():
    assert to_int(2.5, 1, 5) == 3
    assert to_int(2.49, 1, 5) == 2
    assert to_int(0.2, 1, 5) == 1
    assert to_int(7.0, 1, 5) == 5


def test_combine_and_calibrated():
    cal = {"standardize": {"a": [1.0, 2.0], "b": [0.0, 1.0]},
           "roles": {"overall": {"weights": {"a": 1.0, "b": 0.5}, "isotonic": {"x": [-1.0, 1.0], "y": [1.0, 5.0]}}}}
    assert combine({"a": 3.0, "b": -1.0}, cal["roles"]["overall"], cal["standardize"]) == pytest.approx(0.5)
    raw, value = calibrated({"a": 3.0, "b": -1.0}, "overall", 1, 5, cal)
    assert raw == pytest.approx(0.5) and value == pytest.approx(4.0)
    _, value10 = calibrated({"a": 3.0, "b": -1.0}, "overall", 0, 10, cal)  # another scale: mapped linearly
    assert value10 == pytest.approx(7.5)


@pytest.mark.skipif(not CALIBRATION_PATH.exists(), reason="no shipped calibration yet")
def test_shipped_calibration_is_valid():
    cal = json.loads(CALIBRATION_PATH.read_text())
    assert set(cal["roles"]) == {"accuracy", "coverage", "relevance", "style", "overall"}
    for role, formula in cal["roles"].items():
        assert formula["weights"], role
        assert all(name in cal["standardize"] for name in formula["weights"])
        xs, ys = formula["isotonic"]["x"], formula["isotonic"]["y"]
        assert xs == sorted(xs) and ys == sorted(ys), role
        assert ys[0] >= 1.0 and ys[-1] <= 5.0


def test_backend_reply_parses_as_a_judge_reply():
    """The local backend's reply goes through the ordinary parser (a stub stands in for the model)."""
    import asyncio

    from judgekit.backends import JudgeSpec
    from judgekit.local.backend import LocalBackend
    from judgekit.parse import parse_reply
    from judgekit.records import Response
    from judgekit.rubric import load_rubric

    rubric = load_rubric("rubrics/robustmad.yaml")

    class Stub:
        def score(self, response, rubric):
            return {"scores": dict.fromkeys(rubric.reply_keys, 3), "values": dict.fromkeys(rubric.reply_keys, 3.2),
                    "raw": {"features": {"f1": 0.5}}, "mode": "likelihood", "model": "default", "seconds": 0.1}

    backend = LocalBackend(JudgeSpec(model="local/default"))
    backend._judge = Stub()
    resp = Response(id="1", model="m", question="q?", reference="r", response="a")
    result = asyncio.run(backend.judge_response(resp, rubric))
    parsed = parse_reply(result.text, rubric)
    assert parsed.scores == dict.fromkeys(rubric.reply_keys, 3)
    assert json.loads(parsed.rationale)["raw"]["features"]["f1"] == 0.5
