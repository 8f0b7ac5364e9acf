"""Build the contradiction set for the local judge: answers that contradict their reference, beside correct ones.

    python bench/build_contradictions.py [--out judgekit/local/devsets/contradictions.jsonl]

Deterministic (no random numbers): the same inputs always give the same file. Sources:

- the sample dataset (``judgekit/sample_data/robustmad_sample/responses.jsonl``, 24 items):
  ``correct``: strong-vlm's answers (close paraphrases of the reference); contradictions: the demo's own wrong
  answers (weak-vlm on every item but ou-04, medium-vlm's "no defect" on ad-04, its invented defect on
  ad-06 and its invented answers on un-02 and un-04: kinds ``demo_*``), and answers written here:
  ``negation`` (the reference negated), ``no_defect`` ("no defect" when the reference names one),
  ``false_defect`` (a defect when the reference says there is none), ``wrong_part`` (another defect type or
  part), ``wrong_location`` (strong-vlm's answer with the defect's grid cell swapped for the opposite one);
- NQ-open (the dev set, ``nq301_dev.tsv.gz``): 16 questions, every 9th of those with a human-"Yes" answer:
  ``correct`` (that answer), ``negation`` ("It is not GOLD."), ``wrong_answer`` (another question's gold
  answer of the same type, or a year / number shifted);
- SummEval (the dev set, ``summeval_dev.jsonl.gz``): 10 articles, every 5th: ``correct`` (the summary
  with the highest consistency rating) and ``negation`` (that summary with its first auxiliary verb negated).

Each line: ``id``, ``item`` (the source item), ``source`` (sample | nq | summeval), ``kind``, ``label``
(``contradiction`` | ``correct``), ``question``, ``reference``, ``references`` (the gold answers; NQ's
several, else the reference alone) and ``response``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from judgekit.local.validate import load_nq, load_summeval, nq_golds
from judgekit.sample_data import sample_responses

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "judgekit" / "local" / "devsets" / "contradictions.jsonl"

OBJECT = {"metal_nut": "metal nut", "screw": "screw", "weave": "fabric"}

NEGATION = {  # the reference, negated (the sample's unanswerable items are covered by "invented" answers)
    "ou-01": "This is not a hexagonal metal nut and it is not made of steel; there is no hole in the center.",
    "ou-02": "It is not a steel screw; the object is not metal and has no threaded shaft or pointed tip.",
    "ou-03": "It is not a woven fabric; no beige or brown strands cross each other and there are no gaps.",
    "ou-04": "The object is not hexagonal: its outer edge does not have six sides, and there is no hole in the "
             "center.",
    "ou-05": "The head of the screw is not at the top-left, and the shaft is not covered by a thread.",
    "ou-06": "The strands are not beige and brown, and they do not run vertically and horizontally.",
    "ad-01": "No, there is no scratch on the metal nut's surface; the left side is not marked at all.",
    "ad-02": "No, no part is missing: the top-right corner of the hexagonal nut is intact, with no jagged edge.",
    "ad-03": "No, the tip of the screw is not broken off; the pointed end is intact at the bottom-right.",
    "ad-04": "No, no section of the thread is missing; the threads at the center of the shaft are intact.",
    "ad-05": "No, there is no hole in the woven fabric at the bottom-left; no strands are missing.",
    "ad-06": "Yes, the metal nut is not free of defects: its surface is scratched and a part of its edge is missing.",
    "pw-01": "Like the reference, the metal nut has no dent at the bottom; there is no depression near the hole.",
    "pw-02": "Like the reference, the nut has no scratch on its surface at the left; nothing is different.",
    "pw-03": "Like the reference, the screw has no scratch across its head at the top-left; nothing is different.",
    "pw-04": "The thread is not missing anywhere: the shaft has continuous threads at the center, like the "
             "reference screw.",
    "pw-05": "Like the reference, the fabric has no cut line at the top-right; the weave is not damaged anywhere.",
    "pw-06": "Like the reference, the fabric has no dark spot at the center; the strands are not crushed.",
}
WRONG_PART = {  # another defect type, or the right defect on another part
    "ad-01": "Yes, there is a dent on the metal nut's surface at the left, a dark round depression.",
    "ad-02": "Yes, there is a thin scratch across the top-right corner of the hexagonal nut.",
    "ad-03": "Yes, the tip of the screw is rusty at the bottom-right, with orange-brown spots.",
    "ad-04": "Yes, a piece of the screw's head is missing, at the top-left of the image.",
    "ad-05": "Yes, there is a dark stain on the woven fabric at the bottom-left.",
    "pw-01": "Unlike the reference, the metal nut has a thin scratch at the bottom, between the center hole and "
             "the bottom edge.",
    "pw-02": "Unlike the reference, the nut has a dent on its surface at the left, a dark round depression.",
    "pw-03": "Unlike the reference, the screw's head at the top-left is bent; the shaft and tip match the "
             "reference.",
    "pw-04": "Unlike the reference, a piece of the screw's head is chipped off, while the shaft matches.",
    "pw-05": "Unlike the reference, the fabric has a large hole at the top-right where strands are missing.",
    "pw-06": "Unlike the reference, the fabric has a thin white cut line at the center.",
}
FALSE_DEFECT = {  # a defect where the reference says there is none
    "ad-06": "Yes, there is a deep scratch on the metal nut's surface at the top-left.",
    "un-01": "There is no gear; the image shows a metal nut with a deep dent at the bottom.",
    "un-03": "There is no red thread, but the woven fabric has a large hole at the center.",
    "un-05": "There is only one screw, and its tip is broken off at the bottom-right.",
}
OPPOSITE = {"top-left": "bottom-right", "bottom-right": "top-left", "top-right": "bottom-left",
            "bottom-left": "top-right", "left": "right", "right": "left", "top": "bottom", "bottom": "top",
            "center": "top-left"}
DEMO_MEDIUM = {"ad-04": "demo_no_defect", "ad-06": "demo_false_defect", "un-02": "demo_invented",
               "un-04": "demo_invented"}


def demo_kind(row: dict[str, Any]) -> str:
    """The kind of one of the demo's wrong answers."""
    text = row["response"].lower()
    if row["category"] == "unanswerable":
        return "demo_invented"
    if row["meta"].get("defect") and re.search(r"\bno (defect|difference)|\bidentical|look the same|normal|"
                                               r"\bintact|regular and uniform", text):
        return "demo_no_defect"
    if not row["meta"].get("defect") and row["category"] == "anomaly_detection":
        return "demo_false_defect"
    return "demo_wrong"


