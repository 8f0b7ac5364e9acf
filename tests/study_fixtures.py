"""Small inputs of the human study tests: the shipped sample's responses with made-up judgments of them."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from judgekit.io.dataio import write_records
from judgekit.io.records import Judgment

SAMPLE = Path(__file__).resolve().parents[1] / "judgekit" / "sample_data" / "robustmad_sample"
RESPONSES = SAMPLE / "responses.jsonl"
CRITERIA = ("technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity")
JUDGE = "openai/made-up"
BASE = {"strong-vlm": 4.5, "medium-vlm": 3.0, "weak-vlm": 1.6}


def sample_responses() -> list[dict]:
    return [json.loads(line) for line in RESPONSES.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_results(path: Path, *, seed: int = 0, unscored: int = 0, judge: str = JUDGE) -> Path:
    """A results file judging every shipped sample response (scores by model, with noise); the first
    ``unscored`` are unscored."""
    rng = random.Random(seed)
    out = []
    for n, r in enumerate(sample_responses()):
        if n < unscored:
            out.append(Judgment(id=r["id"], model=r["model"], condition=r.get("condition"), category=r.get("category"),
                                judge=judge, status="unscored", reason="made up", rubric="robustmad",
                                rubric_version="1.0"))
            continue
        base = BASE[r["model"]]
        scores = {c: float(min(5, max(1, round(base + rng.uniform(-1, 1))))) for c in CRITERIA}
        overall = float(min(5, max(1, round(base + rng.uniform(-0.8, 0.8)))))
        out.append(Judgment(id=r["id"], model=r["model"], condition=r.get("condition"), category=r.get("category"),
                            judge=judge, status="scored", scores=scores, overall=overall,
                            passed=overall >= 3, rubric="robustmad", rubric_version="1.0"))
    write_records(path, out)
    return path


def make_gold(folder: Path, n: int = 2) -> Path:
    """A gold file of ``n`` answers with known scores; the first has an image copied beside it (relative path)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE / "images" / "metal_nut_good.png", folder / "nut.png")
    rows = []
    for i in range(n):
        rows.append({"id": f"gold-{i}", "question": "What is shown?", "reference": "A metal nut.",
                     "response": "A metal nut." if i % 2 == 0 else "A banana.",
                     "images": ["nut.png"] if i == 0 else [],
                     "scores": {"technical_accuracy": 5, "overall": 5} if i % 2 == 0 else
                     {"technical_accuracy": 1, "comprehensiveness": 1, "overall": 1}})
    path = folder / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
