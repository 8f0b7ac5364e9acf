"""``judgekit mcq``: accuracy of multiple-choice answers per subtask (:func:`judgekit.api.mcq`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import add_correction_flag, stdout_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    m = sub.add_parser("mcq", help="score multiple-choice answers (MMAD / RobustMAD MCQ): accuracy per subtask",
                       description="Read the letter each answer chose (never guessing: an unparsable answer counts "
                                   "as wrong and is reported as a separate rate) and report accuracy per model, "
                                   "condition, dataset and subtask, balanced accuracy for anomaly discrimination "
                                   "and MMAD's averages (mean over subtasks, then over datasets).")
    m.add_argument("responses", type=Path, nargs="+",
                   help="responses file(s) whose records have 'options' and a letter 'reference'; give one per "
                        "prompt setting of 'judgekit generate --shots/--knowledge' to get the gain of each setting")
    m.add_argument("--mmad-aliases", action="store_true",
                   help="merge MMAD's 'Object Structure' and 'Object Details' into 'Object Analysis', as its "
                        "script does")
    m.add_argument("--json", type=Path, metavar="OUT",
                   help="also write the report, with every answer's outcome, as JSON")
    m.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables as Markdown")
    add_correction_flag(m, "the gain of each setting (the family: every gain of the table)")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import mcq
    from judgekit.generation.mcq import print_mcq_report

    report = mcq(args.responses, mmad_aliases=args.mmad_aliases, json=args.json, markdown=args.markdown,
                 correction=args.correction)
    out = stdout_console()
    print_mcq_report(report, out)
    if args.json is not None:
        out.print(f"report -> {args.json}")
    if args.markdown is not None:
        out.print(f"tables -> {args.markdown}")
    return 0