def swap_location(text: str, cell: str) -> str | None:
    """``text`` with the grid cell ``cell`` (and only it) replaced by the opposite cell; None when absent."""
    pat = re.compile(rf"(?<![\w-]){re.escape(cell)}(?![\w-])")
    if not pat.search(text):
        return None
    return pat.sub(OPPOSITE[cell], text)


def row(rid: str, item: str, source: str, kind: str, label: str, question: str, reference: str,
        response: str, references: list[str] | None = None) -> dict[str, Any]:
    return {"id": rid, "item": item, "source": source, "kind": kind, "label": label, "question": question,
            "reference": reference, "references": references or [reference], "response": response}


def sample_rows() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in sample_responses().read_text().splitlines() if line.strip()]
    out: list[dict[str, Any]] = []
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_item.setdefault(r["id"], {})[r["model"]] = r
    for item, models in by_item.items():
        strong = models["strong-vlm"]
        q, ref, meta = strong["question"], strong["reference"], strong["meta"]

        def add(kind: str, label: str, response: str, _item: str = item, _q: str = q, _ref: str = ref) -> None:
            out.append(row(f"sample-{_item}-{kind}", _item, "sample", kind, label, _q, _ref, response))

        add("correct", "correct", strong["response"])
        if item != "ou-04":  # weak-vlm's "It has six sides." is right
            add(demo_kind(models["weak-vlm"]), "contradiction", models["weak-vlm"]["response"])
        if item in DEMO_MEDIUM:
            out.append(row(f"sample-{item}-{DEMO_MEDIUM[item]}-medium", item, "sample", DEMO_MEDIUM[item],
                           "contradiction", q, ref, models["medium-vlm"]["response"]))
        if item in NEGATION:
            add("negation", "contradiction", NEGATION[item])
        if item in WRONG_PART:
            add("wrong_part", "contradiction", WRONG_PART[item])
        if item in FALSE_DEFECT:
            add("false_defect", "contradiction", FALSE_DEFECT[item])
        if meta.get("defect") and strong["category"] in ("anomaly_detection", "pairwise"):
            obj = OBJECT[meta["object"]]
            add("no_defect", "contradiction",
                f"There is no defect; the {obj} is intact and undamaged." if strong["category"] == "anomaly_detection"
                else f"There is no difference: the {obj} in the first image is identical to the defect-free "
                     "reference.")
            swapped = swap_location(strong["response"], meta["defect_location"])
            if swapped is not None:
                add("wrong_location", "contradiction", swapped)
    return out


