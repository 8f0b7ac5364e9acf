"""Reference signals of the local judge (pure Python; no model needed)."""

from __future__ import annotations

import pytest

from judgekit.local.features import counterfactual_references
from judgekit.local.signals import (
    containment,
    defect_kinds,
    kind_conflict,
    mirror_places,
    negate_text,
    normalize,
    place_conflict,
    place_slots,
    polarity_mismatch,
    sentences,
    split_references,
    token_f1,
    token_recall,
)


def test_normalize_squad_style():
    assert normalize("The  Eiffel Tower, in Paris!") == "eiffel tower in paris"
    assert normalize("An apple a day") == "apple day"


def test_token_f1_known_values():
    assert token_f1("Paris", "Paris") == 1.0
    assert token_f1("the city of Paris", "Paris") == pytest.approx(0.5)  # p=1/3, r=1 -> 0.5
    assert token_f1("London", "Paris") == 0.0
    # max over several gold answers
    assert token_f1("washington metropolitan area", ["FedExField in Landover, Maryland",
                                                     "the Washington metropolitan area"]) == 1.0
    # 3 of 4 tokens shared each way: p = r = 3/4
    assert token_f1("landover maryland fedexfield stadium", "FedExField in Landover Maryland") == pytest.approx(
        2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4))


def test_token_f1_empty():
    assert token_f1("", "Paris") == 0.0
    assert token_f1("", "") == 1.0


def test_containment():
    assert containment("The Redskins play in Landover, Maryland.", ["Landover, Maryland", "DC"]) == 1.0
    assert containment("They play in Maryland.", ["Landover, Maryland"]) == 0.0
    # word boundaries: "10" is not contained in "100"
    assert containment("about 100 people", "10") == 0.0
    assert containment("about 10 people", "10") == 1.0


def test_token_recall():
    assert token_recall("Landover", "Landover, Maryland") == pytest.approx(0.5)


def test_split_references():
    assert split_references("a | b") == ["a", "b"]
    assert split_references("just one") == ["just one"]
    assert split_references("x", {"references": ["p", "q"]}) == ["p", "q"]


def test_sentences_keep_summeval_style_breaks():
    assert sentences("One. Two! Three?") == ["One.", "Two!", "Three?"]
    assert sentences("paul merson was brought on . he scored .") == ["paul merson was brought on", "he scored ."]


def test_negate_text_flips_every_sentence():
    assert negate_text("Yes, there is a scratch at the left.") == "No, there is a scratch at the left."
    assert negate_text("There is no gear and no crack. The nut is intact.") == (
        "There is a gear and a crack. The nut is not intact.")
    assert negate_text("No, the nut has no defects.") == "Yes, the nut has a defects."
    assert negate_text("he will take charge . it was late .") == "he will not take charge . it was not late ."
    assert negate_text("Paris") == "It is not true that Paris"


def test_mirror_places():
    assert mirror_places("A scratch at the top-left, running from upper left to lower right.") == (
        "A scratch at the bottom-right, running from lower right to upper left.")
    assert mirror_places("Left of the hole") == "Right of the hole"
    assert mirror_places("a round hole in the middle") is None


def test_counterfactual_references_per_gold_answer():
    assert counterfactual_references("Paris | the city of Paris") == [
        "It is not true that Paris | It is not true that the city of Paris"]
    negated, mirrored = counterfactual_references("Yes, a dent at the bottom.")
    assert negated == "No, a dent at the bottom." and mirrored == "Yes, a dent at the top."


def test_polarity_mismatch():
    ref = "Yes, there is a thin bright scratch on the metal nut's surface at the left."
    assert polarity_mismatch("No, the metal nut looks normal and has no defects.", ref) > 0.1
    assert polarity_mismatch("Yes, a thin scratch on the nut's surface at the left.", ref) == 0.0
    absent = "There is no gear and no crack in the image. It shows a metal nut."
    assert polarity_mismatch("Yes, the crack on the gear tooth is at the top-left.", absent) > 0.3
    assert polarity_mismatch("There is no gear here; it is a metal nut.", absent) == 0.0
    assert polarity_mismatch("", ref) == 0.0 and polarity_mismatch("nothing in common", []) == 0.0


