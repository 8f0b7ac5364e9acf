"""The ``judgekit`` command: a thin layer that parses flags and calls the Python API.

Exit codes: 0 done; 2 bad input or setup (the message names the file and line, the flag, or the cause - an
unknown provider, a refused key, a server that does not answer; nothing is written); 3 incomplete (the cost
budget was reached or some samples failed in transport: re-run the same command to resume); 4 the machine
failed (disk full, I/O error: every finished call is stored); 130 interrupted (everything finished so far is
in the store); 141 the reader of the output went away (``| head``).
Heavy imports (litellm, scipy, pyarrow) happen inside the commands, never at ``--help`` time.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from judgekit import __version__
from judgekit.io.errors import JudgekitError

EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_SYSTEM = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def _int_at_least(lo: int):  # type: ignore[no-untyped-def]
    """An argparse type: an integer >= ``lo`` (argparse names the flag as typed in its error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected {'0 or more' if lo == 0 else f'at least {lo}'}, got {value}")
        return value

    return parse


def _number(lo: float | None = None, *, above: bool = False):  # type: ignore[no-untyped-def]
    """An argparse type: a finite number, >= ``lo`` (or > ``lo`` when ``above``); nan and inf are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if lo is not None and (value <= lo if above else value < lo):
            raise argparse.ArgumentTypeError(f"expected a number {'above' if above else 'of at least'} {lo:g}, "
                                             f"got {text}")
        return value

    return parse


_positive_int = _int_at_least(1)
_count = _int_at_least(0)
_positive = _number(0, above=True)
_non_negative = _number(0)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="judgekit", description="Score open-ended answers with LLM judges.")
    p.add_argument("--version", action="version", version=f"judgekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    rp.add_argument("--json", type=Path, metavar="OUT", help="also write the robustness rows as JSON")
    rp.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables as Markdown")

    d = sub.add_parser("demo", help="judge the shipped sample dataset offline with the embedded judge",
                       description="Score the shipped RobustMAD-style sample (24 items x 3 pretend models) with the "
                                   "embedded offline judge (local/default) on rubrics/robustmad.yaml; write the "
                                   "results and a Markdown summary to --out. Re-running reuses the store.")
    d.add_argument("--out", type=Path, default=Path("reports/demo"), help="output folder (default reports/demo)")
    d.add_argument("--judge", default="local/default", metavar="MODEL",
                   help="a local judge (default local/default)")
    d.add_argument("--local-mode", choices=["likelihood", "rate"], default=None,
                   help="local scoring mode (default: likelihood for local/default, rate otherwise)")
    d.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads (default: all cores)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")

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

    pt = sub.add_parser("perturb", help="write degraded copies of images (motion blur, low light, ...) + manifest",
                        description="Degrade every image of INPUT (a folder of images or an items file) under each "
                                    "condition and write the copies, OUT/manifest.jsonl and, for an items file, "
                                    "OUT/items.jsonl (clean + degraded items, ready for 'judgekit generate'). "
                                    "Operations: motion_blur, low_light, defocus_blur, gaussian_noise, jpeg; "
                                    "severity ladders in the README.")
    pt.add_argument("input", type=Path, help="a folder of images, or an items file (.jsonl, .csv, .parquet)")
    pt.add_argument("--ops", metavar="OPS",
                    help="comma-separated conditions; '+' composes operations; parameters as op:key=value, "
                         "e.g. motion_blur,low_light:noise=1,jpeg+gaussian_noise or motion_blur:angle=30")
    pt.add_argument("--severity", default="3", metavar="S",
                    help="severity 1-5: one (3), a range (1-5) or a list (1,3,5); every condition at each "
                         "(default 3)")
    pt.add_argument("--preset", choices=["robustmad"],
                    help="robustmad: RobustMAD's exact degradations, one per image pair (low light or "
                         "horizontal 12-pixel motion blur, chosen with seed 42), query and reference alike")
    pt.add_argument("--opencv-filter2d", action="store_true",
                    help="robustmad preset: blur with RobustMAD's original cv2.filter2D call (bit-identical to "
                         "their files made with the same OpenCV build; ~10x slower) instead of the exact formula")
    pt.add_argument("--seed", type=int, default=None,
                    help="seed of random operations (default 0) and of the preset's assignment (default 42)")
    pt.add_argument("--format", dest="fmt", choices=["same", "png", "jpg"], default="same",
                    help="format of the degraded files (default: the source's)")
    pt.add_argument("--out", type=Path, required=True, help="output folder")
    pt.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                    help="worker threads (default: all cores)")

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

    m = sub.add_parser("mcq", help="score multiple-choice answers (MMAD / RobustMAD MCQ): accuracy per subtask",
                       description="Read the letter each answer chose (never guessing: an unparsable answer counts "
                                   "as wrong and is reported as a separate rate) and report accuracy per model, "
                                   "condition, dataset and subtask, balanced accuracy for anomaly discrimination "
                                   "and MMAD's averages (mean over subtasks, then over datasets).")
    m.add_argument("responses", type=Path, help="responses file whose records have 'options' and a letter "
                                                "'reference'")
    m.add_argument("--mmad-aliases", action="store_true",
                   help="merge MMAD's 'Object Structure' and 'Object Details' into 'Object Analysis', as its "
                        "script does")
    m.add_argument("--json", type=Path, metavar="OUT",
                   help="also write the report, with every answer's outcome, as JSON")
    m.add_argument("--markdown", type=Path, metavar="OUT", help="also write the tables as Markdown")

    r = sub.add_parser("rubric", help="rubric tools")
    rsub = r.add_subparsers(dest="rubric_command", required=True, metavar="SUBCOMMAND")
    rc = rsub.add_parser("check", help="validate a rubric file")
    rc.add_argument("file", type=Path, help="rubric YAML file, or the name of a shipped rubric (robustmad, general)")

    e = sub.add_parser("export", help="export every stored call of a store")
    e.add_argument("store", type=Path)
    e.add_argument("--out", type=Path, required=True, help=".jsonl, .csv or .parquet")
    return p


def _cmd_rubric_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from judgekit.judging.rubric import load_rubric

    rubric = load_rubric(args.file)
    keys = ", ".join(rubric.reply_keys)
    Console().print(f"[green]ok[/green] {args.file}: rubric '{rubric.name}' version {rubric.version}; "
                    f"reply keys: {keys}; overall: {rubric.overall.method}; pass: {rubric.pass_rule}; "
                    f"flags: {', '.join(f'{k} = {v}' for k, v in rubric.flags.items()) or 'none'}; "
                    f"{len(rubric.examples)} example(s)")
    return 0


def _judge_specs(args: argparse.Namespace) -> list:  # type: ignore[type-arg]
    from judgekit.judging.backends import JudgeSpec

    bases = args.api_base or []
    if len(bases) not in (0, 1, len(args.judge)):
        raise JudgekitError(f"give one --api-base for all judges or one per --judge ({len(args.judge)})",
                            field="--api-base")
    specs = []
    for i, model in enumerate(args.judge):
        base = bases[i] if len(bases) > 1 else (bases[0] if bases else None)
        spec = JudgeSpec(model=model, api_base=base, backend=args.backend, temperature=args.temperature,
                         seed=args.seed, max_tokens=args.max_tokens, timeout=args.timeout,
                         response_format=args.response_format, images="no" if args.no_images else "auto",
                         api_key_env=args.api_key_env, price_in=args.price_in, price_out=args.price_out)
        if model.startswith("local/"):
            spec = _local_spec(model, args.local_mode, args.calibration, args.threads, base=spec)
        elif spec.resolved_backend() == "lean" and not base:
            raise JudgekitError("--backend lean needs --api-base", field="--backend")
        elif spec.resolved_backend() == "litellm":
            from judgekit.judging.backends.litellm_backend import check_model

            check_model(model, base, api_key_env=args.api_key_env)
        spec.api_key()  # fail now, before anything is written, if the variable is missing or empty
        specs.append(spec)
    return specs


def _fmt(x: float, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _groupings(judgments: Sequence) -> list[tuple[str, ...]]:  # type: ignore[type-arg]
    """The summary tables' groupings: per model, and per model x category / x condition when they vary."""
    groupings: list[tuple[str, ...]] = [("model",)]
    if any(j.category for j in judgments):
        groupings.append(("model", "category"))
    if len({j.condition for j in judgments}) > 1:
        groupings.append(("model", "condition"))
    return groupings


def print_summary(judgments: Sequence, criteria: Sequence[str], console) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Tables per model, per model x category and per model x condition (the latter two when present)."""
    from rich.table import Table

    from judgekit.stats.aggregate import summarize

    for by in _groupings(judgments):
        table = Table(title="by " + " x ".join(by), title_justify="left")
        for b in by:
            table.add_column(b)
        table.add_column("n", justify="right")
        table.add_column("unscored", justify="right")
        for c in criteria:
            table.add_column(c, justify="right")
        table.add_column("overall", justify="right")
        table.add_column("pass rate [95% CI]", justify="right", no_wrap=True)
        for g in summarize(judgments, by, criteria):
            rate = "-" if g.scored == 0 else (
                f"{100 * g.pass_rate:.1f}% [{100 * g.pass_ci[0]:.1f}-{100 * g.pass_ci[1]:.1f}]")
            table.add_row(*g.key, str(g.n), str(g.unscored), *(_fmt(g.means.get(c, math.nan)) for c in criteria),
                          _fmt(g.mean_overall), rate)
        console.print(table)


def _cmd_judge(args: argparse.Namespace) -> int:
    from rich.console import Console

    from judgekit.io.dataio import read_responses
    from judgekit.judging.rubric import load_rubric
    from judgekit.judging.runner import RunOptions

    console = Console(stderr=True)
    # Validate every input before anything is written.
    rubric = load_rubric(args.rubric)
    responses = read_responses(args.responses)
    specs = _judge_specs(args)
    options = RunOptions(concurrency=args.concurrency, samples=args.samples, reduce=args.reduce,
                         reasks=args.reasks, retries=args.retries, requests_per_minute=args.rpm,
                         tokens_per_minute=args.tpm, max_cost=args.max_cost, panel_reduce=args.panel_reduce,
                         panel_quorum=args.panel_quorum)
    options.validate()
    if args.out.suffix.lower() not in (".jsonl", ".ndjson", ".csv", ".parquet", ".pq"):
        raise JudgekitError(f"unknown output type '{args.out.suffix}' (use .jsonl, .csv or .parquet)",
                            field="--out")
    _check_suffix(args.robustness, "--robustness", (".json", ".md"))
    _check_writable(args.out, "--out")  # before the first paid call, not after the last one
    _check_writable(args.robustness, "--robustness")
    if args.samples > 1 and args.temperature == 0:
        console.print("[yellow]warning:[/yellow] --samples > 1 at temperature 0: samples will mostly agree")

    _, code = _run_judging(responses, rubric, specs, options, store_path=args.store, out_path=args.out,
                           no_progress=args.no_progress, max_cost=args.max_cost, robustness_out=args.robustness)
    return code


def _check_writable(path: Path | None, flag: str) -> None:
    """Refuse, before any work is done or paid for, an output path that cannot be written: a folder, a folder
    that is a file, a read-only file, or a place without write permission (read-only filesystem). Creates
    nothing: a missing folder is created only when the output is written."""
    import os
    import tempfile

    if path is None:
        return
    if path.is_dir():
        raise JudgekitError("is a folder; give a file name", path=path, field=flag)
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise JudgekitError(f"cannot write here: {parent} is not a folder", path=path, field=flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise JudgekitError("cannot write: the file is read-only", path=path, field=flag)
    try:  # a real probe: access() is not the whole truth (ACLs, read-only mounts seen by root)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".judgekit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise JudgekitError(f"cannot write in {parent}: {exc.strerror}", path=path, field=flag) from None


def _check_suffix(path: Path | None, flag: str, suffixes: tuple[str, ...]) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise JudgekitError(f"expected a {' or '.join(suffixes)} file", path=path, field=flag)


def _print_robustness(judgments, criteria, console, *, out_path: Path | None = None, baseline: str = "clean",  # type: ignore[no-untyped-def]
                      all_criteria: bool = False, n_boot: int = 2000, seed: int = 0) -> list:  # type: ignore[type-arg]
    """When ``judgments`` hold the baseline and another condition: print the robustness table (overall and
    pass rows, or every criterion) and write it to ``out_path`` (.json rows or .md tables). Returns the rows."""

    from judgekit.io.dataio import atomic_write_json, atomic_write_text
    from judgekit.stats.robustness import compare_conditions, robustness_markdown, robustness_table, rows_to_dicts

    conditions = {j.condition or "clean" for j in judgments}
    if len(conditions) < 2 or (baseline or "clean") not in conditions:
        if out_path is not None:
            console.print(_no_robustness_note(judgments, baseline))
        return []
    rows = compare_conditions(judgments, criteria, baseline=baseline, n_boot=n_boot, seed=seed)
    console.print(robustness_table(rows, metrics=None if all_criteria else ("overall", "pass")))
    if out_path is not None:
        if out_path.suffix.lower() == ".json":
            atomic_write_json(out_path, rows_to_dicts(rows))
        else:
            atomic_write_text(out_path, robustness_markdown(rows))
        console.print(f"robustness -> {out_path}")
    return rows


@contextlib.contextmanager
def _new_store_cleanup(path: Path) -> Iterator[None]:
    """Remove the store at ``path`` (with its -wal/-shm) when this command created it and leaves it without a
    single stored call because it stopped on an error (bad setup, nothing answering): a failed first try leaves
    no empty database behind. A store that existed before is never touched."""
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed and path.is_file():
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:  # no call, and no claim of another run that may have opened the new store meanwhile
                    empty = all(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] == 0
                                for t in ("calls", "claims"))
                finally:
                    db.close()
            except sqlite3.Error:
                empty = False
            if empty:
                for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    with contextlib.suppress(OSError):
                        p.unlink()
        raise


def _progress_callback(progress, task):  # type: ignore[no-untyped-def]
    """``on_progress(done, total, cost)`` for a rich progress bar: the rate and the time left are this run's own
    (answers read from the store at the start count for neither), so a local judge that finishes a batch of
    16 at once after a slow model load shows 0.2/s and some minutes left, not rich's 0:00:01 guess."""
    import time

    started: dict[str, tuple[float, int] | None] = {"t": None}

    def on_progress(done: int, total: int, cost: float = 0.0) -> None:
        now = time.perf_counter()
        if started["t"] is None:
            started["t"] = (now, done)
        t0, d0 = started["t"]
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else 0.0
        if rate > 0 and total:
            left = round((total - done) / rate)
            eta = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left"
        else:
            eta = "-:--:-- left"
        progress.update(task, completed=done, total=total, rate=f"{rate:.1f}/s", eta=eta, cost=f"{cost:.4f}")

    return on_progress


def _run_judging(responses, rubric, specs, options, *, store_path: Path, out_path: Path,  # type: ignore[no-untyped-def]
                 no_progress: bool, max_cost: float | None = None, label: str = "judging",
                 robustness_out: Path | None = None):
    """Run the judges with a progress bar, write the results, print the tables; (report, exit code)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from judgekit.io.dataio import write_records
    from judgekit.judging.runner import Runner
    from judgekit.judging.store import Store

    console = Console(stderr=True)
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"),
                        TextColumn("cost ${task.fields[cost]}"), console=console,
                        disable=no_progress, transient=False)
    task = progress.add_task("judge", total=None, rate="", eta="", cost="0.0000")
    on_progress = _progress_callback(progress, task)

    with _new_store_cleanup(store_path), Store(store_path) as store:
        runner = Runner(responses, rubric, specs, store, options, on_progress,
                        notify=lambda note: console.print(note, markup=False, highlight=False))  # claims, see runner
        with progress:
            try:
                report = runner.run_sync()
            except KeyboardInterrupt:  # before the run's own handler was in place (planning, loading)
                report = runner.report
                report.interrupted = True
        if report.interrupted:
            console.print(f"[yellow]interrupted[/yellow]: {report.calls_made} calls finished in this run and are "
                          f"stored ({report.calls_made + report.calls_cached} in all for these responses); "
                          "re-run the same command to resume")
            return None, EXIT_INTERRUPTED
    write_records(out_path, report.judgments)
    out = Console(width=None if sys.stdout.isatty() else 200)
    print_summary(report.judgments, rubric.criterion_names, out)
    _print_robustness(report.judgments, rubric.criterion_names, out, out_path=robustness_out)
    if report.unpriced_calls and not report.cost:
        cost = "unknown (no prices for these judges; see --price-in/--price-out)"
    else:
        cost = f"${report.cost:.4f}" + (f" (+{report.unpriced_calls} unpriced calls)" if report.unpriced_calls else "")
    out.print(f"{len(report.judgments)} judgments -> {out_path}; store {store_path}; "
              f"{report.calls_made} calls made, {report.calls_cached} read from the store; "
              f"tokens {report.tokens_in} in / {report.tokens_out} out; cost {cost}; {report.wall_s:.1f} s")
    _print_local_figures(specs, out)
    truncated = sum(j.truncated for j in report.judgments)
    if truncated:
        out.print(f"{truncated} judgment(s) read only the head of a long answer (truncated: true in the results; "
                  "a local judge reads the first tokens of an answer, see README 'Local judges')")
    if report.budget_reached:
        console.print(f"[yellow]incomplete[/yellow]: the --max-cost budget (${max_cost}) was reached; "
                      "re-run to continue")
        return report, EXIT_INCOMPLETE
    if report.transport_failures:
        reason, count = report.failure_reasons.most_common(1)[0] if report.failure_reasons else ("?", 0)
        console.print(f"[yellow]incomplete[/yellow]: {report.transport_failures} sample(s) got no reply after "
                      f"all retries; most common: {reason!r} ({count}); see 'reason' in the results; re-run the "
                      "same command to retry them", markup=True, highlight=False)
        return report, EXIT_INCOMPLETE
    return report, 0


def _print_local_figures(specs, console) -> None:  # type: ignore[no-untyped-def]
    """Every report of the default local judge states how far it agrees with people."""
    from judgekit.judging.backends.local import local_name
    from judgekit.local.models import DEFAULT_NAMES

    for spec in specs:
        if spec.model.startswith("local/") and local_name(spec.model) in DEFAULT_NAMES \
                and spec.extra.get("local_mode") == "likelihood" and not spec.extra.get("calibration"):
            from judgekit.local.validate import figures_line, shipped_figures

            fig = shipped_figures()
            if fig:
                console.print(f"{spec.model} measured agreement with people (judgekit validate, cross-validated): "
                              + figures_line(fig["cross_validated"]))


def _local_spec(model: str, mode: str | None, calibration: Path | None, threads: int | None,  # type: ignore[no-untyped-def]
                base=None):
    """A checked JudgeSpec for a local judge (``base`` with the local options, or a new one); clear errors for
    a non-local model or missing packages. The mode defaults to likelihood for local/default, else rate."""
    import os

    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends.local import check_local_spec, local_extra, local_name
    from judgekit.local.models import DEFAULT_NAMES

    if not model.startswith("local/"):
        raise JudgekitError(f"'{model}' is not a local judge (local/default or local/PATH)", field="--judge")
    spec = base if base is not None else JudgeSpec(model=model)
    spec.extra = local_extra(mode or ("likelihood" if local_name(model) in DEFAULT_NAMES else "rate"), calibration)
    check_local_spec(spec)
    if threads:
        os.environ["JUDGEKIT_THREADS"] = str(threads)
    return spec


def _cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from judgekit.io.dataio import read_responses
    from judgekit.judging.rubric import load_rubric
    from judgekit.judging.runner import RunOptions
    from judgekit.reporting.markdown import write_demo_summary
    from judgekit.sample_data import rubric_path, sample_responses

    rubric = load_rubric(rubric_path("robustmad"))
    responses = read_responses(sample_responses())
    spec = _local_spec(args.judge, args.local_mode, None, args.threads)
    if args.out.exists() and not args.out.is_dir():
        raise JudgekitError("exists and is not a folder", path=args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    report, code = _run_judging(responses, rubric, [spec], RunOptions(concurrency=32),
                                store_path=args.out / "store.sqlite", out_path=args.out / "results.jsonl",
                                no_progress=args.no_progress, label="demo")
    if report is None:
        return code
    summary = write_demo_summary(args.out / "summary.md", report, rubric, spec)
    out = Console()
    out.print(f"ranking by mean overall score: {' > '.join(summary.ranking)}")
    out.print(f"results: {args.out / 'results.jsonl'}\nsummary: {args.out / 'summary.md'}\n"
              f"store:   {args.out / 'store.sqlite'} (a re-run reads every judgment from it)")
    return code


def _cmd_validate(args: argparse.Namespace) -> int:

    from rich.console import Console
    from rich.table import Table

    from judgekit.local.validate import DIMS, TARGETS, validate

    spec = _local_spec(args.judge, args.local_mode, args.calibration, args.threads)
    for path, flag in ((args.summeval, "--summeval"), (args.nq, "--nq")):
        if path is not None and not path.is_file():
            raise JudgekitError("file not found", path=path, field=flag)
    if args.json is not None and args.json.suffix.lower() != ".json":
        raise JudgekitError("expected a .json file", path=args.json, field="--json")
    _check_writable(args.json, "--json")
    console = Console(stderr=True)

    def progress(name: str, done: int, total: int) -> None:
        console.print(f"  {name}: {done}/{total}", end="\r")

    from judgekit.judging.backends.local import local_name

    fig = validate(local_name(spec.model), str(spec.extra["local_mode"]), articles=args.articles,
                   questions=args.questions, calibration=str(args.calibration) if args.calibration else None,
                   summeval_path=args.summeval, nq_path=args.nq, progress=progress)
    s, n = fig["summeval"], fig["nq"]
    table = Table(title=f"{spec.model} ({fig['mode']} mode) vs people; {fig['rows']['summeval']} SummEval summaries "
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
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(table)
    out.print(f"{fig['seconds_per_judgment']['nq']:.2f} s per NQ judgment, "
              f"{fig['seconds_per_judgment']['summeval']:.2f} s per SummEval judgment (batched per item; "
              f"{fig['threads']} threads, {fig['device']}, {fig['dtype']}); model load {fig['load_s']:.1f} s; "
              f"peak memory {fig['peak_rss_mb']:.0f} MiB")
    if fig["mode"] == "likelihood" and not args.calibration:
        out.print("The shipped calibration was fitted on these rows, so these figures are in-sample; "
                  "cross-validated figures: python bench/validate_local.py report.")
    if args.json is not None:
        from judgekit.io.dataio import atomic_write_json

        atomic_write_json(args.json, fig)
        out.print(f"figures -> {args.json}")
    return 0


def _cmd_perturb(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from judgekit.perturbation.files import parse_conditions, parse_severities, run_perturb

    if args.preset and args.ops:
        raise JudgekitError("give --ops or --preset, not both", field="--preset")
    if not args.preset and not args.ops:
        raise JudgekitError("give --ops (e.g. motion_blur,low_light) or --preset robustmad", field="--ops")
    if args.opencv_filter2d and not args.preset:
        raise JudgekitError("--opencv-filter2d applies to --preset robustmad only", field="--opencv-filter2d")
    conditions = None if args.preset else parse_conditions(args.ops, parse_severities(args.severity))
    console = Console(stderr=True)

    def progress(done: int, total: int) -> None:
        if console.is_terminal:
            console.print(f"  {done}/{total} source images", end="\r")

    result = run_perturb(args.input, args.out, conditions=conditions, preset=args.preset, seed=args.seed,
                         fmt=args.fmt, threads=args.threads or os.cpu_count() or 1,
                         robustmad_impl="filter2d" if args.opencv_filter2d else "exact", progress=progress)
    out = Console()
    counts = {c: sum(r["condition"] == c for r in result.rows) for c in result.conditions}
    out.print(f"{len(result.rows)} degraded images from {result.sources} sources in {result.seconds:.1f} s "
              f"({', '.join(f'{c}: {n}' for c, n in counts.items())})")
    out.print(f"manifest: {result.manifest}")
    if result.items is not None:
        out.print(f"items:    {result.items} (clean + degraded; next: judgekit generate)")
    note = result.removal_note()
    if note is not None:
        out.print(note)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from judgekit.generation.candidates import PRESETS, relative_paths, run_generation
    from judgekit.io.dataio import read_items, write_records
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.runner import RunOptions
    from judgekit.judging.store import Store

    items = read_items(args.items)
    if args.out.suffix.lower() not in (".jsonl", ".ndjson", ".csv", ".parquet", ".pq"):
        raise JudgekitError(f"unknown output type '{args.out.suffix}' (use .jsonl, .csv or .parquet)", field="--out")
    _check_writable(args.out, "--out")
    bases = args.api_base or []
    if len(bases) not in (0, 1, len(args.model)):
        raise JudgekitError(f"give one --api-base for all models or one per --model ({len(args.model)})",
                            field="--api-base")
    if args.name and len(args.name) != len(args.model):
        raise JudgekitError("give one --name per --model", field="--name")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise JudgekitError("must be at least 1", field="--max-tokens")
    specs = []
    for i, model in enumerate(args.model):
        base = bases[i] if len(bases) > 1 else (bases[0] if bases else None)
        spec = JudgeSpec(model=model, api_base=base, backend=args.backend, seed=args.seed, timeout=args.timeout,
                         response_format="none", api_key_env=args.api_key_env)
        if model.startswith("local/"):
            from importlib.util import find_spec

            if find_spec("torch") is None or find_spec("transformers") is None:
                raise JudgekitError("local models need torch and transformers: pip install 'judgekit[local]'",
                                    field="--model")
        elif spec.resolved_backend() == "lean" and not base:
            raise JudgekitError("--backend lean needs --api-base", field="--backend")
        elif spec.resolved_backend() == "litellm":
            from judgekit.judging.backends.litellm_backend import check_model

            check_model(model, base, "--model", api_key_env=args.api_key_env)
        spec.api_key()
        specs.append(spec)
    if args.threads:
        os.environ["JUDGEKIT_THREADS"] = str(args.threads)
    options = RunOptions(concurrency=args.concurrency, retries=args.retries, requests_per_minute=args.rpm,
                         tokens_per_minute=args.tpm)
    options.validate()
    console = Console(stderr=True)
    progress = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                        TextColumn("{task.fields[eta]}"), console=console, disable=args.no_progress)
    task = progress.add_task("generate", total=None, rate="", eta="")
    on_progress = _progress_callback(progress, task)
    with _new_store_cleanup(args.store), Store(args.store) as store, progress:
        report = run_generation(items, specs, store, preset=PRESETS[args.preset], options=options,
                                temperature=args.temperature, max_tokens=args.max_tokens,
                                images=not args.no_images, names=args.name,
                                progress=lambda d, t: on_progress(d, t),
                                notify=lambda note: console.print(note, markup=False, highlight=False))
    if report.interrupted:
        console.print(f"[yellow]interrupted[/yellow]: {report.calls_made} answers finished in this run and are "
                      "stored; re-run the same command to resume")
        return EXIT_INTERRUPTED
    write_records(args.out, relative_paths(report.responses, args.out))
    out = Console(width=None if sys.stdout.isatty() else 200)
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


def _cmd_report(args: argparse.Namespace) -> int:

    from rich.console import Console

    from judgekit.io.dataio import atomic_write_json, atomic_write_text, read_judgments
    from judgekit.stats.aggregate import summarize

    _check_suffix(args.json, "--json", (".json",))
    _check_suffix(args.markdown, "--markdown", (".md",))
    _check_writable(args.json, "--json")
    _check_writable(args.markdown, "--markdown")
    judgments = read_judgments(args.results)
    criteria = list(dict.fromkeys(c for j in judgments for c in j.scores))
    out = Console(width=None if sys.stdout.isatty() else 200)
    print_summary(judgments, criteria, out)
    from judgekit.stats.passrate import pass_rate_table, pass_rates

    by: list[str] = ["model"]
    if len({j.judge for j in judgments}) > 1:
        by.append("judge")
    if len({j.condition or "" for j in judgments}) > 1:
        by.append("condition")
    rates = pass_rates(judgments, by=by, n_resamples=args.boot, seed=args.seed)
    rate_table = pass_rate_table(rates, title="Pass rates: Wilson and bootstrap 95% intervals (by "
                                              + " x ".join(by) + ")")
    out.print(rate_table)
    rows = _print_robustness(judgments, criteria, out, out_path=None, baseline=args.baseline,
                             all_criteria=args.all_criteria, n_boot=args.boot, seed=args.seed)
    if args.json is not None:
        from judgekit.stats.passrate import json_ready
        from judgekit.stats.robustness import rows_to_dicts

        summary = {" x ".join(g): [json_ready({"key": dict(zip(g, s.key, strict=True)), "n": s.n, "scored": s.scored,
                                               "unscored": s.unscored, "means": s.means,
                                               "mean_overall": s.mean_overall, "passed": s.passed,
                                               "pass_rate": s.pass_rate, "wilson_ci": list(s.pass_ci)})
                                   for s in summarize(judgments, g, criteria)] for g in _groupings(judgments)}
        payload = {"results_file": str(args.results), "judgments": len(judgments), "criteria": criteria,
                   "summary": summary, "pass_rates": [r.to_dict() for r in rates],
                   "robustness": rows_to_dicts(rows) if rows else [],
                   "robustness_note": "" if rows else _no_robustness_note(judgments, args.baseline)}
        atomic_write_json(args.json, payload)
        out.print(f"report -> {args.json}")
    if args.markdown is not None:
        from judgekit.reporting.markdown import summary_markdown, table_markdown

        text = summary_markdown(judgments, criteria)
        text += "\n## Pass rates\n\n" + table_markdown(rate_table)
        if rows:
            from judgekit.stats.robustness import robustness_markdown

            text += "\n## Robustness: degraded vs clean\n\n" + robustness_markdown(rows)
        atomic_write_text(args.markdown, text)
        out.print(f"tables -> {args.markdown}")
    return 0


def _no_robustness_note(judgments, baseline: str) -> str:  # type: ignore[no-untyped-def]
    conditions = sorted({j.condition or "clean" for j in judgments})
    return (f"no robustness comparison: the results hold no '{baseline}' baseline and other condition(s) "
            f"(conditions: {', '.join(conditions)})")


def _parse_scale(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split("-", 1))
    except ValueError:
        raise JudgekitError(f"expected LO-HI such as 1-5, got {text!r}", field="--scale") from None
    if not lo < hi:
        raise JudgekitError(f"expected LO < HI, got {text!r}", field="--scale")
    return lo, hi


def _cmd_agree(args: argparse.Namespace) -> int:

    from rich.console import Console

    from judgekit.io.dataio import atomic_write_json, atomic_write_text, read_judgments
    from judgekit.io.ratings import join, read_ratings

    _check_suffix(args.json, "--json", (".json",))
    _check_suffix(args.markdown, "--markdown", (".md",))
    _check_writable(args.json, "--json")
    _check_writable(args.markdown, "--markdown")
    scale = (1.0, 5.0)
    if args.rubric is not None:
        from judgekit.judging.rubric import load_rubric

        rubric = load_rubric(args.rubric)
        scale = (float(rubric.scale.min), float(rubric.scale.max))
    if args.scale is not None:
        scale = _parse_scale(args.scale)
    if args.threshold is None:
        args.threshold = 3.0
    judgments = read_judgments(args.judge)
    raters = [r.strip() for r in args.raters.split(",") if r.strip()] if args.raters else None
    default_criterion = (args.criterion or ["overall"])[0]
    ratings = read_ratings(args.human, criterion=default_criterion, raters=raters, scale=scale,
                           exclude=[args.group_by] if args.group_by else [])
    criteria = args.criterion or (sorted(ratings.values) if ratings.layout == "long" else [default_criterion])
    joined = [join(judgments, ratings, c, threshold=args.threshold, scale=scale, judge_label=args.judge_label,
                   level=args.level) for c in criteria]
    judged = [j for j in judgments if args.judge_label is None or j.judge == args.judge_label]
    out = Console(width=None if sys.stdout.isatty() else 200)
    payload: dict = {"judge_file": str(args.judge), "human_file": str(args.human), "criteria": {}}  # type: ignore[type-arg]
    shown: list = []  # type: ignore[type-arg]  # everything printed, in order, for --markdown

    def show(thing) -> None:  # type: ignore[no-untyped-def]
        out.print(thing)
        shown.append(thing)

    for jn in joined:
        groups = _group_values(jn, ratings, args.group_by) if args.group_by else None
        section = _agree_one(jn, judged, groups, scale, args, show)
        payload["criteria"][jn.criterion] = section
    if args.json is not None:
        atomic_write_json(args.json, payload)
        out.print(f"agreement -> {args.json}")
    if args.markdown is not None:
        from judgekit.reporting.markdown import markup_plain, table_markdown

        parts = [f"# Agreement: {args.judge} vs {args.human}", ""]
        parts += [table_markdown(t) if not isinstance(t, str) else markup_plain(t) + "\n" for t in shown]
        atomic_write_text(args.markdown, "\n".join(parts))
        out.print(f"tables -> {args.markdown}")
    return 0


def _group_values(jn, ratings, field: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The ``--group-by`` value of each joined response: a results field or a column of the ratings."""
    builtin = {"id": jn.ids, "model": jn.models, "condition": jn.conditions, "category": jn.categories}
    if field in builtin:
        return list(builtin[field])
    values = []
    for key in jn.keys:
        extra = ratings.extras.get(key, {})
        if field not in extra:
            raise JudgekitError(f"no column {field!r} for response {dict(zip(ratings.key_fields, key, strict=True))} "
                                f"(use id, model, condition, category or a column of the ratings)",
                                path=ratings.path, field="--group-by")
        values.append(extra[field])
    return values


def _agree_one(jn, judged, groups, scale, args, show) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Report one criterion through ``show`` (prints and keeps for --markdown): the statistics table, the
    ceiling, the PPI pass rates; returns the JSON section."""
    import math

    from rich.table import Table

    from judgekit.stats.agreement import agreement_report

    systems = jn.models if len(set(jn.models)) > 1 else None
    rep = agreement_report(jn.judge, jn.humans, scale=scale if jn.kind != "binary" else None, kind=jn.kind,
                           threshold=args.threshold if jn.kind != "binary" else None, groups=groups, systems=systems,
                           n_resamples=args.boot, method=args.ci, seed=args.seed)
    levels = ["sample"] + (["summary"] if groups is not None else []) + (["system"] if systems else [])
    show(f"[bold]{jn.criterion}[/bold]: {rep.n_items} responses rated by {len(jn.raters)} human(s) "
              f"({', '.join(jn.raters)}); {jn.kind} ({'; '.join(jn.notes)}); correlation levels: {', '.join(levels)}"
              + (f" (summary = within each {args.group_by}, averaged)" if groups is not None else "")
              + (f"; {jn.dropped_unscored} rated response(s) left out: the judge's reply was unscored"
                 if jn.dropped_unscored else ""))
    table = Table(title=f"{jn.criterion}: judge vs humans; {100 * rep.confidence:.0f}% intervals: {rep.resampling}",
                  title_justify="left")
    for col in ("statistic", "compares", "level", "value", "CI", "n", "note"):
        table.add_column(col, overflow="fold")

    def fmt(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"

    for e in rep.entries:
        ci = "-" if math.isnan(e.ci_low) else f"[{fmt(e.ci_low)}, {fmt(e.ci_high)}]"
        table.add_row(e.name, e.compares, e.level, fmt(e.value), ci, str(e.n_items), e.note)
    show(table)
    c = rep.ceiling
    if c is not None and len(c.raters) == len(jn.raters):  # default names rater0, rater1, ...: the columns' names
        for r, name in zip(c.raters, jn.raters, strict=True):
            r.rater = name
    if c is not None and c.raters:
        ct = Table(title=f"inter-human ceiling: each human vs the {c.reference} of the others, and the judge against "
                         f"the same references on the same items", title_justify="left")
        ct.add_column("rater")
        ct.add_column("items", justify="right")
        for st in c.statistics:
            ct.add_column(f"{st} human", justify="right")
            ct.add_column(f"{st} judge", justify="right")
        for r in c.raters:
            ct.add_row(r.rater, str(r.n_items), *(x for st in c.statistics for x in (fmt(r.human.get(st, math.nan)),
                                                                                    fmt(r.judge.get(st, math.nan)))))
        ct.add_row("mean (ceiling)", str(c.n_items), *(x for st in c.statistics
                                                      for x in (fmt(c.ceiling.get(st, math.nan)),
                                                                fmt(c.judge_loo.get(st, math.nan)))))
        show(ct)
    section = {"kind": jn.kind, "raters": jn.raters, "notes": jn.notes, "dropped_unscored": jn.dropped_unscored,
               "levels": levels, "group_by": args.group_by, "report": rep.to_dict()}
    ppi = _ppi_rows(jn, judged, args.threshold)
    if ppi:
        from judgekit.stats.passrate import ppi_table

        show(ppi_table(ppi))
        section["ppi"] = [p.to_dict() for p in ppi]
    return section


def _ppi_rows(jn, judged, threshold: float) -> list:  # type: ignore[no-untyped-def,type-arg]
    """Prediction-powered pass rates per model (criterion overall/pass, or binary labels): the judge's pass/fail
    on every scored response of the model in the results, corrected by the human pass/fail (majority label, or
    mean rating >= threshold) on the rated ones. Shown when some model has both rated and unrated responses."""
    import numpy as np

    from judgekit.stats.passrate import ppi_pass_rates

    if jn.kind != "binary" and jn.criterion not in ("overall", "pass"):
        return []
    judge_pass = {(j.id, j.model, j.condition or ""): bool(j.passed) for j in judged
                  if j.status == "scored" and j.passed is not None}
    human_pass: dict[tuple[str, str, str], bool] = {}
    for i, key in enumerate(zip(jn.ids, jn.models, jn.conditions, strict=True)):
        row = jn.humans[i][~np.isnan(jn.humans[i])]
        if row.size == 0 or key not in judge_pass:
            continue
        human_pass[key] = bool(row.mean() > 0.5) if jn.kind == "binary" else bool(row.mean() >= threshold)
    groups = {k: k[1] for k in judge_pass}
    per_model = {m: (sum(1 for k in human_pass if k[1] == m), sum(1 for k in judge_pass if k[1] == m))
                 for m in set(groups.values())}
    if not any(0 < n_h < n_j for n_h, n_j in per_model.values()):
        return []
    return ppi_pass_rates(judge_pass, human_pass, groups)


def _cmd_mcq(args: argparse.Namespace) -> int:

    from rich.console import Console

    from judgekit.generation.mcq import MMAD_SUBTASK_ALIASES, mcq_markdown, print_mcq_report, score_mcq
    from judgekit.io.dataio import atomic_write_json, atomic_write_text, read_responses

    for path, flag, ext in ((args.json, "--json", ".json"), (args.markdown, "--markdown", ".md")):
        if path is not None and path.suffix.lower() != ext:
            raise JudgekitError(f"expected a {ext} file", path=path, field=flag)
        _check_writable(path, flag)
    responses = read_responses(args.responses, check_images=False)
    report = score_mcq(responses, subtask_aliases=MMAD_SUBTASK_ALIASES if args.mmad_aliases else None)
    out = Console(width=None if sys.stdout.isatty() else 200)
    print_mcq_report(report, out)
    if args.json is not None:
        atomic_write_json(args.json, report.to_dict())
        out.print(f"report -> {args.json}")
    if args.markdown is not None:
        atomic_write_text(args.markdown, mcq_markdown(report))
        out.print(f"tables -> {args.markdown}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from judgekit.io.dataio import write_records
    from judgekit.judging.store import Store

    # read-only: a missing file, a folder or a file that is not a judgekit store is refused and left unchanged
    with Store(args.store, readonly=True) as store:
        rows = list(store.iter_calls())
    write_records(args.out, rows)
    print(f"{len(rows)} calls -> {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``judgekit`` console script.

    Run as the console script (``argv`` None), an interrupted command ends with ``os._exit(130)`` once its
    output is flushed and its store closed: a local judge's scoring thread may still be inside the model, and
    the interpreter's normal shutdown would wait for it or abort in it."""
    code = _main(argv)
    if code == EXIT_INTERRUPTED and argv is None:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "judge":
            return _cmd_judge(args)
        if args.command == "rubric":
            return _cmd_rubric_check(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "demo":
            return _cmd_demo(args)
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "perturb":
            return _cmd_perturb(args)
        if args.command == "mcq":
            return _cmd_mcq(args)
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "agree":
            return _cmd_agree(args)
    except JudgekitError as exc:
        print(f"judgekit: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("judgekit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (judgekit agree ... | head): no traceback, the shell's code for it
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's exit flush of stdout must not raise again
        return EXIT_BROKEN_PIPE
    except (OSError, sqlite3.Error) as exc:
        # the machine, not the input: a full disk, an I/O error, a store that cannot be written. Every call that
        # finished is in the store (committed one by one), so a re-run after fixing it pays for nothing again.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"judgekit: error: {what}{where}; every finished call is in the store: fix it and re-run the same "
              "command", file=sys.stderr)
        return EXIT_SYSTEM
    return 1


if __name__ == "__main__":
    sys.exit(main())
