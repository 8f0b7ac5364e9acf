"""Reference signals of the local judge (pure Python; no model needed)."""

from __future__ import annotations

import pytest

from judgekit.local.signals import containment, normalize, split_references, token_f1, token_recall


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
