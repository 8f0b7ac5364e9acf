"""``judgekit agree``: how far a judge agrees with human ratings (:func:`judgekit.api.agree`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _number, _positive_int, stdout_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    ag = sub.add_parser("agree", help="how far a judge agrees with human ratings (kappa, alpha, correlations, "
                                      "ICC, inter-human ceiling, PPI pass rates)",
                        description="Join the judge's results with human ratings on the response id and report, per "
                                    "criterion, every agreement statistic that fits the ratings (binary labels, 1-5 "
                                    "integers, or fractional scores) with bootstrap 95% CIs, which level each "
                                    "correlation is at, the inter-human ceiling beside the judge, and per model the "
                                    "prediction-powered pass rate. See README, 'Agreement with people'.")
    ag.add_argument("--judge", type=Path, required=True, metavar="RESULTS", help="results .jsonl of 'judgekit judge'")
    ag.add_argument("--human", type=Path, required=True, metavar="RATINGS",
                    help="ratings .csv/.tsv/.jsonl/.parquet: long (id, rater, score[, criterion]) or wide (id and "
                         "one column per rater); optional model and condition columns complete the response key")
    ag.add_argument("--criterion", action="append", metavar="NAME",
                    help="criterion to compare (repeatable; default: every criterion of a long table, overall for "
                         "a wide one); binary labels are compared with the judge's pass/fail or flag of that name")
    ag.add_argument("--raters", metavar="COLS", help="wide tables: the rater columns, comma-separated "
                                                     "(default: every column whose values are all ratings)")
    ag.add_argument("--group-by", metavar="FIELD",
                    help="summary-level correlations within groups of FIELD (id, model, condition, category or a "
                         "column of the ratings, e.g. the question or source id); also the bootstrap's cluster")
    ag.add_argument("--scale", default=None, metavar="LO-HI",
                    help="rating scale (default: the --rubric's, else 1-5)")
    ag.add_argument("--rubric", type=Path, metavar="FILE", help="the rubric the judge used: its scale becomes "
                                                                "the default")
    ag.add_argument("--level", choices=["auto", "ordinal", "continuous"], default="auto",
                    help="statistics for non-binary ratings: auto = ordinal when every value is an integer, "
                         "continuous as soon as one is fractional (it says how many); ordinal rounds fractional "
                         "values half up; continuous keeps them (default auto)")
    ag.add_argument("--threshold", type=_number(), default=None,
                    help="pass threshold (default 3: overall >= 3, as RobustMAD)")
    ag.add_argument("--judge-label", metavar="JUDGE", help="which judge of a results file with several")
    ag.add_argument("--boot", type=_positive_int, default=1000, help="bootstrap resamples (default 1000)")
    ag.add_argument("--ci", choices=["percentile", "bca"], default="percentile", help="interval method")
    ag.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    ag.add_argument("--json", type=Path, metavar="OUT", help="also write everything as JSON")
    ag.add_argument("--markdown", type=Path, metavar="OUT", help="also write every table shown as Markdown")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import agree

    result = agree(args.judge, args.human, criterion=args.criterion, raters=args.raters, group_by=args.group_by,
                   scale=args.scale, rubric=args.rubric, level=args.level, threshold=args.threshold,
                   judge_label=args.judge_label, boot=args.boot, ci=args.ci, seed=args.seed, json=args.json,
                   markdown=args.markdown)
    out = stdout_console()
    for thing in result.renderables():
        out.print(thing)
    if args.json is not None:
        out.print(f"agreement -> {args.json}")
    if args.markdown is not None:
        out.print(f"tables -> {args.markdown}")
    return 0
