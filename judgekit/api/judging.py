"""``judgekit.judge`` and ``judgekit.api.demo``: judge responses with a rubric, and the :class:`Results` they
return (``judgekit judge`` and ``judgekit demo`` print them)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.api._util import (
    JudgekitWarning,
    as_path,
    check_number,
    check_records_out,
    check_suffix,
    check_writable,
    correction_arg,
    names,
    new_store_cleanup,
    shown_while_running,
    validated,
)
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment, Response
from judgekit.judging.rubric import Rubric

if TYPE_CHECKING:
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.runner import RunOptions, RunReport
    from judgekit.reporting.markdown import DemoSummary

DEFAULT_STORE = Path("judgekit-store.sqlite")


class JudgingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`judge` (or :func:`demo`): no results file was written, every call that finished is
    in the store (the same call again resumes). ``results`` holds what this run got (incomplete)."""

    def __init__(self, results: Results) -> None:
        super().__init__("interrupted")
        self.results = results


@dataclass
class Results:
    """The judgments of one run (or of a results file, see :meth:`read`) and how they were obtained.

    Conventions: one :class:`~judgekit.io.records.Judgment` per response and judge (or per response for a
    panel); ``scores`` and ``overall`` are the rubric's 1-5 values reduced over samples; ``passed`` is the
    rubric's pass rule (e.g. ``overall >= 3``) and None when the judgment is unscored (a parse failure is never
    a score). Means and pass rates are over scored judgments only; pass-rate intervals are 95% Wilson.
    """

    judgments: list[Judgment]
    criteria: list[str]
    run: RunReport | None = None  # the runner's accounting; None for results read from a file
    rubric: Rubric | None = None
    judges: list[JudgeSpec] = field(default_factory=list)
    store: Path | None = None
    out: Path | None = None
    _robustness: dict[tuple[str, int, int, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, path: str | Path) -> Results:
        """The results file ``path`` (.jsonl, .csv or .parquet, as ``judgekit judge --out`` writes it); the
        criteria are the score names in the order they first appear."""
        from judgekit.io.dataio import read_judgments

        judgments = read_judgments(path)
        return cls(judgments=judgments, criteria=list(dict.fromkeys(c for j in judgments for c in j.scores)),
                   out=Path(path))

    def __len__(self) -> int:
        return len(self.judgments)

    def __repr__(self) -> str:
        scored = sum(j.status == "scored" for j in self.judgments)
        return (f"Results({len(self.judgments)} judgments, {scored} scored, criteria {self.criteria}"
                + (f", {self.calls_made} calls made, {self.calls_cached} read from the store" if self.run else "")
                + ")")

    # ---- the run's accounting (0 / False for results read from a file) ----------------------------------
    def _get(self, name: str, default: Any = 0) -> Any:
        return getattr(self.run, name) if self.run is not None else default

    @property
    def calls_made(self) -> int:
        """Judge calls this run made (and paid for); 0 when everything was read from the store."""
        return int(self._get("calls_made"))

    @property
    def calls_cached(self) -> int:
        """Judge calls read from the store instead of made."""
        return int(self._get("calls_cached"))

    @property
    def cost(self) -> float:
        """USD spent by this run's calls (priced calls only, see :attr:`unpriced_calls`)."""
        return float(self._get("cost", 0.0))

    @property
    def unpriced_calls(self) -> int:
        """Calls made to a judge without a price (a self-hosted model): not in :attr:`cost`."""
        return int(self._get("unpriced_calls"))

    @property
    def tokens_in(self) -> int:
        """Prompt tokens of this run's calls."""
        return int(self._get("tokens_in"))

    @property
    def tokens_out(self) -> int:
        """Reply tokens of this run's calls."""
        return int(self._get("tokens_out"))

    @property
    def wall_s(self) -> float:
        """Seconds the run took."""
        return float(self._get("wall_s", 0.0))

    @property
    def transport_failures(self) -> int:
        """Samples that got no reply after every retry (unscored, retried by the same call again)."""
        return int(self._get("transport_failures"))

    @property
    def failure_reasons(self) -> Any:
        """A Counter of the transport failures' reasons."""
        from collections import Counter

        return self._get("failure_reasons", Counter())

    @property
    def budget_reached(self) -> bool:
        """The ``max_cost`` budget stopped new calls (the same call again continues)."""
        return bool(self._get("budget_reached", False))

    @property
    def interrupted(self) -> bool:
        """Ctrl-C stopped the run (see :class:`JudgingInterrupted`)."""
        return bool(self._get("interrupted", False))

    @property
    def complete(self) -> bool:
        """No budget stop, no transport failure, no interruption (the CLI's exit code 0)."""
        return not (self.budget_reached or self.transport_failures or self.interrupted)

    @property
    def truncated(self) -> int:
        """Judgments for which a local judge read only the head of a long answer."""
        return sum(j.truncated for j in self.judgments)

    @property
    def self_grading(self) -> list[dict[str, Any]]:
        """Judges that graded their own model (:mod:`judgekit.judging.selfgrading`), as recorded on the
        judgments: ``{"judge", "model", "judgments"}`` per pair; empty when none."""
        from judgekit.judging.selfgrading import recorded_pairs

        return recorded_pairs(self.judgments)

    # ---- views ------------------------------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per judgment: id, model, condition, category, judge, status, reason,
        one column per criterion score (named as the criterion; NaN when unscored), overall, passed (nullable
        boolean), one column per flag, then truncated, tokens, cost, latency_s, calls, cached_calls, rubric,
        rubric_version, temperature, seed and rationale. Needs pandas (a judgekit dependency)."""
        try:
            import pandas as pd
        except ImportError:
            raise JudgekitError("Results.to_pandas needs pandas: pip install 'pandas>=2'") from None
        fixed = ["id", "model", "condition", "category", "judge", "status", "reason"]
        flag_names = list(dict.fromkeys(f for j in self.judgments for f in j.flags))
        taken = set(fixed) | {"overall", "passed"}
        score_col = {c: c if c not in taken else f"scores.{c}" for c in self.criteria}
        taken |= set(score_col.values())
        flag_col = {f: f if f not in taken else f"flags.{f}" for f in flag_names}
        tail = ["truncated", "tokens_in", "tokens_out", "cost", "latency_s", "calls", "cached_calls", "rubric",
                "rubric_version", "temperature", "seed", "rationale"]
        rows = []
        for j in self.judgments:
            row: dict[str, Any] = {k: getattr(j, k) for k in fixed}
            row.update({score_col[c]: j.scores.get(c, math.nan) for c in self.criteria})
            row["overall"] = math.nan if j.overall is None else j.overall
            row["passed"] = j.passed
            row.update({flag_col[f]: j.flags.get(f) for f in flag_names})
            row.update({k: getattr(j, k) for k in tail})
            rows.append(row)
        columns = [*fixed, *score_col.values(), "overall", "passed", *flag_col.values(), *tail]
        df = pd.DataFrame(rows, columns=columns)
        df["passed"] = df["passed"].astype("boolean")
        for col in flag_col.values():
            df[col] = df[col].astype("boolean")
        return df

    def summary(self, by: Sequence[str] = ("model",)) -> list[dict[str, Any]]:
        """The rows of the summary table grouped by ``by`` (default per model; also ``category``, ``condition``,
        ``judge``, ``id``), as the CLI prints them: the group's fields, n, scored, unscored, the mean of each
        criterion and of overall over scored judgments (NaN when none), passed, the pass rate over scored
        judgments and its 95% Wilson interval ``pass_ci`` (low, high)."""
        from judgekit.stats.aggregate import summarize

        rows = []
        for g in summarize(self.judgments, tuple(by), self.criteria):
            row: dict[str, Any] = dict(zip(by, g.key, strict=True))
            row.update(n=g.n, scored=g.scored, unscored=g.unscored)
            row.update({c: g.means.get(c, math.nan) for c in self.criteria})
            row.update(overall=g.mean_overall, passed=g.passed, pass_rate=g.pass_rate, pass_ci=tuple(g.pass_ci))
            rows.append(row)
        return rows

    def robustness(self, baseline: str = "clean", *, n_boot: int = 2000, seed: int = 0,
                   correction: str = "holm") -> list[Any] | None:
        """The clean-vs-degraded comparison (:func:`judgekit.stats.robustness.compare_conditions`: paired mean
        and pass-rate differences per model, criterion and category, bootstrap 95% CIs, Wilcoxon/McNemar), or
        None when the judgments do not hold the ``baseline`` condition (an empty condition counts as clean)
        and another one. ``correction`` (``"holm"``, ``"bh"``, ``"none"``) adjusts the p-values of all the rows
        together (``p_adjusted``; :mod:`judgekit.stats.multiple`)."""
        conditions = {j.condition or "clean" for j in self.judgments}
        if len(conditions) < 2 or (baseline or "clean") not in conditions:
            return None
        key = (baseline, n_boot, seed, correction)
        if key not in self._robustness:
            from judgekit.stats.robustness import compare_conditions

            self._robustness[key] = compare_conditions(self.judgments, self.criteria, baseline=baseline,
                                                       n_boot=n_boot, seed=seed, correction=correction)
        return list(self._robustness[key])

    def write(self, path: str | Path) -> Path:
        """Write the judgments as ``judgekit judge --out`` does (.jsonl, .csv or .parquet, atomically)."""
        from judgekit.io.dataio import write_records

        path = Path(path)
        check_records_out(path, "path")
        write_records(path, self.judgments)
        return path

    def write_robustness(self, path: str | Path, baseline: str = "clean", *, correction: str = "holm") -> bool:
        """Write :meth:`robustness` to ``path`` (.json rows or .md tables) as ``judgekit judge --robustness``
        does (p-values adjusted by ``correction``); False (nothing written) when there is no comparison to make."""
        from judgekit.io.dataio import atomic_write_json, atomic_write_text
        from judgekit.stats.robustness import robustness_markdown, rows_to_dicts

        rows = self.robustness(baseline, correction=correction)
        if rows is None:
            return False
        path = Path(path)
        if path.suffix.lower() == ".json":
            atomic_write_json(path, rows_to_dicts(rows))
        else:
            atomic_write_text(path, robustness_markdown(rows))
        return True


def load_rubric_arg(rubric: str | Path | Rubric) -> Rubric:
    """A :class:`Rubric` as given, or loaded from a YAML file or a shipped rubric's name (robustmad, general)."""
    from judgekit.judging.rubric import load_rubric

    return rubric if isinstance(rubric, Rubric) else load_rubric(rubric)


def responses_of(source: Any) -> list[Response]:
    """Responses from a file (path: .jsonl, .csv or .parquet) or a list of :class:`Response` or dicts (image and
    point-cloud paths relative to the working folder), checked as a file's records are."""
    from judgekit.io.dataio import read_responses

    if isinstance(source, str | Path):
        return read_responses(source)
    from judgekit.io.images import image_problem, resolve_image_path
    if isinstance(source, Response | dict):
        source = [source]
    out: list[Response] = []
    seen: dict[tuple[str, ...], str] = {}
    for i, given in enumerate(source):
        where = f"responses[{i}]"
        if isinstance(given, Response):
            rec = given.model_copy(deep=True)
        elif isinstance(given, dict):
            rec = validated(Response, given, where)
        else:
            raise JudgekitError(f"expected a Response or a dict, got {type(given).__name__}", path=where)
        for name in ("images", "reference_images", "point_clouds"):
            if name == "point_clouds" and rec.point_clouds:
                from judgekit.io.pointclouds import cloud_problem  # numpy: only for items with clouds

                check = cloud_problem
            else:
                check = image_problem
            resolved = []
            for p in getattr(rec, name):
                full = resolve_image_path(Path.cwd(), p)
                problem = check(full)
                if problem is not None:
                    raise JudgekitError(f"{problem}: {p}", path=where, field=name)
                resolved.append(str(full))
            setattr(rec, name, resolved)
        if rec.unique_key in seen:
            setting = f" setting={rec.setting!r}" if rec.setting else ""
            raise JudgekitError(f"duplicate response: id={rec.id!r} model={rec.model!r} condition={rec.condition!r}"
                                f"{setting} already given at {seen[rec.unique_key]}", path=where)
        seen[rec.unique_key] = where
        out.append(rec)
    if not out:
        raise JudgekitError("no responses given")
    return out


def local_spec(model: str, mode: str | None, calibration: str | Path | None, threads: int | None,
               base: JudgeSpec | None = None) -> JudgeSpec:
    """A checked JudgeSpec for a local judge (``base`` with the local options, or a new one); clear errors for
    a non-local model or missing packages. The mode defaults to likelihood for local/default, else rate.
    ``threads`` sets ``$JUDGEKIT_THREADS``."""
    import os

    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends.local import check_local_spec, local_extra, local_name
    from judgekit.local.models import DEFAULT_NAMES

    if not model.startswith("local/"):
        raise JudgekitError(f"'{model}' is not a local judge (local/default or local/PATH)", field="--judge")
    spec = base if base is not None else JudgeSpec(model=model)
    spec.extra = local_extra(mode or ("likelihood" if local_name(model) in DEFAULT_NAMES else "rate"),
                             as_path(calibration))
    check_local_spec(spec)
    if threads:
        os.environ["JUDGEKIT_THREADS"] = str(threads)
    return spec


def judge_specs(judges: Sequence[str], *, api_base: Sequence[str], backend: str, temperature: float, seed: int,
                max_tokens: int, timeout: float, response_format: str, no_images: bool, api_key_env: str | None,
                price_in: float | None, price_out: float | None, local_mode: str | None,
                calibration: str | Path | None, threads: int | None,
                deployments: str | Path | Sequence[Any] | None = None) -> list[JudgeSpec]:
    """One checked JudgeSpec per judge: a local judge's packages, a litellm provider's key, the environment
    variable of the key, all before anything is written.

    Servers: with several judges (a panel), ``api_base`` is one URL for all or one per judge. With ONE judge,
    several ``api_base`` URLs, or ``deployments`` (a YAML file or a list, see
    :func:`judgekit.judging.backends.servers.deployments_of`), are several servers of that judge: each call goes
    to the least busy healthy one (:mod:`judgekit.judging.backends.servers`)."""
    from judgekit.judging.backends import JudgeSpec
    from judgekit.judging.backends.servers import check_distinct, deployment_of, deployments_of

    bases = list(api_base)
    servers: list[Any] = []
    if deployments is not None:
        if bases:
            raise JudgekitError("give the servers with --api-base or with --deployments, not both",
                                field="--deployments")
        if len(judges) != 1:
            raise JudgekitError(f"--deployments lists the servers of one judge, but {len(judges)} --judge are given",
                                field="--deployments")
        servers = deployments_of(deployments)
        bases = [servers[0].api_base]
    elif len(judges) == 1 and len(bases) > 1:  # one judge, several servers of it
        servers = [deployment_of(b, f"--api-base {i + 1}") for i, b in enumerate(bases)]
        check_distinct(servers)
        bases = [servers[0].api_base]
    else:  # one server per judge (or one for all): each URL checked as a server's is, before anything is made
        bases = [deployment_of(b, "--api-base" if len(bases) == 1 else f"--api-base {i + 1}").api_base
                 for i, b in enumerate(bases)]
    if len(bases) not in (0, 1, len(judges)):
        raise JudgekitError(f"give one --api-base for all judges or one per --judge ({len(judges)}); several "
                            "servers of one judge need that judge alone (or --deployments)", field="--api-base")
    specs = []
    for i, model in enumerate(judges):
        base = bases[i] if len(bases) > 1 else (bases[0] if bases else None)
        spec = JudgeSpec(model=model, api_base=base, backend=backend, temperature=temperature,  # type: ignore[arg-type]
                         seed=seed, max_tokens=max_tokens, timeout=timeout,
                         response_format=response_format,  # type: ignore[arg-type]
                         images="no" if no_images else "auto", api_key_env=api_key_env, price_in=price_in,
                         price_out=price_out, deployments=list(servers))
        if model.startswith("local/"):
            spec = local_spec(model, local_mode, calibration, threads, base=spec)
        elif spec.resolved_backend() == "lean" and not base:
            raise JudgekitError("--backend lean needs --api-base", field="--backend")
        elif spec.resolved_backend() == "litellm":
            from judgekit.judging.backends.litellm_backend import check_model

            check_model(model, base, api_key_env=api_key_env)
        spec.api_key()  # fail now, before anything is written, if the variable is missing or empty
        specs.append(spec)
    return specs


def judge(responses: str | Path | Sequence[Response | dict[str, Any]], rubric: str | Path | Rubric,
          judges: str | Sequence[str], *, store: str | Path = DEFAULT_STORE, out: str | Path | None = None,
          concurrency: int = 16, samples: int = 1, reduce: str = "mean", reasks: int = 2, retries: int = 6,
          timeout: float = 120.0, temperature: float = 0.0, seed: int = 0, max_tokens: int = 512,
          response_format: str = "auto", no_images: bool = False, api_base: str | Sequence[str] | None = None,
          deployments: str | Path | Sequence[Any] | None = None, api_key_env: str | None = None,
          backend: str = "auto", rpm: float | None = None,
          tpm: float | None = None, max_cost: float | None = None, price_in: float | None = None,
          price_out: float | None = None, panel_reduce: str = "mean", panel_quorum: int | None = None,
          local_mode: str | None = None, calibration: str | Path | None = None, threads: int | None = None,
          robustness: str | Path | None = None, progress: Callable[[int, int, float], None] | None = None,
          notify: Callable[[str], None] | None = None, batch: bool = False,
          batch_poll: float | None = None, ray: str | None = None, workers: int | None = None,
          correction: str = "holm", self_grading: str = "warn",
          self_aliases: str | Sequence[str] | dict[str, Any] | None = None) -> Results:
    """Judge every response with ``rubric`` by every judge; what ``judgekit judge`` does, without printing.

    ``responses``: a file (.jsonl, .csv, .parquet) or a list of :class:`Response` / dicts. ``rubric``: a YAML
    file, a shipped rubric's name (``robustmad``, ``general``) or a :class:`Rubric`. ``judges``: litellm
    provider strings (``openai/gpt-4o-mini``), ``local/default`` (the embedded offline judge) or
    ``local/PATH``; several make a panel. Every call goes to the SQLite ``store`` as it arrives: the same call
    again reads it instead of paying for it (``Results.calls_made`` is then 0). The options are the flags of
    ``judgekit judge`` (``rpm``/``tpm`` are per-minute limits, ``max_cost`` a USD budget, ``price_in``/
    ``price_out`` USD per million tokens, ``api_base`` one URL or one per judge; for ONE judge, several URLs
    are several servers of it, as are ``deployments``: a YAML file or a list of ``{"api_base": URL, "rpm",
    "tpm", "weight", "max_concurrency"}``; each call goes to the least busy healthy server, and a result is the
    same whichever server answered).

    Every input is checked before anything is written or paid for (:class:`JudgekitError`, naming the file
    and line or the flag). ``out`` (optional) gets the results file, ``robustness`` (optional, .json or .md)
    the clean-vs-degraded comparison when the responses hold a clean and another condition (p-values adjusted by
    ``correction``: ``"holm"``, ``"bh"`` or ``"none"``). ``progress(done,
    total, cost)`` is called as judgments finish (a progress bar that is also a context manager is entered
    while the calls run); ``notify(text)`` gets notes (waiting for another run's claimed calls).

    Returns :class:`Results`: the judgments (pass = the rubric's rule, e.g. ``overall >= 3``; unscored
    judgments have no scores and ``passed`` None) and the run's accounting. A run stopped by the budget or by
    transport failures returns normally with ``Results.complete`` False (the CLI's exit 3); Ctrl-C raises
    :class:`JudgingInterrupted` (a KeyboardInterrupt) and writes no results file.

    ``batch=True`` sends the calls through the provider's batch API (:mod:`judgekit.judging.batch`: the same
    store keys and judgments as a live run, batch prices, and a re-run re-attaches to the batches already
    submitted); ``batch_poll`` is the first wait between polls in seconds (default 30, growing to 10 times it).

    ``ray`` (``"local"``, ``"auto"`` or a cluster address) shards the run over ``workers`` Ray actors (default 2;
    :mod:`judgekit.judging.sharding`): each judges its share into a shard store beside ``store``, which is then
    merged into ``store`` by call key; the judgments and the store are those of a plain run. Needs the extra
    ``pip install 'judgekit[ray]'``.

    Self-grading (:mod:`judgekit.judging.selfgrading`): a judge that is also a model under test (the same name
    once lower-cased, without a provider prefix or a `` [SETTING]`` suffix; or declared by ``self_aliases``,
    ``"JUDGE=MODEL"`` texts or a mapping judge -> model) is warned about once per pair (``self_grading="warn"``,
    a :class:`JudgekitWarning`), refused before anything is written or called (``"refuse"``: a
    :class:`JudgekitError` on ``--judge``) or let be (``"allow"``); in every case each judgment records it
    (``Judgment.self_grading``, :attr:`Results.self_grading`).
    """
    import warnings

    from judgekit.judging.runner import RunOptions

    rubric_obj = load_rubric_arg(rubric)  # every input is checked before anything is written
    resp = responses_of(responses)
    for value, flag, above in ((timeout, "--timeout", True), (temperature, "--temperature", False),
                               (price_in, "--price-in", False), (price_out, "--price-out", False)):
        check_number(value, flag, above=above)
    for count, flag in ((max_tokens, "--max-tokens"), (threads, "--threads")):
        check_number(count, flag, lo=1)
    specs = judge_specs(names(judges), api_base=names(api_base), backend=backend, temperature=temperature,
                        seed=seed, max_tokens=max_tokens, timeout=timeout, response_format=response_format,
                        no_images=no_images, api_key_env=api_key_env, price_in=price_in, price_out=price_out,
                        local_mode=local_mode, calibration=calibration, threads=threads, deployments=deployments)
    from judgekit.judging.selfgrading import check_self_grading, parse_aliases

    aliases = parse_aliases(self_aliases)
    check_self_grading([s.model for s in specs], (r.model for r in resp), aliases, self_grading, JudgekitWarning)
    options = RunOptions(concurrency=concurrency, samples=samples, reduce=reduce,  # type: ignore[arg-type]
                         reasks=reasks, retries=retries, requests_per_minute=rpm, tokens_per_minute=tpm,
                         max_cost=max_cost, panel_reduce=panel_reduce,  # type: ignore[arg-type]
                         panel_quorum=panel_quorum)
    options.validate()
    out_path, robustness_path = as_path(out), as_path(robustness)
    check_records_out(out_path)
    check_suffix(robustness_path, "--robustness", (".json", ".md"))
    check_writable(out_path, "--out")  # before the first paid call, not after the last one
    check_writable(robustness_path, "--robustness")
    correction = correction_arg(correction)
    if samples > 1 and temperature == 0:
        warnings.warn("--samples > 1 at temperature 0: samples will mostly agree", JudgekitWarning, stacklevel=2)
    if batch_poll is not None and not batch:
        raise JudgekitError("needs --batch", field="--batch-poll")
    check_number(batch_poll, "--batch-poll", above=True)
    if batch and any(s.model.startswith("local/") for s in specs):
        raise JudgekitError("a local judge has no batch API", field="--batch")
    if workers is not None and ray is None:
        raise JudgekitError("needs --ray", field="--workers")
    check_number(workers, "--workers", lo=1)
    if ray is not None:
        if batch:
            raise JudgekitError("--ray and --batch cannot be combined", field="--ray")
        from judgekit.judging.sharding import import_ray

        import_ray()  # a clear error (how to install it) before anything is written
    return run_judges(resp, rubric_obj, specs, options, store=Path(store), out=out_path,
                      robustness=robustness_path, progress=progress, notify=notify, batch=batch,
                      batch_poll=batch_poll, ray=ray, workers=workers, correction=correction, self_aliases=aliases)


def run_judges(responses: list[Response], rubric: Rubric, specs: list[JudgeSpec], options: RunOptions, *,
               store: Path, out: Path | None, robustness: Path | None = None,
               progress: Callable[[int, int, float], None] | None = None,
               notify: Callable[[str], None] | None = None, batch: bool = False,
               batch_poll: float | None = None, ray: str | None = None, workers: int | None = None,
               correction: str = "holm", self_aliases: Sequence[tuple[str, str]] = ()) -> Results:
    """Run checked judges on checked responses (see :func:`judge`); write ``out`` and ``robustness``.
    ``batch``: through the provider's batch API (:mod:`judgekit.judging.batch`), polling every ``batch_poll``
    seconds at first (default 30). Each judgment records its self-grading judges (by name or by the declared
    (judge, model) ``self_aliases``)."""
    from judgekit.io.dataio import write_records
    from judgekit.judging.runner import Runner
    from judgekit.judging.store import Store

    with new_store_cleanup(store), Store(store) as st:
        if batch:  # provider batches: no claims, the store's batches table instead (see judging.batch)
            from judgekit.judging.batch import DEFAULT_POLL_S, BatchRunner

            runner: Runner = BatchRunner(responses, rubric, specs, st, options, progress, notify=notify,
                                         poll=batch_poll or DEFAULT_POLL_S)
        elif ray is not None:  # sharded over Ray actors, their shard stores merged into this one (judging.sharding)
            from judgekit.judging.sharding import ShardedRun

            runner = ShardedRun(responses, rubric, specs, store, options, progress,  # type: ignore[assignment]
                                notify=notify, address=ray, workers=workers)
        else:
            runner = Runner(responses, rubric, specs, st, options, progress, notify=notify)  # claims: see runner
        with shown_while_running(progress):
            try:
                report = runner.run_sync()
            except KeyboardInterrupt:  # before the run's own handler was in place (planning, loading)
                report = runner.report
                report.interrupted = True
    from judgekit.judging.selfgrading import mark_self_grading

    mark_self_grading(report.judgments, self_aliases)  # recorded whatever the policy (``judge(self_grading=)``)
    results = Results(judgments=report.judgments, criteria=list(rubric.criterion_names), run=report, rubric=rubric,
                      judges=list(specs), store=store, out=out)
    if report.interrupted:  # outside the store's cleanup: an interrupted first run keeps its store
        raise JudgingInterrupted(results)
    if out is not None:
        write_records(out, report.judgments)
    if robustness is not None:
        results.write_robustness(robustness, correction=correction)
    return results


def demo(out: str | Path | None = None, *, judge: str = "local/default", local_mode: str | None = None,
         threads: int | None = None, progress: Callable[[int, int, float], None] | None = None,
         notify: Callable[[str], None] | None = None, forge: bool = False) -> tuple[Results, DemoSummary]:
    """What ``judgekit demo`` does: judge the shipped RobustMAD-style sample (24 items x 3 pretend models) with
    a local judge on the shipped ``robustmad`` rubric (concurrency 32), writing ``OUT/results.jsonl``,
    ``OUT/summary.md``, the HTML report ``OUT/report.html`` and the store ``OUT/store.sqlite`` (the same call
    again reads every judgment from it).
    Returns the :class:`Results` and the summary (its text and the models ranked by mean overall score).
    ``forge``: the FORGE-style sample (8 part questions x 2 pretend models) on the shipped ``forge`` rubric, whose
    fact checks (part number gating the pass, a toleranced bore, the components) run without a judge call;
    ``out`` defaults to ``reports/demo-forge`` then (else ``reports/demo``).
    Ctrl-C raises :class:`JudgingInterrupted`."""
    from judgekit.io.dataio import read_responses
    from judgekit.judging.rubric import load_rubric
    from judgekit.judging.runner import RunOptions
    from judgekit.reporting.markdown import write_demo_summary
    from judgekit.sample_data import forge_responses, rubric_path, sample_responses

    folder = Path(out if out is not None else "reports/demo-forge" if forge else "reports/demo")
    rubric = load_rubric(rubric_path("forge" if forge else "robustmad"))
    responses = read_responses(forge_responses() if forge else sample_responses())
    spec = local_spec(judge, local_mode, None, threads)
    if folder.exists() and not folder.is_dir():
        raise JudgekitError("exists and is not a folder", path=folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = run_judges(responses, rubric, [spec], RunOptions(concurrency=32), store=folder / "store.sqlite",
                         out=folder / "results.jsonl", progress=progress, notify=notify)
    summary = write_demo_summary(folder / "summary.md", results.run, rubric, spec,
                                 "forge_sample" if forge else "robustmad_sample")
    from judgekit.api.reports import report

    report(results, html=folder / "report.html", responses=responses, rubric=rubric)
    return results, summary
