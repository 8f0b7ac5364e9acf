"""``judgekit report``: the tables and the clean-vs-degraded comparison of a results file
(:func:`judgekit.api.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _positive_int, add_correction_flag, stdout_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    rp = sub.add_parser("report", help="tables and the clean-vs-degraded comparison of a results file",
                        description="Read a results file of 'judgekit judge' (.jsonl) and print the per-model, "
                                    "per-category and per-condition tables and, when it holds a clean and "
                                    "degraded conditions, the robustness comparison: for each model, criterion and "
                                    "category, the paired mean difference and pass-rate difference with bootstrap "
                                    "95% CIs and a paired test.")
    rp.add_argument("results", type=Path, help="results .jsonl written by 'judgekit judge'")
    rp.add_argument("--baseline", default="clean", help="the reference condition (default clean; empty counts "
                                                        "as clean)")
    rp.add_argument("--all-criteria", action="store_true", help="robustness rows for every criterion (default: "
                                                                "overall and pass)")
    rp.add_argument("--boot", type=_positive_int, default=2000, help="bootstrap resamples (default 2000)")
    rp.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    add_correction_flag(rp, "the robustness comparison, the breakdowns and --compare")
    rp.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    rp.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables as Markdown")
    rp.add_argument("--csv", type=Path, metavar="OUT.csv",
                    help="also write the leaderboard as CSV (the JSON leaderboard's fields, intervals split into "
                         "_low/_high, means into mean_CRITERION)")
    rp.add_argument("--html", type=Path, metavar="OUT",
                    help="also write one self-contained HTML page: leaderboard with rank ranges, plots, breakdowns, "
                         "judge card, examples")
    rp.add_argument("--responses", type=Path, metavar="FILE",
                    help="with --html: the responses file that was judged; the examples then show the question, "
                         "reference, answer and images")
    rp.add_argument("--rubric", metavar="FILE",
                    help="with --html: the rubric used (file or shipped name), for the samples' pass verdicts in the "
                         "judge card (default: the shipped rubric of the recorded name and version)")
    rp.add_argument("--human", type=Path, metavar="RATINGS",
                    help="human ratings of some of the answers (as for 'judgekit agree'): the agreement of the judge "
                         "with people, the inter-human ceiling and the prediction-powered pass rates go into the "
                         "report (judge card, a judge-vs-human heatmap, --json key 'agreement', --markdown)")
    rp.add_argument("--criterion", action="append", metavar="NAME",
                    help="with --human: criterion to compare (repeatable; default: every criterion of a long "
                         "ratings table, overall for a wide one)")
    rp.add_argument("--raters", metavar="COLS", help="with --human, wide tables: the rater columns, comma-separated")
    rp.add_argument("--group-by", metavar="FIELD",
                    help="with --human: summary-level correlations within groups of FIELD (as 'judgekit agree')")
    rp.add_argument("--probes", type=Path, metavar="PROBES.json",
                    help="the bias probes of the judge (written by 'judgekit probe --out'): shown in the judge card "
                         "of --html, in --markdown and under the key 'probes' of --json")
    rp.add_argument("--compare", type=Path, metavar="OTHER_RESULTS",
                    help="another results file of the same answers (another judge, rubric version or date): the "
                         "per-model differences OTHER - RESULTS, rank changes and the two runs' agreement go into "
                         "the report (as 'judgekit compare RESULTS OTHER_RESULTS'; --json key 'comparison')")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import report

    rep = report(args.results, baseline=args.baseline, all_criteria=args.all_criteria, boot=args.boot,
                 seed=args.seed, json=args.json, markdown=args.markdown, html=args.html, responses=args.responses,
                 rubric=args.rubric, human=args.human, criterion=args.criterion, raters=args.raters,
                 group_by=args.group_by, compare=args.compare, probes=args.probes, csv=args.csv,
                 correction=args.correction)
    out = stdout_console()
    for table in rep.tables():
        out.print(table)
    if rep.self_grading is not None:  # notes as plain text: a model name may hold "[...]"
        for thing in rep.self_grading.renderables():
            out.print(thing, markup=False, highlight=False) if isinstance(thing, str) else out.print(thing)
    if rep.agreement is not None:
        for thing in rep.agreement.renderables():
            out.print(thing)
    if rep.probes is not None:
        from judgekit.reporting.probes import probe_table

        out.print(probe_table(rep.probes))
    if rep.comparison is not None:
        for table in rep.comparison.tables():
            out.print(table)
    if args.json is not None:
        out.print(f"report -> {args.json}")
    if args.markdown is not None:
        out.print(f"tables -> {args.markdown}")
    if args.csv is not None:
        out.print(f"leaderboard -> {args.csv}")
    if args.html is not None:
        out.print(f"page -> {args.html}")
    return 0
