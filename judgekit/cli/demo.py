"""``judgekit demo``: the shipped sample judged offline with the embedded judge (:func:`judgekit.api.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _positive_int, notifier, print_interrupted, print_run, stderr_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    d = sub.add_parser("demo", help="judge the shipped sample dataset offline with the embedded judge",
                       description="Score the shipped RobustMAD-style sample (24 items x 3 pretend models) with the "
                                   "embedded offline judge (local/default) on rubrics/robustmad.yaml; write the "
                                   "results, a Markdown summary and an HTML report to --out. Re-running reuses the "
                                   "store.")
    d.add_argument("--out", type=Path, default=None,
                   help="output folder (default reports/demo, or reports/demo-forge with --forge)")
    d.add_argument("--forge", action="store_true",
                   help="the FORGE-style sample (8 part questions x 2 pretend models) on rubrics/forge.yaml, whose "
                        "fact checks (part number, toleranced bore, components) need no judge call")
    d.add_argument("--judge", default="local/default", metavar="MODEL",
                   help="a local judge (default local/default)")
    d.add_argument("--local-mode", choices=["likelihood", "rate"], default=None,
                   help="local scoring mode (default: likelihood for local/default, rate otherwise)")
    d.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads (default: all cores)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from judgekit.api import JudgingInterrupted, demo
    from judgekit.cli._common import ProgressBar

    console = stderr_console()
    bar = ProgressBar("demo", console, disabled=args.no_progress)
    out_dir = args.out or Path("reports/demo-forge" if args.forge else "reports/demo")
    try:
        results, summary = demo(out_dir, judge=args.judge, local_mode=args.local_mode, threads=args.threads,
                                progress=bar, notify=notifier(console), forge=args.forge)
    except JudgingInterrupted as stop:
        return print_interrupted(stop.results, console)
    code = print_run(results, console)
    out = Console()
    out.print(f"ranking by mean overall score: {' > '.join(summary.ranking)}")
    out.print(f"results: {out_dir / 'results.jsonl'}\nsummary: {out_dir / 'summary.md'}\n"
              f"report:  {out_dir / 'report.html'}\n"
              f"store:   {out_dir / 'store.sqlite'} (a re-run reads every judgment from it)")
    return code
