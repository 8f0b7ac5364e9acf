"""``judgekit judge``: judge a responses file with a rubric (:func:`judgekit.api.judge`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import (
    _count,
    _non_negative,
    _positive,
    _positive_int,
    notifier,
    print_interrupted,
    print_run,
    stderr_console,
    warnings_printed,
)


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    j = sub.add_parser("judge", help="judge a responses file with a rubric",
                       description="Judge every response with the rubric; results per response to --out, "
                                   "every call to the --store (a re-run skips what is stored).")
    j.add_argument("responses", type=Path, help="responses file (.jsonl, .csv or .parquet)")
    j.add_argument("--rubric", type=Path, required=True,
                   help="rubric YAML file, or the name of a shipped rubric (robustmad, general)")
    j.add_argument("--judge", action="append", required=True, metavar="MODEL",
                   help="judge model as a litellm provider string (openai/gpt-4o-mini, anthropic/..., "
                        "ollama/...), or local/default (the embedded offline judge), local/PATH (a Hugging Face "
                        "folder or .gguf file run in-process); repeat for a panel")
    j.add_argument("--local-mode", choices=["likelihood", "rate"], default=None,
                   help="local judges: likelihood (calibrated log-probabilities + reference signals; default for "
                        "local/default) or rate (expected rubric digit, G-Eval style; default for other models)")
    j.add_argument("--calibration", type=Path, metavar="JSON",
                   help="local likelihood judges: calibration file (default: the shipped one)")
    j.add_argument("--threads", type=_positive_int, metavar="N",
                   help="local judges: CPU threads (default: $JUDGEKIT_THREADS or all cores)")
    j.add_argument("--api-base", action="append", metavar="URL",
                   help="base URL of an OpenAI-compatible server (one for all judges, or one per --judge)")
    j.add_argument("--backend", choices=["auto", "lean", "litellm"], default="auto",
                   help="lean = pooled aiohttp client for OpenAI-compatible servers; auto picks lean when "
                        "--api-base is given with an openai/ model (default: auto)")
    j.add_argument("--api-key-env", metavar="VAR",
                   help="name of the environment variable holding the API key (the key is never written)")
    j.add_argument("--concurrency", type=_positive_int, default=16, help="calls in flight (default 16)")
    j.add_argument("--samples", type=_positive_int, default=1, help="samples per judgment (default 1)")
    j.add_argument("--reduce", choices=["mean", "median", "mode"], default="mean",
                   help="how samples are reduced (default mean)")
    j.add_argument("--reasks", type=_count, default=2,
                   help="re-asks after an invalid reply before a sample is unscored (default 2)")
    j.add_argument("--retries", type=_count, default=6,
                   help="retries on 429/5xx/timeouts/dropped connections, with back-off (default 6)")
    j.add_argument("--timeout", type=_positive, default=120.0, help="seconds per call (default 120)")
    j.add_argument("--temperature", type=_non_negative, default=0.0, help="judge temperature (default 0)")
    j.add_argument("--seed", type=int, default=0, help="judge seed; sample k uses seed+k (default 0)")
    j.add_argument("--max-tokens", type=_positive_int, default=512, help="max tokens of a judge reply (default 512)")
    j.add_argument("--response-format", choices=["auto", "json_schema", "json_object_schema", "json_object", "none"],
                   default="auto",
                   help="constrain the reply with the rubric's JSON schema: json_schema (OpenAI form), "
                        "json_object_schema (llama-cpp-python's form); auto tries them in that order, then "
                        "none, as the server rejects them (default auto)")
    j.add_argument("--no-images", action="store_true", help="do not attach images to the judge prompt")
    j.add_argument("--rpm", type=_positive, help="requests per minute limit (per run)")
    j.add_argument("--tpm", type=_positive, help="tokens per minute limit (per run, estimated before each call)")
    j.add_argument("--max-cost", type=_positive, metavar="USD", help="stop starting new calls once spent")
    j.add_argument("--price-in", type=_non_negative, metavar="USD_PER_M", help="price per million input tokens")
    j.add_argument("--price-out", type=_non_negative, metavar="USD_PER_M", help="price per million output tokens")
    j.add_argument("--panel-reduce", choices=["mean", "median", "mode"], default="mean",
                   help="how a panel's judgments are combined (default mean)")
    j.add_argument("--panel-quorum", type=_positive_int,
                   help="judges that must score for a panel verdict (default: a majority)")
    j.add_argument("--store", type=Path, default=Path("judgekit-store.sqlite"),
                   help="SQLite store of every call (default judgekit-store.sqlite)")
    j.add_argument("--out", type=Path, default=Path("results.jsonl"),
                   help="results file, .jsonl, .csv or .parquet (default results.jsonl)")
    j.add_argument("--robustness", type=Path, metavar="OUT",
                   help="when the responses hold a clean and degraded conditions, also write the robustness "
                        "comparison (paired differences, bootstrap CIs, Wilcoxon/McNemar) as .json or .md")
    j.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import JudgingInterrupted, judge
    from judgekit.cli._common import ProgressBar

    console = stderr_console()
    bar = ProgressBar("judging", console, disabled=args.no_progress)
    try:
        with warnings_printed(console):
            results = judge(args.responses, args.rubric, args.judge, store=args.store, out=args.out,
                            concurrency=args.concurrency, samples=args.samples, reduce=args.reduce,
                            reasks=args.reasks, retries=args.retries, timeout=args.timeout,
                            temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens,
                            response_format=args.response_format, no_images=args.no_images,
                            api_base=args.api_base, api_key_env=args.api_key_env, backend=args.backend,
                            rpm=args.rpm, tpm=args.tpm, max_cost=args.max_cost, price_in=args.price_in,
                            price_out=args.price_out, panel_reduce=args.panel_reduce,
                            panel_quorum=args.panel_quorum, local_mode=args.local_mode,
                            calibration=args.calibration, threads=args.threads, robustness=args.robustness,
                            progress=bar, notify=notifier(console))
    except JudgingInterrupted as stop:
        return print_interrupted(stop.results, console)
    return print_run(results, console, max_cost=args.max_cost, robustness_out=args.robustness)
