"""What the commands share: exit codes, argparse types, consoles, the progress bar, and the printing of a
judging run (``judgekit judge`` and ``judgekit demo``). Nothing here imports a heavy package at import time."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


def rubric_help() -> str:
    """The help text of a rubric argument, naming the shipped rubrics (read from the installed package)."""
    from judgekit.sample_data import shipped_rubrics

    return f"rubric YAML file, or the name of a shipped rubric ({', '.join(shipped_rubrics())})"


def add_judge_flags(j) -> None:  # type: ignore[no-untyped-def]
    """The flags that say which judge to call and how (``judgekit judge`` and ``judgekit probe`` share them):
    --judge, the local judge's options, the server, the client's limits and the sampling."""
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
                   help="base URL of an OpenAI-compatible server: one for all judges, or one per --judge; with "
                        "one --judge, repeat it for several servers of that judge (each call goes to the least "
                        "busy healthy one; a failing server is cooled down)")
    j.add_argument("--deployments", type=Path, metavar="FILE.yaml",
                   help="the servers of the (one) judge as a YAML list: '- api_base: URL' with optional rpm, tpm, "
                        "weight, max_concurrency per server (instead of --api-base)")
    j.add_argument("--backend", choices=["auto", "lean", "litellm"], default="auto",
                   help="lean = judgekit's own pooled HTTP client for OpenAI-compatible servers; auto picks lean when "
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


def judge_options(args: argparse.Namespace) -> dict[str, Any]:
    """The values of the flags :func:`add_judge_flags` adds (all but ``--judge``), keyed by their destinations,
    which are the keyword arguments ``judgekit.judge`` and ``judgekit.probe`` take."""
    flags = argparse.ArgumentParser(add_help=False)
    add_judge_flags(flags)
    return {a.dest: getattr(args, a.dest) for a in flags._actions if a.dest != "judge"}


def stdout_console():  # type: ignore[no-untyped-def]
    """The console for results: the terminal's width, or 200 columns when the output is piped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def stderr_console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


class LazyConsole:
    """A rich console made on first use: a judging run that prints no note or warning before its summary never
    waits for rich's import at its start (:func:`prefetch` imports it while the calls run)."""

    def __init__(self, make: Any = stderr_console) -> None:
        self._make = make
        self._console: Any = None

    def real(self) -> Any:
        """The rich console itself (made now if need be)."""
        if self._console is None:
            self._console = self._make()
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def prefetch(*modules: str, after: Any = None, models: Sequence[str] = (), then: Any = None) -> None:
    """Import ``modules`` in a daemon thread: what a command needs only after its calls (rich's tables, the summary)
    loads while the calls are in flight, when the process would otherwise wait on the network. With ``after`` (a
    :class:`threading.Event`) the thread first waits for it and ~50 ms more: set when the calls start, so that the
    imports do not take turns on the interpreter with the work before the first calls and the sending of the first
    ones. ``models`` (``"module:Class"``, pydantic models built with ``defer_build``) get their validators built
    first, so that the first of them made during or after the calls does not block the event loop for it (if the
    run gets there first, it builds it itself and this finds it built); then ``then()`` runs, if given. An
    import or a warm-up that fails here is left to fail again, visibly, where it is used for real."""
    import importlib
    import threading
    import time

    def load() -> None:
        if after is not None:
            after.wait()
            time.sleep(0.05)
        try:
            for qualified in models:  # first: a run may make its first judgment ~0.1 s after its first call
                module, _, cls = qualified.partition(":")
                getattr(importlib.import_module(module), cls).model_rebuild()
            for name in modules:
                importlib.import_module(name)
            if then is not None:
                then()
        except Exception:  # reported where it is imported or used for real
            return

    threading.Thread(target=load, name="judgekit-prefetch", daemon=True).start()


def warm_rich() -> None:
    """Render a small table and a highlighted line into a throw-away console: the first real print then finds
    rich's regular expressions compiled, its emoji table loaded and its measuring caches warm (~20 ms of a judging
    command's summary, done in :func:`prefetch`'s thread while the calls are in flight)."""
    import io

    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=120, color_system="truecolor", force_terminal=True)
    table = Table(title="by model", title_justify="left")
    table.add_column("model")
    table.add_column("pass rate [95% CI]", justify="right", no_wrap=True)
    table.add_row("warm-up", "100.0% [99.8-100.0]")
    console.print(table)
    console.print("12 judgments -> out.jsonl; store s.sqlite; 1 calls made, 0 read from the store; cost $0.0000; 1.0 s")


def notifier(console):  # type: ignore[no-untyped-def]
    """``notify(text)`` for the API: a note printed as it is (no markup)."""
    return lambda note: console.print(note, markup=False, highlight=False)


@contextlib.contextmanager
def warnings_printed(console) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Print the API's :class:`~judgekit.api.JudgekitWarning` as ``warning: ...`` the moment it is raised."""
    import warnings

    from judgekit.api import JudgekitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", JudgekitWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            if issubclass(category, JudgekitWarning):
                console.print(f"[yellow]warning:[/yellow] {message}")
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


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


