"""How often does the embedded judge pass an answer that contradicts its reference?

    python bench/bench_contradiction.py [--calibration JSON] [--json OUT] [--show]

Scores the contradiction set (``judgekit/local/devsets/contradictions.jsonl``, built by
bench/build_contradictions.py) with ``local/default`` in likelihood mode and the RobustMAD rubric, through
:meth:`LocalJudge.score_many` batched per item as ``judgekit judge`` batches, and prints per source and kind:
rows, pass rate (the rubric's rule, overall >= 3 on the integer scores) and mean technical_accuracy. The
headline is the **contradiction pass rate** (share of rows labelled ``contradiction`` that pass; lower is
better) beside the **correct pass rate** (share of the ``correct`` controls that pass; higher is better).
``--show`` lists every row with its scores; ``--json`` writes the summary and every row's scores and raw
features (``bench/validate_local.py gate --scores`` fits the contradiction gate on them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SET_PATH = ROOT / "judgekit" / "local" / "devsets" / "contradictions.jsonl"


def load_set(path: Path = SET_PATH) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def responses(rows: list[dict[str, Any]]) -> list[Any]:
    from judgekit.io.records import Response

    return [Response(id=r["item"], model=r["id"], question=r["question"], reference=r["reference"],
                     response=r["response"], meta={"references": r["references"]}) for r in rows]


def score(rows: list[dict[str, Any]], calibration: str | None = None,
          threads: int | None = None) -> tuple[list[dict[str, Any]], float]:
    """The judge's result per row (in order) and the seconds per judgment (batched per item)."""
    from judgekit.judging.rubric import load_rubric
    from judgekit.local.judge import LocalJudge
    from judgekit.sample_data import rubric_path

    rubric = load_rubric(rubric_path("robustmad"))
    judge = LocalJudge("default", mode="likelihood", threads=threads, calibration=calibration)
    resp = responses(rows)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(resp):
        groups.setdefault(r.id, []).append(i)
    out: list[dict[str, Any] | None] = [None] * len(rows)
    t0 = time.perf_counter()
    for idx in groups.values():
        for i, res in zip(idx, judge.score_many([resp[i] for i in idx], rubric), strict=True):
            res["passed"] = rubric.passed({k: float(v) for k, v in res["scores"].items()})
            out[i] = res
    per = (time.perf_counter() - t0) / max(1, len(rows))
    return [o for o in out if o is not None], per


def summarize(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pass rates overall, per label and per source/kind."""
    def rate(sel: list[int]) -> dict[str, float]:
        return {"rows": len(sel), "pass_rate": sum(results[i]["passed"] for i in sel) / max(1, len(sel)),
                "mean_accuracy": sum(results[i]["values"]["technical_accuracy"] for i in sel) / max(1, len(sel))}

    by: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by.setdefault(f"{r['source']}/{r['kind']}", []).append(i)
    contra = [i for i, r in enumerate(rows) if r["label"] == "contradiction"]
    correct = [i for i, r in enumerate(rows) if r["label"] == "correct"]
    return {"contradiction": rate(contra), "correct": rate(correct),
            "by_source": {s: {"contradiction": rate([i for i in contra if rows[i]["source"] == s]),
                              "correct": rate([i for i in correct if rows[i]["source"] == s])}
                          for s in dict.fromkeys(r["source"] for r in rows)},
            "by_kind": {k: rate(v) for k, v in sorted(by.items())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=SET_PATH)
    ap.add_argument("--calibration", default=None, help="likelihood calibration file (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, help="write the summary (and every row's scores) as JSON")
    ap.add_argument("--show", action="store_true", help="print every row")
    args = ap.parse_args(argv)
    rows = load_set(args.set)
    results, per = score(rows, args.calibration, args.threads)
    summary = summarize(rows, results)
    if args.show:
        for r, res in zip(rows, results, strict=True):
            s = res["scores"]
            print(f"{'PASS' if res['passed'] else 'fail'} {r['label'][:7]:7s} acc {s['technical_accuracy']} "
                  f"ov {s['overall']} ({res['values']['overall']:.2f}) {r['id']}: {r['response'][:70]}")
    c, k = summary["contradiction"], summary["correct"]
    print(f"contradiction pass rate {c['pass_rate']:.3f} ({c['rows']} rows; mean technical_accuracy "
          f"{c['mean_accuracy']:.2f}); correct pass rate {k['pass_rate']:.3f} ({k['rows']} rows; "
          f"{k['mean_accuracy']:.2f}); {per:.3f} s per judgment")
    for src, v in summary["by_source"].items():
        print(f"  {src}: contradictions pass {v['contradiction']['pass_rate']:.3f} of {v['contradiction']['rows']}, "
              f"correct pass {v['correct']['pass_rate']:.3f} of {v['correct']['rows']}")
    for kind, v in summary["by_kind"].items():
        print(f"    {kind:28s} {v['rows']:3d} rows  pass {v['pass_rate']:.3f}  accuracy {v['mean_accuracy']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "seconds_per_judgment": per,
                                         "rows": [{"id": r["id"], "item": r["item"], "label": r["label"],
                                                   "passed": res["passed"], "scores": res["scores"],
                                                   "values": res["values"], "features": res["raw"]["features"]}
                                                  for r, res in zip(rows, results, strict=True)]}, indent=1) + "\n")
    print(f"(calibration: {args.calibration or 'shipped'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
