"""``judgekit generate``: the models under test answer every item (:func:`judgekit.api.generate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    _count,
    _non_negative,
    _positive,
    _positive_int,
    notifier,
    stderr_console,
    stdout_console,
)


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    g = sub.add_parser("generate", help="ask the models under test every item; write a responses file",
                       description="Ask each --model every item of ITEMS (images inline) and write RESPONSES for "
                                   "'judgekit judge'. Every answer goes to the --store as it arrives; a re-run "
                                   "asks only for the missing ones. Multiple-choice items (with 'options') are "
                                   "asked greedily for the letter alone (10 new tokens).")
    g.add_argument("items", type=Path, help="items file (.jsonl, .csv, .parquet), e.g. OUT/items.jsonl of "
                                            "'judgekit perturb'")
    g.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="model under test as a litellm provider string (openai/..., hosted_vllm/...), or "
                        "local/default (the embedded text-only model); repeat for several")
    g.add_argument("--name", action="append", metavar="NAME",
                   help="name written as the responses' 'model' (one per --model; default: the model string)")
    g.add_argument("--api-base", action="append", metavar="URL",
                   help="base URL of an OpenAI-compatible server (one for all models, or one per --model)")
    g.add_argument("--backend", choices=["auto", "lean", "litellm"], default="auto",
                   help="as for 'judgekit judge' (default auto)")
    g.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    g.add_argument("--preset", choices=["plain", "robustmad"], default="plain",
                   help="plain: temperature 0, 512 tokens, the question as is; robustmad: temperature 0.2, "
                        "<= 100 new tokens, answer in <= 50 words without bullets, parentheses or slashes "
                        "(default plain)")
    g.add_argument("--temperature", type=_non_negative, help="override the preset's temperature for open questions")
    g.add_argument("--max-tokens", type=_positive_int, help="override the preset's max new tokens for open questions")
    g.add_argument("--seed", type=int, default=0, help="seed sent with every request (default 0)")
    g.add_argument("--no-images", action="store_true", help="ask without the images (text-only trials)")
    g.add_argument("--shots", default="0", metavar="0|K|1+",
                   help="MMAD's settings: K normal template images of the item's product before the query "
                        "(chosen deterministically, seeded by the item id), or 1+ for the one most similar to the "
                        "query (SSIM - Bhattacharyya distance of colour histograms); default 0")
    g.add_argument("--templates", type=Path, metavar="DIR",
                   help="normal template images, one sub-folder per product (default: the items marked "
                        "\"meta\": {\"normal\": true}); an item's product is meta.product, else its category")
    g.add_argument("--knowledge", type=Path, metavar="FILE",
                   help="per-product domain knowledge added to the prompt (MMAD's domain_knowledge.json format)")
    g.add_argument("--shots-cache", type=Path, metavar="DIR",
                   help="folder of the cached retrieval features (default STORE.shots)")
    g.add_argument("--concurrency", type=_positive_int, default=16, help="calls in flight (default 16)")
    g.add_argument("--retries", type=_count, default=6, help="retries on transient faults (default 6)")
    g.add_argument("--timeout", type=_positive, default=120.0, help="seconds per call (default 120)")
    g.add_argument("--rpm", type=_positive, help="requests per minute limit")
    g.add_argument("--tpm", type=_positive, help="tokens per minute limit")
    g.add_argument("--store", type=Path, default=Path("judgekit-store.sqlite"),
                   help="SQLite store (default judgekit-store.sqlite; may be the judging store)")
    g.add_argument("--out", type=Path, required=True, help="responses file to write (.jsonl, .csv, .parquet)")
    g.add_argument("--threads", type=_positive_int, metavar="N", help="local models: CPU threads")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import GenerationInterrupted, generate
    from judgekit.cli._common import ProgressBar

    console = stderr_console()
    bar = ProgressBar("generating", console, disabled=args.no_progress, cost=False)
    try:
        report = generate(args.items, args.model, out=args.out, store=args.store, names=args.name,
                          api_base=args.api_base, backend=args.backend, api_key_env=args.api_key_env,
                          preset=args.preset, temperature=args.temperature, max_tokens=args.max_tokens,
                          seed=args.seed, no_images=args.no_images, concurrency=args.concurrency,
                          retries=args.retries, timeout=args.timeout, rpm=args.rpm, tpm=args.tpm,
                          threads=args.threads, progress=bar, notify=notifier(console), shots=args.shots,
                          templates=args.templates, knowledge=args.knowledge, shots_cache=args.shots_cache)
    except GenerationInterrupted as stop:
        console.print(f"[yellow]interrupted[/yellow]: {stop.report.calls_made} answers finished in this run and are "
                      "stored; re-run the same command to resume")
        return EXIT_INTERRUPTED
    out = stdout_console()
    out.print(f"{len(report.responses)} responses -> {args.out}; store {args.store}; {report.calls_made} calls made, "
              f"{report.calls_cached} read from the store; tokens {report.tokens_in} in / {report.tokens_out} out; "
              f"{report.empty} empty, {report.truncated} cut off at max tokens; {report.wall_s:.1f} s")
    if report.failures:
        for item_id, model, reason in report.failures[:5]:
            console.print(f"  no answer: item {item_id!r}, {model}: {reason}", markup=False, highlight=False)
        from collections import Counter

        from judgekit.judging.runner import _reason_kind

        (reason, count), = Counter(_reason_kind(r) for _, _, r in report.failures).most_common(1)
        console.print(f"  most common: {reason!r} ({count})", markup=False, highlight=False)
        console.print(f"[yellow]incomplete[/yellow]: {len(report.failures)} item(s) got no answer after all retries "
                      "and are not in the responses file; re-run the same command to retry them")
        return EXIT_INCOMPLETE
    return 0
