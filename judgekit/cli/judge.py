"""``judgekit judge``: judge a responses file with a rubric (:func:`judgekit.api.judge`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import (
    add_correction_flag,
    add_judge_flags,
    judge_options,
    notifier,
    print_interrupted,
    print_run,
    rubric_help,
    stderr_console,
    warnings_printed,
)


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    j = sub.add_parser("judge", help="judge a responses file with a rubric",
                       description="Judge every response with the rubric; results per response to --out, "
                                   "every call to the --store (a re-run skips what is stored).")
    j.add_argument("responses", type=Path, help="responses file (.jsonl, .csv or .parquet)")
    j.add_argument("--rubric", type=Path, required=True,
                   help=rubric_help())
    add_judge_flags(j)
    j.add_argument("--store", type=Path, default=Path("judgekit-store.sqlite"),
                   help="SQLite store of every call (default judgekit-store.sqlite)")
    j.add_argument("--out", type=Path, default=Path("results.jsonl"),
                   help="results file, .jsonl, .csv or .parquet (default results.jsonl)")
    j.add_argument("--robustness", type=Path, metavar="OUT",
                   help="when the responses hold a clean and degraded conditions, also write the robustness "
                        "comparison (paired differences, bootstrap CIs, Wilcoxon/McNemar) as .json or .md")
    add_correction_flag(j, "the robustness comparison (printed and --robustness)")
    j.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="shard the run over Ray actors: 'local' (the default: a local cluster of --workers CPUs), "
                        "'auto' or HOST:PORT (an existing cluster); each shard's calls are merged into --store by "
                        "call key, and a re-run resumes with nothing paid twice (pip install 'judgekit[ray]')")
    j.add_argument("--workers", type=int, metavar="W", default=None,
                   help="with --ray: the number of shards and Ray actors (default 2); --concurrency is per worker")
    j.add_argument("--batch", action="store_true",
                   help="send the calls through the provider's batch API (OpenAI format, about half price, "
                        "results within 24 h); the same results and store keys as a live run, and a re-run "
                        "re-attaches to the batches already submitted")
    j.add_argument("--batch-poll", type=float, metavar="SECONDS", default=None,
                   help="with --batch: first wait between polls (default 30; each wait is 1.5x the last, "
                        "at most 10x this)")
    j.add_argument("--no-self-grading", action="store_true",
                   help="refuse (exit 2, before any call or file) when a judge is also a model under test: the same "
                        "name once lower-cased and without a provider prefix ('openai/gpt-4o-mini' is "
                        "'gpt-4o-mini') or a ' [SETTING]' suffix, or a --self-alias; by default such a judge is "
                        "warned about and run, and the results record it (self_grading)")
    j.add_argument("--self-alias", action="append", metavar="JUDGE=MODEL", default=None,
                   help="declare that the judge JUDGE is the model under test MODEL although the names differ (a "
                        "local server's name); repeatable")
    j.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import threading

    from judgekit.cli._common import LazyConsole, ProgressBar, prefetch, warm_rich

    # what the summary needs loads while the calls are in flight (once the run reports its first progress: the
    # calls are about to start), and so do the judgments' validator and rich's first-render costs
    calls_start = threading.Event()
    prefetch("rich.console", "rich.table", "judgekit.reporting.tables", "judgekit.stats.aggregate",
             "judgekit.api.reports", after=calls_start, models=("judgekit.io.records:Judgment",), then=warm_rich)
    from judgekit.api import JudgingInterrupted, judge

    console = LazyConsole(stderr_console)
    bar = ProgressBar("judging", console, disabled=args.no_progress, started=calls_start)
    try:
        with warnings_printed(console):
            results = judge(args.responses, args.rubric, args.judge, store=args.store, out=args.out,
                            robustness=args.robustness, batch=args.batch, batch_poll=args.batch_poll,
                            ray=args.ray, workers=args.workers, progress=bar, notify=notifier(console),
                            correction=args.correction, self_grading="refuse" if args.no_self_grading else "warn",
                            self_aliases=args.self_alias, **judge_options(args))
    except JudgingInterrupted as stop:
        return print_interrupted(stop.results, console)
    return print_run(results, console, max_cost=args.max_cost, robustness_out=args.robustness,
                     correction=args.correction)
