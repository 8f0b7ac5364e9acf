"""Unit tests of multiple-choice scoring (judgekit.generation.mcq): letter extraction, accuracy, balanced accuracy,
MMAD's two-level averages, grouping and output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from judgekit.generation.mcq import (
    MMAD_SUBTASK_ALIASES,
    MCQReport,
    extract_choice,
    mcq_markdown,
    print_mcq_report,
    score_mcq,
)
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response

YN = ["Yes", "No"]
FOUR = ["Scratch", "Dent", "Crack", "Contamination"]
FIVE = ["Scratch", "Dent", "Crack", "Contamination", "None of these"]


def resp(i: Any, reference: str, response: str, *, options: list[str] | None = None, model: str = "m",
         condition: str | None = None, dataset: str | None = "D", category: str | None = "Defect Classification",
         ) -> Response:
    return Response(id=str(i), question="q?", reference=reference, options=FOUR if options is None else options,
                    model=model, condition=condition, dataset=dataset, category=category, response=response)


# --------------------------------------------------------------------------------------------------------------
# extract_choice
# --------------------------------------------------------------------------------------------------------------

ACCEPTED = [
    # the whole answer is a letter
    ("B", YN, "B"),
    ("B.", YN, "B"),
    ("B)", YN, "B"),
    ("(B)", YN, "B"),
    ("[B]", YN, "B"),
    ("**B**", YN, "B"),
    ("  b  ", YN, "B"),
    ("b", YN, "B"),
    ("(a)", YN, "A"),
    ("'C'", FOUR, "C"),
    # a leading letter, with or without the option text
    ("B: No", YN, "B"),
    ("B. No", YN, "B"),
    ("B) No", YN, "B"),
    ("(B) No", YN, "B"),
    ("B No", YN, "B"),
    ("A Yes", YN, "A"),
    ("A. Yes", YN, "A"),
    ("b) No", YN, "B"),
    ("C. The crack runs along the top-left edge.", FOUR, "C"),
    ("B because no defect is visible", YN, "B"),
    # explicit markers
    ("Answer: B", YN, "B"),
    ("ANSWER: A", YN, "A"),
    ("ANSWER IS A", YN, "A"),
    ("The answer is B", YN, "B"),
    ("The answer is: **A**", YN, "A"),
    ("answer is (C)", FOUR, "C"),
    ("The correct answer is option D.", FOUR, "D"),
    ("Final Answer: (B) No", YN, "B"),
    ("answer: b.", YN, "B"),
    ("Answer: a", YN, "A"),
    ("Option D", FOUR, "D"),
    ("The correct option is C", FOUR, "C"),
    ("My choice: B", YN, "B"),
    ("I choose C", FOUR, "C"),
    ("I'd go with option C", FOUR, "C"),
    ("I would select B.", FOUR, "B"),
    ("\\boxed{C}", FOUR, "C"),
    ("<answer>B</answer>", YN, "B"),
    ("<answer> b </answer>", YN, "B"),
    ("<think>Could be A or B. The scratch is faint.</think>B", YN, "B"),
    ("B is correct", YN, "B"),
    ("A is the correct answer.", YN, "A"),
    ("The image shows a scratch, so the answer is A.", YN, "A"),
    ("Looking at it, I think it's B", YN, "B"),
    ("Answer: I think it is B", YN, "B"),
    ("Answer: A, a crack is visible", YN, "A"),
    # markers win over other letters
    ("Options A and B are wrong, the answer is C.", FOUR, "C"),
    ("The correct answer is B, not A", YN, "B"),
    ("Answer: B (not A)", YN, "B"),
    ("Answer: B\n\nExplanation: option A would mean a defect is visible.", YN, "B"),
    ("Option D is wrong, B is correct", FOUR, "B"),
    ("B. No. The answer is not A", YN, "B"),
    # a single standalone letter in running text
    ("Looking closely, I can see a defect. A", YN, "A"),
    ("It's A.", YN, "A"),
    ("There is a C-shaped crack, so C", FOUR, "C"),
    # option text when no letter appears
    ("Yes", YN, "A"),
    ("yes, there is a defect on the left.", YN, "A"),
    ("No.", YN, "B"),
    ("Not sure", ["No", "Not sure"], "B"),
    ("No", ["No", "Not sure"], "A"),
    ("scratch and dent", ["Scratch", "Scratch and dent"], "B"),
    ("It is a scratch.", ["Scratch", "Scratch and dent"], "A"),
    ("a crack", FOUR, "C"),
    ("A crack is visible on the left", FOUR, "C"),  # "A" is the article; the text names option C
    ("A scratch is visible", ["Dent", "Scratch"], "B"),
    ("A scratch is visible", ["Scratch", "Dent"], "A"),  # "A" + the first word of option A's text
    ("None of these", FIVE, "E"),
    ("contamination!", FOUR, "D"),
]

REJECTED = [
    # the article and the pronoun are not answers
    ("A crack is visible on the left", YN),
    ("A CRACK IS VISIBLE", YN),
    ("the answer is a crack", YN),
    ("Answer: A crack", YN),
    ("I cannot determine this from the image.", YN),
    ("I think so", YN),
    # letters inside words
    ("THE ANSWER: NONE", YN),
    ("THE ANSWER: NONE", FOUR),
    ("THE ANSWER: NONE", FIVE),  # "none" is not the whole text of "None of these"
    # letters beyond the options
    ("E", FOUR),
    ("e", FOUR),
    ("C", YN),
    ("Answer: E", FOUR),
    ("The answer is C", YN),
    ("I", FOUR),
    # two letters as answers
    ("A or B", YN),
    ("A/B", YN),
    ("either A or B", YN),
    ("Answer: A or B", YN),
    ("A, B", FOUR),
    ("Not A, it is B", YN),
    ("Not A", YN),
    ("not option A", YN),
    ("Neither A nor B", FOUR),
    ("Answer: A. Wait, actually the answer is B.", YN),
    ("A. Yes\nB. No", YN),
    # option text: none or several
    ("no, not sure", ["No", "Not sure"]),
    ("Yes. No, wait.", YN),
    ("scratch or dent", FOUR),
    ("maybe", YN),
    ("Same", ["Same", "same"]),
    ("", YN),
    ("   ", YN),
    ("<think>B</think>", YN),
]


@pytest.mark.parametrize(("text", "options", "expected"), ACCEPTED)
def test_extract_choice_reads_the_answer(text: str, options: list[str], expected: str) -> None:
    assert extract_choice(text, options) == expected


@pytest.mark.parametrize(("text", "options"), REJECTED)
def test_extract_choice_never_guesses(text: str, options: list[str]) -> None:
    assert extract_choice(text, options) is None


def test_trap_article_with_yes_no_is_not_letter_a() -> None:
    # MMAD's own extraction takes the last standalone capital letter: "A" here.
    assert extract_choice("A crack is visible on the left", YN) != "A"
    assert extract_choice("THE ANSWER: NONE", FIVE) != "E"


def test_no_options_means_no_letter() -> None:
    assert extract_choice("A", []) is None


def test_letters_follow_the_option_count() -> None:
    options = [f"opt {i}" for i in range(10)]
    assert extract_choice("J", options) == "J"
    assert extract_choice("K", options) is None
    assert extract_choice("Answer: I", options) == "I"


# --------------------------------------------------------------------------------------------------------------
# score_mcq: accuracy and unparsable answers
# --------------------------------------------------------------------------------------------------------------


def test_accuracy_counts_unparsable_as_wrong() -> None:
    rows = [resp(1, "A", "A"), resp(2, "A", "B"), resp(3, "C", "hmm, hard to say"), resp(4, "c", "C."),
            resp(5, " d ", "Answer: D")]
    report = score_mcq(rows)
    (g,) = report.groups
    (cell,) = g.subtasks
    assert (cell.n, cell.correct, cell.unparsable) == (5, 3, 1)
    assert cell.accuracy == pytest.approx(0.6)
    assert cell.unparsable_rate == pytest.approx(0.2)
    assert cell.balanced is False and cell.balanced_accuracy is None and cell.classes == []
    assert cell.score == pytest.approx(0.6)
    assert (g.n, g.correct, g.unparsable) == (5, 3, 1)
    assert g.accuracy == pytest.approx(0.6)
    assert g.unparsable_rate == pytest.approx(0.2)
    assert g.mmad_average == pytest.approx(0.6)
    chosen = {o.id: (o.chosen, o.correct, o.reference) for o in report.outcomes}
    assert chosen == {"1": ("A", True, "A"), "2": ("B", False, "A"), "3": (None, False, "C"),
                      "4": ("C", True, "C"), "5": ("D", True, "D")}


def anomaly_rows(answers_anomalous: list[str], answers_normal: list[str], **kw: Any) -> list[Response]:
    rows = [resp(f"a{i}", "A", a, options=YN, category="Anomaly Discrimination", **kw)
            for i, a in enumerate(answers_anomalous)]
    rows += [resp(f"n{i}", "B", a, options=YN, category="Anomaly Discrimination", **kw)
             for i, a in enumerate(answers_normal)]
    return rows


def test_balanced_accuracy_on_imbalanced_classes() -> None:
    # 8 anomalous (correct "Yes" = A): 6 right, 1 wrong, 1 unparsable -> 6/8 = 0.75
    # 2 normal (correct "No" = B): 1 right, 1 wrong -> 1/2 = 0.5
    # plain accuracy 7/10 = 0.7; balanced (0.75 + 0.5) / 2 = 0.625
    rows = anomaly_rows(["A"] * 6 + ["B", "I can't tell"], ["B", "Yes"])
    (g,) = score_mcq(rows).groups
    (cell,) = g.subtasks
    assert (cell.n, cell.correct, cell.unparsable) == (10, 7, 1)
    assert cell.accuracy == pytest.approx(0.7)
    assert cell.balanced is True
    assert {c.label: (c.n, c.correct, c.accuracy) for c in cell.classes} == {"Yes": (8, 6, 0.75),
                                                                          "No": (2, 1, 0.5)}
    assert cell.balanced_accuracy == pytest.approx(0.625)
    assert cell.score == pytest.approx(0.625)
    assert g.mmad_average == pytest.approx(0.625)
    assert g.accuracy == pytest.approx(0.7)  # micro stays plain accuracy


def test_always_yes_gets_half_balanced_accuracy() -> None:
    (g,) = score_mcq(anomaly_rows(["A"] * 8, ["A", "A"])).groups
    assert g.subtasks[0].accuracy == pytest.approx(0.8)
    assert g.subtasks[0].balanced_accuracy == pytest.approx(0.5)


def test_balanced_with_one_class_present_is_that_class_accuracy() -> None:
    (g,) = score_mcq(anomaly_rows(["A", "A", "B"], [])).groups
    assert g.subtasks[0].balanced_accuracy == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["anomaly_discrimination", "Anomaly-Discrimination", "ANOMALY DETECTION",
                                  " anomaly  discrimination "])
def test_balanced_subtask_names_are_matched_loosely(name: str) -> None:
    rows = [resp(1, "A", "A", options=YN, category=name), resp(2, "B", "A", options=YN, category=name),
            resp(3, "A", "A", options=YN, category=name)]
    cell = score_mcq(rows).groups[0].subtasks[0]
    assert cell.balanced is True
    assert cell.balanced_accuracy == pytest.approx(0.5)
    assert cell.score == pytest.approx(0.5)


def test_balanced_subtasks_can_be_switched_off() -> None:
    rows = anomaly_rows(["A"] * 3, ["A"])
    cell = score_mcq(rows, balanced_subtasks=()).groups[0].subtasks[0]
    assert cell.balanced is False and cell.balanced_accuracy is None
    assert cell.score == pytest.approx(0.75)


# --------------------------------------------------------------------------------------------------------------
# MMAD averages
# --------------------------------------------------------------------------------------------------------------


def mmad_rows() -> list[Response]:
    rows = anomaly_rows(["A", "A", "A"], ["A"], dataset="MVTec")  # acc 0.75, balanced (1 + 0) / 2 = 0.5
    rows += [resp("m1", "A", "A", dataset="MVTec"), resp("m2", "B", "B", dataset="MVTec")]  # DC 1.0
    rows += [resp(f"v{i}", "A", a, dataset="VisA") for i, a in enumerate(["A", "B", "C", "?"])]  # DC 0.25
    rows += [resp("x1", "D", "D", dataset=None)]  # dataset None: DC 1.0
    return rows


def test_mmad_two_level_average_by_hand() -> None:
    (g,) = score_mcq(mmad_rows()).groups
    # per dataset: MVTec (0.5 + 1.0) / 2 = 0.75; VisA 0.25; None 1.0 -> (0.75 + 0.25 + 1.0) / 3 = 2/3
    means = {d.dataset: (d.subtasks, d.n, d.correct, d.mean_score) for d in g.datasets}
    assert means == {"MVTec": (2, 6, 5, pytest.approx(0.75)), "VisA": (1, 4, 1, pytest.approx(0.25)),
                     None: (1, 1, 1, pytest.approx(1.0))}
    assert [d.dataset for d in g.datasets] == ["MVTec", "VisA", None]
    assert g.mmad_average == pytest.approx(2 / 3)
    # micro: 7 right of 11; one unparsable ("?")
    assert (g.n, g.correct, g.unparsable) == (11, 7, 1)
    assert g.accuracy == pytest.approx(7 / 11)
    assert g.unparsable_rate == pytest.approx(1 / 11)
    mvtec = {d.dataset: d.accuracy for d in g.datasets}["MVTec"]
    assert mvtec == pytest.approx(5 / 6)  # pooled within the dataset (plain accuracy)
    # MMAD's "Average" row: a subtask's score averaged over the datasets that have it
    avg = {a.subtask: (a.datasets, a.score) for a in g.subtask_averages}
    assert avg == {"Anomaly Discrimination": (1, pytest.approx(0.5)),
                   "Defect Classification": (3, pytest.approx(0.75))}
    # subtasks listed in MMAD's order within each dataset
    assert [(s.dataset, s.subtask) for s in g.subtasks] == [
        ("MVTec", "Anomaly Discrimination"), ("MVTec", "Defect Classification"), ("VisA", "Defect Classification"),
        (None, "Defect Classification")]


def test_mmad_average_without_balanced_accuracy_differs() -> None:
    (g,) = score_mcq(mmad_rows(), balanced_subtasks=()).groups
    # MVTec (0.75 + 1.0) / 2 = 0.875 -> (0.875 + 0.25 + 1.0) / 3
    assert g.mmad_average == pytest.approx((0.875 + 0.25 + 1.0) / 3)


def test_subtask_aliases_merge_mmad_object_analysis() -> None:
    rows = [resp(1, "A", "A", category="Object Structure"), resp(2, "A", "B", category="object_details"),
            resp(3, "A", "A", category="Object Analysis"), resp(4, "A", "A", category="Object Classification")]
    g = score_mcq(rows, subtask_aliases=MMAD_SUBTASK_ALIASES).groups[0]
    cells = {s.subtask: (s.n, s.correct) for s in g.subtasks}
    assert cells == {"Object Analysis": (3, 2), "Object Classification": (1, 1)}
    assert g.mmad_average == pytest.approx((2 / 3 + 1.0) / 2)
    without = score_mcq(rows).groups[0]
    assert len(without.subtasks) == 4


def test_category_none_is_one_subtask() -> None:
    rows = [resp(1, "A", "A", category=None), resp(2, "A", "B", category=None)]
    (g,) = score_mcq(rows).groups
    assert [(s.subtask, s.n, s.accuracy) for s in g.subtasks] == [(None, 2, 0.5)]


# --------------------------------------------------------------------------------------------------------------
# grouping by model and condition
# --------------------------------------------------------------------------------------------------------------


def test_grouped_by_model_and_condition() -> None:
    rows = []
    for cond, answers in (("low_light", ["A", "B", "x", "B"]), ("clean", ["A", "A", "A", "B"]),
                          ("motion_blur", ["B", "B", "B", "B"])):
        rows += [resp(i, "A", a, condition=cond) for i, a in enumerate(answers)]
    rows += [resp(i, "A", "A", model="other", condition="clean") for i in range(2)]
    report = score_mcq(rows)
    keys = [(g.model, g.condition) for g in report.groups]
    assert keys == [("m", "clean"), ("m", "low_light"), ("m", "motion_blur"), ("other", "clean")]
    acc = {(g.model, g.condition): (g.n, g.correct, g.unparsable, g.accuracy) for g in report.groups}
    assert acc == {("m", "clean"): (4, 3, 0, 0.75), ("m", "low_light"): (4, 1, 1, 0.25),
                   ("m", "motion_blur"): (4, 0, 0, 0.0), ("other", "clean"): (2, 2, 0, 1.0)}
    assert report.group("m", "low_light").unparsable_rate == pytest.approx(0.25)
    with pytest.raises(KeyError):
        report.group("m", None)
    assert len(report.outcomes) == 14
    assert {(o.id, o.condition) for o in report.outcomes if o.model == "m" and o.chosen is None} == {
        ("2", "low_light")}


def test_condition_none_comes_first() -> None:
    rows = [resp(1, "A", "A", condition="low_light"), resp(1, "A", "B", condition=None)]
    assert [g.condition for g in score_mcq(rows).groups] == [None, "low_light"]


# --------------------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------------------


def test_empty_input_is_an_error() -> None:
    with pytest.raises(JudgekitError, match="empty"):
        score_mcq([])


def test_record_without_options_is_named() -> None:
    rows = [resp(1, "A", "A"), resp("q-77", "A", "A", options=[])]
    with pytest.raises(JudgekitError, match=r"q-77.*no options"):
        score_mcq(rows)


def test_reference_must_be_an_option_letter() -> None:
    with pytest.raises(JudgekitError, match=r"q9.*reference 'C'"):
        score_mcq([resp("q9", "C", "A", options=YN)])


def test_repeated_response_is_an_error() -> None:
    with pytest.raises(JudgekitError, match="more than once"):
        score_mcq([resp(1, "A", "A"), resp(1, "A", "B")])


# --------------------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------------------


def small_report() -> MCQReport:
    rows = anomaly_rows(["A"] * 6 + ["B", "I can't tell"], ["B", "Yes"], condition="clean", dataset="VisA")
    rows += [resp("d1", "A", "A", condition="clean", dataset="VisA"),
             resp("d2", "A", "B", condition="clean", dataset="VisA")]
    return score_mcq(rows)


def test_to_dict_is_json_serialisable() -> None:
    report = small_report()
    data = json.loads(json.dumps(report.to_dict()))
    (g,) = data["groups"]
    assert g["model"] == "m" and g["condition"] == "clean"
    assert g["n"] == 12 and g["correct"] == 8 and g["unparsable"] == 1
    # VisA: (0.625 + 0.5) / 2
    assert g["mmad_average"] == pytest.approx(0.5625)
    ad = g["subtasks"][0]
    assert ad["subtask"] == "Anomaly Discrimination" and ad["balanced_accuracy"] == pytest.approx(0.625)
    assert len(data["outcomes"]) == 12
    assert data["outcomes"][7] == {"id": "a7", "model": "m", "condition": "clean", "dataset": "VisA",
                                   "subtask": "Anomaly Discrimination", "reference": "A", "chosen": None,
                                   "correct": False, "setting": None}
    assert data["balanced_subtasks"] == ["anomaly discrimination", "anomaly detection"]


def test_print_mcq_report_shows_the_figures() -> None:
    console = Console(record=True, width=220)
    print_mcq_report(small_report(), console)
    text = console.export_text()
    assert "m, condition clean" in text
    assert "62.5 (Yes 75.0, No 50.0)" in text
    assert "56.2" in text  # MMAD average (56.25 %)
    assert "66.7" in text  # micro accuracy 8/12
    assert "1 (8.3 %)" in text  # unparsable 1 of 12


def test_mcq_markdown() -> None:
    md = mcq_markdown(small_report())
    lines = md.splitlines()
    assert "| model | condition | n | micro accuracy | MMAD average | unparsable |" in lines
    assert "| m | clean | 12 | 66.7 | 56.2 | 1 (8.3 %) |" in lines
    assert "### m, condition clean" in lines
    assert ("| VisA | Anomaly Discrimination | 10 | 7 | 70.0 | 62.5 (Yes 75.0, No 50.0) | 62.5 | 1 (10.0 %) |"
            in lines)
    assert "| VisA | Defect Classification | 2 | 1 | 50.0 | - | 50.0 | 0 (0.0 %) |" in lines
    total = "| **all** | **MMAD average over 1 dataset(s)** | **12** | **8** | **66.7** |  | **56.2** | **1 (8.3 %)** |"
    assert total in lines


# --------------------------------------------------------------------------------------------------------------
# the gain of each prompt setting, adjusted by --correction (judgekit.api.pipeline.correct_gains)
# --------------------------------------------------------------------------------------------------------------

def _setting_files(tmp_path: Any) -> list[Any]:
    """Two models answering 12 questions at 0-shot and 1-shot: m1 gains a lot (2 -> 12 right), m2 a little
    (5 -> 6 right), so the two gains have very different McNemar p-values."""
    files = []
    for shots, right in (("0", {"m1": 2, "m2": 5}), ("1", {"m1": 12, "m2": 6})):
        recs = [resp(i, "A", "A" if i < right[m] else "B", model=m).model_copy(
                    update={"meta": {"generation": {"shots": shots}}})
                for m in ("m1", "m2") for i in range(12)]
        path = tmp_path / f"{shots}-shot.jsonl"
        path.write_text("".join(r.model_dump_json() + "\n" for r in recs), encoding="utf-8")
        files.append(path)
    return files


def test_mcq_gains_correction_bh_cli_and_api(tmp_path: Any) -> None:
    import math

    import numpy as np
    from test_cli_e2e import flat, jk

    import judgekit.api
    from judgekit.stats.multiple import adjust_pvalues

    files = _setting_files(tmp_path)
    out, md = tmp_path / "mcq.json", tmp_path / "mcq.md"
    r = jk("mcq", *files, "--correction", "bh", "--json", out, "--markdown", md)
    assert r.returncode == 0, r.stderr
    gains = json.loads(out.read_text())["setting_gains"]
    assert [g["model"] for g in gains] == ["m1", "m2"] and all(g["setting"] == "1-shot" for g in gains)
    p = [g["p_value"] for g in gains]
    assert p[0] < 0.01 < 0.5 < p[1]
    np.testing.assert_allclose([g["p_adjusted"] for g in gains], adjust_pvalues(p, "bh"))
    assert all(g["correction"] == "bh" and g["family_size"] == 2 for g in gains)
    assert "Benjamini-Hochberg adjusted (false discovery rate)" in flat(r.stdout)
    assert "Benjamini-Hochberg" in md.read_text() and "Holm" not in md.read_text()
    # the API: the default is Holm, "none" leaves p as is
    holm = judgekit.api.mcq(files).setting_gains
    np.testing.assert_allclose([g.p_adjusted for g in holm], adjust_pvalues(p, "holm"))
    assert all(g.correction == "holm" for g in holm) and not math.isclose(holm[0].p_adjusted, p[0])
    none = judgekit.api.mcq(files, correction="none").setting_gains
    assert [g.p_adjusted for g in none] == pytest.approx(p)
    with pytest.raises(JudgekitError) as err:
        judgekit.api.mcq(files, correction="sidak")
    assert err.value.field == "--correction"
    bad = jk("mcq", *files, "--correction", "sidak")
    assert bad.returncode == 2 and "--correction" in bad.stderr and "Traceback" not in bad.stderr
