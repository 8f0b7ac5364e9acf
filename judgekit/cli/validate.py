"""``judgekit validate``: a local judge's agreement with human ratings on the shipped dev sets
(:func:`judgekit.api.validate_local`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _positive_int, stderr_console, stdout_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    v = sub.add_parser("validate", help="measure a local judge's agreement with human ratings on the dev sets",
                       description="Score the shipped dev sets (SummEval expert ratings, NQ-open human correctness "
                                   "labels) with a local judge and report summary-level Spearman/Kendall, AUC and "
                                   "kappa at the pass threshold beside GPT-4's (see README, 'How the figures are "
                                   "computed'). The full run takes about 10 minutes on 2 cores.")
    v.add_argument("--judge", default="local/default", metavar="MODEL", help="a local judge (default local/default)")
    v.add_argument("--local-mode", choices=["likelihood", "rate"], default=None,
                   help="local scoring mode (default: likelihood for local/default, rate otherwise)")
    v.add_argument("--calibration", type=Path, metavar="JSON", help="likelihood calibration file (default: shipped)")
    v.add_argument("--articles", type=_positive_int, metavar="N", help="only the first N SummEval articles (of 50)")
    v.add_argument("--questions", type=_positive_int, metavar="N", help="only the first N NQ questions (of 150)")
    v.add_argument("--summeval", type=Path, metavar="PATH", help="SummEval dev file (default: the shipped copy)")
    v.add_argument("--nq", type=Path, metavar="PATH", help="NQ dev file (default: the shipped copy)")
    v.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads (default: all cores)")
    v.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from judgekit.api import validate_local
    from judgekit.local.validate import DIMS, TARGETS

    console = stderr_console()

    def progress(name: str, done: int, total: int) -> None:
        console.print(f"  {name}: {done}/{total}", end="\r")

    fig = validate_local(args.judge, local_mode=args.local_mode, calibration=args.calibration,
                         articles=args.articles, questions=args.questions, summeval=args.summeval, nq=args.nq,
                         threads=args.threads, json=args.json, progress=progress)
    s, n = fig["summeval"], fig["nq"]
    table = Table(title=f"{args.judge} ({fig['mode']} mode) vs people; {fig['rows']['summeval']} SummEval summaries "
                        f"({fig['rows']['summeval_articles']} articles), {fig['rows']['nq']} NQ answers "
                        f"({fig['rows']['nq_questions']} questions)", title_justify="left")
    for col in ("figure", "value", "target", ""):
        table.add_column(col)

    def row(name: str, value: float, target: float | None = None, note: str = "") -> None:
        met = "" if target is None else ("met" if value >= target else "NOT met")
        table.add_row(name, f"{value:.3f}", "" if target is None else f">= {target}", met or note)

    for d in DIMS:
        row(f"SummEval {d} (via {s[d]['criterion']}): summary-level Spearman", s[d]["spearman"],
            note=f"Kendall {s[d]['kendall']:.3f}; integer scores {s[d]['spearman_int']:.3f}")
    row("SummEval mean Spearman", s["mean_spearman"], TARGETS["summeval_mean"])
    row("SummEval lowest dimension", s["min_spearman"], TARGETS["summeval_min"])
    row("NQ AUC of technical_accuracy vs human", n["auc_accuracy"], TARGETS["nq_auc"])
    row("NQ AUC of overall vs human", n["auc_overall"])
    row(f"NQ kappa, pass ({n['pass_rule']}) vs human", n["kappa_pass"],
        note=f"agreement {n['agreement_pass']:.3f}; pass rate {n['pass_rate']:.2f} vs human yes "
             f"{n['human_yes_rate']:.2f}")
    row("NQ kappa, GPT-4 vs human (same rows)", n["kappa_gpt4"], note=f"agreement {n['agreement_gpt4']:.3f}")
    out = stdout_console()
    out.print(table)
    out.print(f"{fig['seconds_per_judgment']['nq']:.2f} s per NQ judgment, "
              f"{fig['seconds_per_judgment']['summeval']:.2f} s per SummEval judgment (batched per item; "
              f"{fig['threads']} threads, {fig['device']}, {fig['dtype']}); model load {fig['load_s']:.1f} s; "
              f"peak memory {fig['peak_rss_mb']:.0f} MiB")
    if fig["mode"] == "likelihood" and not args.calibration:
        out.print("The shipped calibration was fitted on these rows, so these figures are in-sample; "
                  "cross-validated figures: python bench/validate_local.py report.")
    if args.json is not None:
        out.print(f"figures -> {args.json}")
    return 0
