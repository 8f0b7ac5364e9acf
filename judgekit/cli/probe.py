"""``judgekit probe``: bias probes of a judge - verbosity, injection, self-consistency, image sensitivity
(:func:`judgekit.api.probe.probe`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    _positive_int,
    add_correction_flag,
    add_judge_flags,
    judge_options,
    notifier,
    rubric_help,
    stderr_console,
    stdout_console,
    warnings_printed,
)


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    p = sub.add_parser("probe", help="bias probes of a judge: verbosity, injection, self-consistency, image",
                       description="Re-judge a sample of answers (default 100, stratified by model) after controlled "
                                   "changes - padded with content-free sentences (+50%%, +100%% length), with an "
                                   "instruction to the judge appended (four phrasings, one imitating the prompt's "
                                   "delimiters), re-sampled, with the degraded image instead of the clean one - and "
                                   "report per probe the shift of every criterion and of overall, the pass verdicts "
                                   "that flip, bootstrap 95%% intervals and paired tests. Calls go through the store "
                                   "of 'judgekit judge': use the same --store and judge settings and the unchanged "
                                   "answers are read from it.")
    p.add_argument("responses", type=Path, help="responses file (.jsonl, .csv or .parquet)")
    p.add_argument("--rubric", type=Path, required=True,
                   help=rubric_help())
    add_judge_flags(p)
    p.add_argument("--out", type=Path, required=True, metavar="PROBES.json",
                   help="the probes file (JSON; 'judgekit report --probes' shows it in the judge card)")
    p.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables as Markdown")
    p.add_argument("--probes", metavar="LIST",
                   help="comma-separated probes (default all): verbosity, injection, self-consistency, image")
    p.add_argument("--n", type=_positive_int, default=100,
                   help="answers to probe, stratified by model (default 100)")
    p.add_argument("--consistency-samples", type=_positive_int, default=5, metavar="K",
                   help="samples of each unchanged answer for self-consistency (default 5, at least 2)")
    p.add_argument("--injections", metavar="LIST",
                   help="shipped injection phrasings to use (default all): ignore-rubric, authority, "
                        "fake-delimiters, fake-verdict")
    p.add_argument("--injection-text", action="append", default=[], metavar="TEXT",
                   help="an injection phrasing of your own, appended to the answer ({max} = the top score); "
                        "repeatable")
    p.add_argument("--baseline", default="clean",
                   help="the clean condition: answers are drawn from it, and the image probe swaps its images "
                        "for a degraded condition's (default clean; empty counts as clean)")
    p.add_argument("--boot", type=_positive_int, default=2000, help="bootstrap resamples (default 2000)")
    add_correction_flag(p, "the probes table (the family: every probe's Wilcoxon test of overall and McNemar test "
                           "of its flips)")
    p.add_argument("--store", type=Path, default=Path("judgekit-store.sqlite"),
                   help="SQLite store of every call (default judgekit-store.sqlite)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from judgekit.api.probe import ProbeInterrupted, probe
    from judgekit.cli._common import ProgressBar
    from judgekit.reporting.probes import consistency_text, criteria_table

    console = stderr_console()
    bar = ProgressBar("probing", console, disabled=args.no_progress)
    try:
        with warnings_printed(console):
            rep = probe(args.responses, args.rubric, args.judge, out=args.out, markdown=args.markdown,
                        probes=args.probes, n=args.n, consistency_samples=args.consistency_samples,
                        injections=args.injections, custom_injections=args.injection_text, baseline=args.baseline,
                        store=args.store, boot=args.boot, correction=args.correction, progress=bar,
                        notify=notifier(console), **judge_options(args))
    except ProbeInterrupted as stop:
        console.print(f"[yellow]interrupted[/yellow]: {stop.calls_made} calls finished in this run and are stored; "
                      "re-run the same command to resume")
        return EXIT_INTERRUPTED
    out = stdout_console()
    doc = rep.to_dict()
    out.print(rep.table())
    out.print(criteria_table(doc))
    text = consistency_text(doc)
    if text:
        out.print(text)
    for note in rep.notes:
        out.print(f"note: {note}")
    acc = rep.accounting
    out.print(f"{rep.sample['answers']} answers probed -> {args.out}; store {args.store}; {acc.get('calls_made', 0)} "
              f"calls made, {acc.get('calls_cached', 0)} read from the store; cost ${acc.get('cost', 0.0):.4f}")
    if args.markdown is not None:
        out.print(f"tables -> {args.markdown}")
    if not rep.complete:
        console.print("[yellow]incomplete[/yellow]: some calls got no reply or the budget was reached; their answers "
                      "count as unscored; re-run the same command to continue")
        return EXIT_INCOMPLETE
    return 0
