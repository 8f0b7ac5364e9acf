"""``judgekit compare``: two results files of the same answers (another judge, rubric version or date) compared
(:func:`judgekit.api.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _count, _positive_int, add_correction_flag, stdout_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    cp = sub.add_parser("compare", help="compare two judgings of the same answers (pass rates, ranks, agreement)",
                        description="Read two results files of 'judgekit judge' holding the same answers judged "
                                    "twice (another judge, rubric version or date), match them on (id, model, "
                                    "condition) and print, per model, the pass rates and mean overall scores under "
                                    "A and B with the paired differences B - A (bootstrap 95%% CIs, McNemar and "
                                    "Wilcoxon tests), the ranks by pass rate under A and B, and the agreement of "
                                    "the two runs (Cohen's kappa, Spearman). Unmatched and unscored answers are "
                                    "counted and left out.")
    cp.add_argument("run_a", type=Path, metavar="RUN_A", help="results .jsonl of the first run (A)")
    cp.add_argument("run_b", type=Path, metavar="RUN_B", help="results .jsonl of the second run (B)")
    cp.add_argument("--judge-a", metavar="JUDGE", help="the judge of RUN_A to compare (needed when it holds several)")
    cp.add_argument("--judge-b", metavar="JUDGE", help="the judge of RUN_B to compare (needed when it holds several)")
    cp.add_argument("--boot", type=_positive_int, default=2000, help="bootstrap resamples (default 2000)")
    cp.add_argument("--seed", type=_count, default=0, help="bootstrap seed (default 0)")
    add_correction_flag(cp, "the per-model tests (McNemar and Wilcoxon of every model)")
    cp.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    cp.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables as Markdown")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import compare

    comp = compare(args.run_a, args.run_b, judge_a=args.judge_a, judge_b=args.judge_b, boot=args.boot,
                   seed=args.seed, json=args.json, markdown=args.markdown, correction=args.correction)
    out = stdout_console()
    for table in comp.tables():
        out.print(table)
    if args.json is not None:
        out.print(f"comparison -> {args.json}")
    if args.markdown is not None:
        out.print(f"tables -> {args.markdown}")
    return 0