def test_place_slots_and_conflict():
    assert place_slots("A scratch at the top-left of the nut.") == {"h": {"L"}, "v": {"T"}}
    assert place_slots("a dent on its left side") == {"h": {"L"}, "v": set()}
    # an extent is a direction, not a place; a negated place is no claim; "right" as "correct" is no place
    assert place_slots("running diagonally from upper left to lower right") == {"h": set(), "v": set()}
    assert place_slots("The scratch is not at the left.") == {"h": set(), "v": set()}
    assert place_slots("That is the right answer.") == {"h": set(), "v": set()}
    assert place_slots("missing at the center of the shaft") == {"h": {"C"}, "v": {"C"}}
    ref = "Yes, a thin bright scratch at the left, running diagonally from upper left to lower right."
    assert place_conflict("Yes, a scratch at the right, running from upper right to lower right.", ref) == 1.0
    assert place_conflict("A scratch on the left side of the nut.", ref) == 0.0
    assert place_conflict("A scratch near the top.", ref) == 0.0  # no axis named on both sides
    assert place_conflict("A dent at the top-left.", "A dent at the top-right corner.") == 0.5
    assert place_conflict("A hole at the top-left.", "A hole at the center.") == 1.0
    assert place_conflict("at the left", ["at the right", "on the left edge"]) == 0.0  # the best gold answer
    assert place_conflict("", ref) == 0.0 and place_conflict("at the left", []) == 0.0


def test_defect_kinds_and_conflict():
    assert defect_kinds("A thin scratch and some rust.") == {"scratch", "rust"}
    assert defect_kinds("There is no scratch; the nut is dented.") == {"dent"}  # negated: not claimed
    assert defect_kinds("between the center hole and the edge") == set()  # a part, not a defect
    assert defect_kinds("Strands are missing, leaving a hole.") == {"missing"}  # synonyms: one kind
    ref = "Yes, there is a thin bright scratch on the metal nut's surface at the left."
    assert kind_conflict("Yes, there is a dent on the nut's surface, a dark round depression.", ref) == 1.0
    assert kind_conflict("Yes, a scraped line on the left.", ref) == 0.0  # a synonym
    assert kind_conflict("Yes, a scratch and a dent.", ref) == 0.0  # shares one kind
    assert kind_conflict("Yes, something is wrong at the left.", ref) == 0.0  # names no kind
    assert kind_conflict("A dent.", "No, the nut has no defect.") == 0.0  # the reference names none
    assert kind_conflict("A dent.", ["a scratch", "a dent or a scratch"]) == 0.0


def test_the_shipped_gate_leaves_every_dev_set_score_as_it_is():
    """The contradiction gate's terms are pure text, so whether it touches a dev-set row can be checked without
    the model: no NQ answer carries evidence (polarity within its threshold, no place or kind conflict), and
    every SummEval reference (an article) is longer than the gate's word limit. So the cross-validated dev
    figures in validation_default.json hold with the gate as they did without it."""
    from judgekit.local.judge import contradiction_evidence, load_calibration
    from judgekit.local.validate import load_nq, load_summeval, nq_golds

    gate = load_calibration()["contradiction"]
    assert {"polarity", "place", "kind"} <= set(gate["terms"])
    for r in load_nq():
        golds = nq_golds(r)
        a = r["model_answer"]
        feats = {"polarity": -polarity_mismatch(a, golds), "place": -place_conflict(a, golds),
                 "kind": -kind_conflict(a, golds), "ref_words": float(max(len(g.split()) for g in golds))}
        assert contradiction_evidence(feats, gate) == 0.0, (r["qid"], a, golds)
    assert min(len(r["article"].split()) for r in load_summeval()) > gate["max_reference_words"]
