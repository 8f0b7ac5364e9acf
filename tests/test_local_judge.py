"""The local judge's combination and calibration (pure functions; no model needed)."""

from __future__ import annotations

import itertools
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


class _StubJudge:
    """Stands in for LocalJudge (no model): records the batches it is given."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.fail = fail

    def score_many(self, responses, rubric):
        self.batches.append(len(responses))
        if self.fail:
            raise RuntimeError("out of memory")
        return [{"scores": dict.fromkeys(rubric.reply_keys, 3), "values": dict.fromkeys(rubric.reply_keys, 3.2),
                 "raw": {"features": {"f1": 0.5}}, "mode": "likelihood", "model": "default", "seconds": 0.1}
                for _ in responses]


def _backend(stub):
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends.local import LocalBackend

    backend = LocalBackend(JudgeSpec(model="local/default"))
    backend._judge = stub
    return backend


def _responses(n):
    from judgekit.io.records import Response

    return [Response(id=str(i // 3), model=f"m{i % 3}", question="q?", reference="r", response=f"a{i}")
            for i in range(n)]


def test_backend_reply_parses_as_a_judge_reply():
    """The local backend's reply goes through the ordinary parser."""
    import asyncio

    from judgekit.judging.parse import parse_reply
    from judgekit.judging.rubric import load_rubric

    rubric = load_rubric("rubrics/robustmad.yaml")
    backend = _backend(_StubJudge())
    result = asyncio.run(backend.judge_response(_responses(1)[0], rubric))
    parsed = parse_reply(result.text, rubric)
    assert parsed.scores == dict.fromkeys(rubric.reply_keys, 3)
    assert json.loads(parsed.rationale)["raw"]["features"]["f1"] == 0.5
    assert result.cost == 0.0 and result.latency_s == pytest.approx(0.1)


def test_backend_batches_concurrent_judgments():
    """Judgments in flight together are scored in one score_many call (answers to one item share a prefix)."""
    import asyncio

    from judgekit.judging.rubric import load_rubric

    rubric = load_rubric("rubrics/robustmad.yaml")
    stub = _StubJudge()
    backend = _backend(stub)

    async def main():
        return await asyncio.gather(*(backend.judge_response(r, rubric) for r in _responses(10)))

    results = asyncio.run(main())
    assert len(results) == 10 and stub.batches == [10]


def test_backend_error_fails_every_judgment_of_the_batch():
    import asyncio

    from judgekit.judging.backends import PermanentError
    from judgekit.judging.rubric import load_rubric

    rubric = load_rubric("rubrics/robustmad.yaml")
    backend = _backend(_StubJudge(fail=True))

    async def main():
        return await asyncio.gather(*(backend.judge_response(r, rubric) for r in _responses(4)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, PermanentError) and "out of memory" in str(r) for r in results)


def test_runner_uses_judge_response_and_stores_each_judgment(tmp_path):
    """The runner calls judge_response (no chat messages), stores every judgment, and a re-run repays none."""
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends import local as local_backend
    from judgekit.judging.rubric import load_rubric
    from judgekit.judging.runner import Runner, RunOptions
    from judgekit.judging.store import Store

    rubric = load_rubric("rubrics/robustmad.yaml")
    stub = _StubJudge()
    made = []

    def fake_make_backend(spec, *, concurrency):
        made.append(spec.model)
        return _backend(stub)

    import judgekit.judging.runner as runner_mod

    orig = runner_mod.make_backend
    runner_mod.make_backend = fake_make_backend
    try:
        spec = JudgeSpec(model="local/default", extra=local_backend.local_extra("likelihood"))
        with Store(tmp_path / "s.sqlite") as store:
            first = Runner(_responses(9), rubric, [spec], store, RunOptions(concurrency=8)).run_sync()
            again = Runner(_responses(9), rubric, [spec], store, RunOptions(concurrency=8)).run_sync()
    finally:
        runner_mod.make_backend = orig
    assert first.calls_made == 9 and all(j.status == "scored" for j in first.judgments)
    assert sum(stub.batches) == 9 and max(stub.batches) == 8  # concurrency 8: at most 8 in one batch
    assert again.calls_made == 0 and again.calls_cached == 9
    assert [j.scores for j in again.judgments] == [j.scores for j in first.judgments]