class ProgressBar:
    """A rich progress bar as the API's ``progress``: called with (done, total[, cost]); entered (shown) while
    the calls run."""

    def __init__(self, label: str, console, *, disabled: bool, cost: bool = True,  # type: ignore[no-untyped-def]
                 started: Any = None) -> None:
        self.progress: Any = None
        self.started = started  # a threading.Event set at the first call of the bar (the run has planned)
        if disabled:  # --no-progress: nothing to show, and rich.progress is not imported
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if isinstance(console, LazyConsole):  # rich's Live needs the console itself
            console = console.real()

        columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TextColumn("{task.fields[eta]}")]
        if cost:
            self.progress = Progress(*columns, TextColumn("cost ${task.fields[cost]}"), console=console,
                                     disable=disabled, transient=False)
            task = self.progress.add_task("judge", total=None, rate="", eta="", cost="0.0000")
        else:
            self.progress = Progress(*columns, console=console, disable=disabled)
            task = self.progress.add_task("generate", total=None, rate="", eta="")
        self._update = _progress_callback(self.progress, task)

    def __call__(self, done: int, total: int, cost: float = 0.0) -> None:
        if self.started is not None and not self.started.is_set():
            self.started.set()
        if self.progress is not None:
            self._update(done, total, cost)

    def __enter__(self) -> ProgressBar:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)


def _fmt(x: float, digits: int = 2) -> str:
    from judgekit.reporting.tables import fmt

    return fmt(x, digits)


def print_summary(judgments: Sequence, criteria: Sequence[str], console) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Tables per model, per model x category and per model x condition (the latter two when present)."""
    from judgekit.reporting.tables import summary_tables

    for table in summary_tables(judgments, criteria):
        console.print(table)


def print_local_figures(specs, console) -> None:  # type: ignore[no-untyped-def]
    """Every report of the default local judge states how far it agrees with people."""
    if not any(spec.model.startswith("local/") for spec in specs):
        return  # no local judge: nothing to state, and the local modules are not worth loading
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


def print_interrupted(results, console) -> int:  # type: ignore[no-untyped-def]
    console.print(f"[yellow]interrupted[/yellow]: {results.calls_made} calls finished in this run and are "
                  f"stored ({results.calls_made + results.calls_cached} in all for these responses); "
                  "re-run the same command to resume")
    return EXIT_INTERRUPTED


def server_table(per_server: dict[str, dict[str, Any]]):  # type: ignore[no-untyped-def]
    """A table of the run's calls per server (``RunReport.per_server``): calls, failures, mean latency, the share
    of the calls; the URLs with any credentials masked."""
    from rich.table import Table

    from judgekit.io.redact import mask_url

    total = sum(s["calls"] for s in per_server.values()) or 1
    table = Table(title="calls per server")
    for name in ("server", "calls", "share", "failures", "mean latency s"):
        table.add_column(name, justify="left" if name == "server" else "right")
    for url, s in per_server.items():
        table.add_row(mask_url(url) or url, str(s["calls"]), f"{100 * s['calls'] / total:.0f}%", str(s["failures"]),
                      f"{s['latency_s']:.3f}")
    return table


def add_correction_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--correction holm|bh|none`` (default holm): the multiple-comparison adjustment of ``what``'s
    p-values (:mod:`judgekit.stats.multiple`); a bad value exits 2 naming the flag (argparse choices)."""
    parser.add_argument("--correction", choices=("holm", "bh", "none"), default="holm",
                        help=f"multiple-comparison adjustment of the p-values of {what}: holm (Holm-Bonferroni, "
                             "family-wise error rate; the default), bh (Benjamini-Hochberg, false discovery rate) "
                             "or none; the tables show 'p adj' beside p, star a test when p adj < 0.05 and state "
                             "the family (the tests adjusted together)")


def print_run(results, console, *, max_cost: float | None = None, robustness_out: Path | None = None,  # type: ignore[no-untyped-def]
              correction: str = "holm") -> int:
    """Print a finished judging run (the tables, the robustness comparison with its p-values adjusted by
    ``correction``, the accounting); its exit code."""
    from judgekit.api.reports import no_robustness_note

    out = stdout_console()
    print_summary(results.judgments, results.criteria, out)
    rows = results.robustness(correction=correction)
    if rows is None:
        if robustness_out is not None:
            out.print(no_robustness_note(results.judgments, "clean"))
    else:
        from judgekit.stats.robustness import robustness_table

        out.print(robustness_table(rows, metrics=("overall", "pass")))
        if robustness_out is not None:
            out.print(f"robustness -> {robustness_out}")
    if results.unpriced_calls and not results.cost:
        cost = "unknown (no prices for these judges; see --price-in/--price-out)"
    else:
        cost = f"${results.cost:.4f}" + (f" (+{results.unpriced_calls} unpriced calls)"
                                         if results.unpriced_calls else "")
    out.print(f"{len(results.judgments)} judgments -> {results.out}; store {results.store}; "
              f"{results.calls_made} calls made, {results.calls_cached} read from the store; "
              f"tokens {results.tokens_in} in / {results.tokens_out} out; cost {cost}; {results.wall_s:.1f} s")
    per_server = getattr(results.run, "per_server", None) if results.run is not None else None
    if per_server and len(per_server) > 1:
        out.print(server_table(per_server))
    print_local_figures(results.judges, out)
    if results.truncated:
        out.print(f"{results.truncated} judgment(s) read only the head of a long answer (truncated: true in the "
                  "results; a local judge reads the first tokens of an answer, see README 'Local judges')")
    if results.budget_reached:
        console.print(f"[yellow]incomplete[/yellow]: the --max-cost budget (${max_cost}) was reached; "
                      "re-run to continue")
        return EXIT_INCOMPLETE
    if results.transport_failures:
        reasons = results.failure_reasons
        reason, count = reasons.most_common(1)[0] if reasons else ("?", 0)
        console.print(f"[yellow]incomplete[/yellow]: {results.transport_failures} sample(s) got no reply after "
                      f"all retries; most common: {reason!r} ({count}); see 'reason' in the results; re-run the "
                      "same command to retry them", markup=True, highlight=False)
        return EXIT_INCOMPLETE
    return 0
