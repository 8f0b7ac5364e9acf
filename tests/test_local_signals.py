"""Reference signals of the local judge (pure Python; no model needed)."""

from __future__ import annotations

import pytest

from judgekit.local.features import counterfactual_references
from judgekit.local.signals import (
    containment,
    mirror_places,
    negate_text,
    normalize,
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