def test_local_extra_hashes_the_calibration(tmp_path):
    from judgekit.io.errors import JudgekitError
    from judgekit.judging.backends.local import local_extra

    shipped = local_extra("likelihood")
    assert shipped["local_mode"] == "likelihood" and len(shipped["calibration_sha"]) == 16
    assert "calibration" not in shipped
    other = tmp_path / "cal.json"
    other.write_text(CALIBRATION_PATH.read_text().replace('"version"', '"version_"', 1))
    custom = local_extra("likelihood", other)
    assert custom["calibration"] == str(other) and custom["calibration_sha"] != shipped["calibration_sha"]
    assert local_extra("rate") == {"local_mode": "rate"}
    with pytest.raises(JudgekitError, match="not found"):
        local_extra("likelihood", tmp_path / "missing.json")


def test_bucket_bounds_padding_and_shapes():
    from judgekit.local.models import bucket

    sizes = [bucket(n) for n in range(1, 1025)]
    assert all(b >= n for n, b in zip(range(1, 1025), sizes, strict=True))
    assert all(b <= max(16, 1.25 * n) for n, b in zip(range(1, 1025), sizes, strict=True))  # <= 25 % padding past 16
    assert len(set(sizes)) <= 30
    assert sizes == sorted(sizes)


def test_shipped_calibration_maps_are_strictly_increasing_inside_their_range():
    """One breakpoint per isotonic block: the calibrated value keeps the raw score's ranking."""
    cal = json.loads(CALIBRATION_PATH.read_text())
    for role, formula in cal["roles"].items():
        xs, ys = formula["isotonic"]["x"], formula["isotonic"]["y"]
        assert all(b > a for a, b in itertools.pairwise(xs)), role
        assert all(b >= a for a, b in itertools.pairwise(ys)), role
        assert len(set(ys)) >= len(ys) - 2, role  # only the two end points repeat their block's value


def test_contradiction_gate_caps_and_never_raises():
    from judgekit.local.judge import contradiction_cap, contradiction_evidence

    gate = {"terms": {"polarity": {"scale": 10.0, "offset": -0.05}}, "roles": ["accuracy", "overall"]}
    assert contradiction_evidence({"polarity": 0.0}, gate) == 0.0
    assert contradiction_evidence({"polarity": -0.04}, gate) == 0.0  # under the threshold: word-level noise
    assert contradiction_evidence({"polarity": -0.1}, gate) == pytest.approx(0.5)
    assert contradiction_evidence({"polarity": -0.9}, gate) == 1.0  # clipped
    assert contradiction_evidence({}, gate) == 0.0  # a missing feature is no evidence
    cal = {"standardize": {"a": [0.0, 1.0]}, "contradiction": gate,
           "roles": {r: {"weights": {"a": 1.0}, "isotonic": {"x": [-1.0, 1.0], "y": [1.0, 5.0]}}
                     for r in ("accuracy", "overall", "style")}}
    assert contradiction_cap({"polarity": -0.1}, "accuracy", 1, 5, cal) == pytest.approx(3.0)
    assert contradiction_cap({"polarity": -0.1}, "style", 1, 5, cal) is None  # not a gated role
    assert calibrated({"a": 1.0, "polarity": -1.0}, "overall", 1, 5, cal)[1] == 1.0
    assert calibrated({"a": 1.0, "polarity": -1.0}, "style", 1, 5, cal)[1] == 5.0
    assert calibrated({"a": -1.0, "polarity": -0.1}, "overall", 1, 5, cal)[1] == 1.0  # below the cap: as is
    assert calibrated({"a": 1.0, "polarity": -0.1}, "overall", 0, 10, cal)[1] == pytest.approx(5.0)