def _shift(gold: str) -> str | None:
    """A gold answer with its year (+7) or other number (+3) changed; None when it holds no number."""
    m = re.search(r"\b(1[0-9]{3}|20[0-9]{2})\b", gold)
    if m:
        return gold[: m.start()] + str(int(m.group()) + 7) + gold[m.end():]
    m = re.search(r"\b\d+\b", gold)
    if m:
        return gold[: m.start()] + str(int(m.group()) + 3) + gold[m.end():]
    return None


def nq_rows(n: int = 16, step: int = 9) -> list[dict[str, Any]]:
    rows = load_nq()
    qids = list(dict.fromkeys(r["qid"] for r in rows))
    yes = {qid: next((r for r in rows if r["qid"] == qid and r["human"] == "Yes"), None) for qid in qids}
    chosen = [qid for qid in qids if yes[qid] is not None][::step][:n]
    firsts = {qid: next(r for r in rows if r["qid"] == qid) for qid in chosen}
    plain = [qid for qid in chosen if _shift(nq_golds(firsts[qid])[0]) is None]
    out = []
    for qid in chosen:
        r = firsts[qid]
        golds = nq_golds(r)
        gold = golds[0]
        ok = yes[qid]
        assert ok is not None

        def add(kind: str, label: str, response: str, _qid: str = qid, _r: dict = r, _g: list = golds) -> None:
            out.append(row(f"nq-{_qid}-{kind}", f"nq{_qid}", "nq", kind, label, _r["question"], _r["gold_answers"],
                           response, _g))

        add("correct", "correct", ok["model_answer"])
        add("negation", "contradiction", f"It is not {gold}.")
        wrong = _shift(gold)
        if wrong is None:  # the next question's gold answer, among those without a number
            other = firsts[plain[(plain.index(qid) + 1) % len(plain)]]
            wrong = nq_golds(other)[0]
        add("wrong_answer", "contradiction", wrong)
    return out


_AUX = re.compile(r"\b(is|was|are|were|has|have|had|will|would|can|could|did|does)\b")


def negate_summary(text: str) -> str:
    """``text`` with the first auxiliary verb of its first sentence negated ("was" -> "was not"); when the first
    sentence has none, "it is not true that " is put in front of it."""
    first_end = text.find(" . ")
    first_end = len(text) if first_end < 0 else first_end
    m = _AUX.search(text, 0, first_end)
    if m is None:
        return "it is not true that " + text
    return text[: m.end()] + " not" + text[m.end():]


def summeval_rows(n: int = 10, step: int = 5) -> list[dict[str, Any]]:
    rows = load_summeval()
    articles = list(dict.fromkeys(r["article_id"] for r in rows))[::step][:n]
    out = []
    for aid in articles:
        summaries = [r for r in rows if r["article_id"] == aid]
        best = max(summaries, key=lambda r: (r["consistency"], r["relevance"]))  # the first on ties
        for kind, label, text in (("correct", "correct", best["summary"]),
                                  ("negation", "contradiction", negate_summary(best["summary"]))):
            out.append(row(f"summeval-{aid}-{kind}", aid, "summeval", kind, label, "Summarize the news article.",
                           best["article"], text))
    return out


def build() -> list[dict[str, Any]]:
    """Every row of the contradiction set, in a fixed order."""
    rows = sample_rows() + nq_rows() + summeval_rows()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows = build()
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r['source']}/{r['kind']}"] = counts.get(f"{r['source']}/{r['kind']}", 0) + 1
    print(f"wrote {args.out}: {len(rows)} rows ({sum(r['label'] == 'contradiction' for r in rows)} contradictions)")
    for k, v in sorted(counts.items()):
        print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
