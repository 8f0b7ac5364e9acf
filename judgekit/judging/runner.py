"""The judge runner: asyncio with bounded concurrency, rate limits, retries with back-off, re-asks on
invalid replies, repeated samples, judge panels, a cost budget, and the store as the only state.

Vocabulary:
- a *call* is one request to a judge (stored as one row);
- a *sample* is one independent judgment of one response by one judge: its first call plus any re-asks
  (follow-up turns that say what was wrong with the previous reply), at most ``reasks + 1`` calls;
- a *judgment* reduces a judge's samples for one response (mean, median or mode); a *panel* judgment
  reduces the judgments of several judges for one response.
Transport faults (429, 5xx, timeouts, dropped connections) are retried up to ``retries`` times with
exponential back-off and full jitter (or the server's Retry-After); they are not calls, since no reply
arrived, and a sample that exhausts them is unscored with the error as reason and is retried by a re-run.

Runs sharing a store (see :mod:`judgekit.judging.store`, claims): a sample's key is claimed before its first call,
in chunks of the queue ahead (one transaction per ``concurrency`` samples, see :class:`ClaimScheduler`). A
sample that another live run holds is deferred: once this run's other work is done it waits, polling the
store every 0.5 s, and takes the holder's stored attempts as read from the store (not as calls made), or
claims and judges the sample itself when the holder's claim ends without a settled result. So two runs on
one file divide the work and never both pay for a key, and two runs on different files never wait.

What a failed call means for the run, Ctrl-C and one call with its retries are in :mod:`judgekit.judging.control`,
the claims in :mod:`judgekit.judging.claims` (both shared with candidate generation); their names
(:class:`RunAborted`, :class:`RunControl`, :func:`call_with_retries`, :class:`ClaimScheduler`, ...) stay
importable from this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment, Response, SampleResult, entry_name
from judgekit.judging.backends import Backend, ChatRequest, JudgeSpec, PermanentError, TransientError, make_backend
from judgekit.judging.claims import ClaimScheduler
from judgekit.judging.control import CONNECT_LIMIT as CONNECT_LIMIT
from judgekit.judging.control import INTERRUPT_GRACE_S as INTERRUPT_GRACE_S
from judgekit.judging.control import RunAborted, RunControl, _limiter, _reason_kind, call_with_retries
from judgekit.judging.merge import record_identity
from judgekit.judging.parse import ReplyError, parse_reply
from judgekit.judging.prompt import PROMPT_VERSION, build_messages, reask_message
from judgekit.judging.rubric import Rubric
from judgekit.judging.store import Store, StoredCall, call_keys, settings_text

Reduce = Literal["mean", "median", "mode"]
NOT_RUN_BUDGET = "not judged: the --max-cost budget was reached (re-run to continue)"
NOT_RUN_STOPPED = "not judged: the run was stopped (re-run to continue)"


@dataclass
class RunOptions:
    """How the runner behaves. ``panel_quorum`` defaults to a majority of the panel's judges."""

    concurrency: int = 16
    samples: int = 1
    reduce: Reduce = "mean"
    reasks: int = 2
    retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_cost: float | None = None
    panel_reduce: Reduce = "mean"
    panel_quorum: int | None = None

    def validate(self) -> None:
        if self.concurrency < 1:
            raise JudgekitError("must be at least 1", field="--concurrency")
        if self.samples < 1:
            raise JudgekitError("must be at least 1", field="--samples")
        if self.reasks < 0 or self.retries < 0:
            raise JudgekitError("must be 0 or more", field="--reasks" if self.reasks < 0 else "--retries")
        for name, flag in (("requests_per_minute", "--rpm"), ("tokens_per_minute", "--tpm"),
                           ("max_cost", "--max-cost")):
            value = getattr(self, name)
            if value is not None and not value > 0:  # also refuses nan
                raise JudgekitError("must be positive", field=flag)


@dataclass
class RunReport:
    """What a run did: the judgments (one per response, or per response and judge without a panel) and
    the accounting of this run (calls made now vs. read from the store)."""

    judgments: list[Judgment]
    calls_made: int = 0
    calls_cached: int = 0
    cost: float = 0.0
    unpriced_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    transport_failures: int = 0
    budget_reached: bool = False
    wall_s: float = 0.0
    per_judge: dict[str, list[Judgment]] = field(default_factory=dict)
    waited: str | None = None  # the note shown when this run waited for samples claimed by another run
    failure_reasons: Counter[str] = field(default_factory=Counter)  # transport failures by reason
    interrupted: bool = False  # Ctrl-C: the judgments are incomplete; every finished call is stored
    # per server (base URL, credentials masked): calls (replies; they sum to calls_made), failures (tries without
    # a usable reply), latency_s (mean over its calls); collected by the backends, copied at the end of the run
    per_server: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count_call(self, tokens_in: int, tokens_out: int, cost: float | None) -> None:
        """One call made by this run, with its tokens and cost (an unknown cost counts as unpriced)."""
        self.calls_made += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.cost += cost

    def add_accounting(self, other: RunReport, *, calls: bool = True) -> None:
        """Add another run's accounting to this one (a sharded run adds its warm-up's and its shards'):
        transport failures and their reasons, per-server figures, the budget and interrupt flags, and with
        ``calls`` its calls, cost and tokens too. Judgments and cached calls are not added."""
        from judgekit.judging.backends.servers import merge_stats

        self.transport_failures += other.transport_failures
        self.failure_reasons.update(other.failure_reasons)
        merge_stats(self.per_server, other.per_server)
        self.budget_reached = self.budget_reached or other.budget_reached
        self.interrupted = self.interrupted or other.interrupted
        if calls:
            self.calls_made += other.calls_made
            self.cost += other.cost
            self.unpriced_calls += other.unpriced_calls
            self.tokens_in += other.tokens_in
            self.tokens_out += other.tokens_out


@dataclass(slots=True)
class _Unit:
    ri: int
    ji: int
    sample: int
    key: str
    stored: list[StoredCall]
    result: SampleResult | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    latency_s: float = 0.0
    calls: int = 0
    cached_calls: int = 0


def _reduce(values: Sequence[float], how: Reduce) -> float:
    if how == "mean":
        return float(statistics.fmean(values))
    if how == "median":
        return float(statistics.median(values))
    # mode: ties resolved to the lower median of the tied values (conservative on an ordinal scale)
    return float(statistics.median_low(statistics.multimode(values)))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while many long-lived objects are built in one go (planning
    from the store, assembling the judgments). Otherwise each full collection rescans the whole growing
    heap: about a third of the time of a 50,000-judgment re-run from the store (bench/bench_runner.py).
    Nothing built there is cyclic garbage; collection resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_TRUNCATED = '"truncated": true'


def _absorb_stored(unit: _Unit, reasks: int, start: int = 0, *, local: bool = False) -> None:
    """Account the stored attempts of ``unit`` from index ``start`` on (those before are accounted already); set
    ``unit.result`` if they settle the sample: the last attempt is ok, or there are more than ``reasks``.
    ``local``: the judge is a local one, whose stored reply says ``"truncated": true`` when it read only the head
    of the answer (another judge's reply saying so is not believed)."""
    for c in unit.stored[start:]:
        unit.tokens_in += c.tokens_in
        unit.tokens_out += c.tokens_out
        if c.cost is not None:
            unit.cost = (unit.cost or 0.0) + c.cost
        unit.latency_s += c.latency_s
        unit.calls += 1
        unit.cached_calls += 1
    if not unit.stored:
        return
    last = unit.stored[-1]
    if last.status == "ok":
        unit.result = SampleResult(sample=unit.sample, status="scored", scores=last.scores or {},
                                   rationale=last.rationale, attempts=len(unit.stored),
                                   truncated=local and _TRUNCATED in (last.reply or ""))
    elif len(unit.stored) > reasks:
        unit.result = SampleResult(sample=unit.sample, status="unscored", attempts=len(unit.stored),
                                   reason=f"invalid reply after {len(unit.stored)} attempt(s): {last.reason}")


class Runner:
    """Judges ``responses`` with every judge in ``judges`` under ``rubric``; see :func:`run_judging`."""

    assemble_early = True  # assemble each response's judgments as its last unit settles (see run)

    def __init__(self, responses: Sequence[Response], rubric: Rubric, judges: Sequence[JudgeSpec],
                 store: Store, options: RunOptions,
                 progress: Callable[[int, int, float], None] | None = None, *,
                 notify: Callable[[str], None] | None = None) -> None:
        if not judges:
            raise JudgekitError("at least one judge is needed", field="--judge")
        names = [j.model for j in judges]
        if len(set(names)) != len(names):
            raise JudgekitError("the same judge is given twice", field="--judge")
        options.validate()
        self.responses = list(responses)
        self.rubric = rubric
        self.judges = list(judges)
        self.store = store
        self.opt = options
        self.progress = progress
        self.notify = notify  # gets the note when this run waits for samples another run has claimed
        self.schema = rubric.reply_schema()
        self.report = RunReport(judgments=[])
        self._stop = False
        self.plan_keys: Sequence[str] | None = None  # the units' call keys, when known already (see _plan)
        self.control = RunControl()  # setup mistakes (exit 2) and Ctrl-C
        self._done = 0
        self._rpm = _limiter(options.requests_per_minute)
        self._tpm = _limiter(options.tokens_per_minute)
        self._check_cache: dict[int, dict[str, Any]] = {}
        self._settings_cache: dict[int, str] = {}
        # judgments assembled during the run, by response index (see run); the raycluster warm-up assembles none
        self._early: dict[int, tuple[list[Judgment], Judgment]] = {}

    # ---- planning ------------------------------------------------------------------------------------
    def _plan(self, keys: Sequence[str] | None = None) -> list[_Unit]:
        """Every (judge, response, sample) unit in that order, with its stored attempts. ``keys``: their call
        keys in the same order when the caller has them already (a sharded run plans the same units again)."""
        stored = self.store.load()
        units: list[_Unit] = []
        fp, rv = self.rubric.fingerprint, self.rubric.version
        given = iter(keys) if keys is not None else None
        for ji, spec in enumerate(self.judges):
            key_of = call_keys(judge_identity=spec.identity(), rubric_fingerprint=fp, rubric_version=rv,
                               prompt_version=PROMPT_VERSION)
            local = spec.model.startswith("local/")
            for ri, resp in enumerate(self.responses):
                for s in range(self.opt.samples):
                    key = next(given) if given is not None else key_of(resp, s)
                    unit = _Unit(ri=ri, ji=ji, sample=s, key=key, stored=stored.get(key, []))
                    _absorb_stored(unit, self.opt.reasks, local=local)
                    units.append(unit)
        return units

    # ---- one call with retries ------------------------------------------------------------------------
    async def _call_with_retries(self, backend: Backend, req: ChatRequest):  # type: ignore[no-untyped-def]
        return await call_with_retries(backend, req, self.opt, rpm=self._rpm, tpm=self._tpm,
                                       health=self.control.health(backend), stopped=self._halted)

    def _budget_reached(self) -> bool:
        return self.opt.max_cost is not None and self.report.cost >= self.opt.max_cost

    async def _run_unit(self, unit: _Unit, backend: Backend) -> None:
        spec = self.judges[unit.ji]
        resp = self.responses[unit.ri]
        # a local judge scores the response on the rubric itself (no chat messages, no retries)
        judge_response = getattr(backend, "judge_response", None)
        send_images = spec.images == "yes" or (spec.images == "auto" and getattr(backend, "accepts_images", True))
        messages = [] if judge_response else build_messages(self.rubric, resp, images=send_images)
        for c in unit.stored:  # resume a conversation that already had invalid replies
            messages.append({"role": "assistant", "content": c.reply or ""})
            messages.append(reask_message(c.reason or "invalid reply", self.rubric))
        seed = None if spec.seed is None else spec.seed + unit.sample
        attempt = len(unit.stored)
        reason = ""
        while attempt <= self.opt.reasks:
            if self.control.stopped:  # a setup mistake or Ctrl-C, not the budget
                unit.result = SampleResult(sample=unit.sample, status="unscored", reason=NOT_RUN_STOPPED,
                                           attempts=attempt)
                return
            if self._stop or self._budget_reached():
                self._stop = True
                self.report.budget_reached = True
                unit.result = SampleResult(sample=unit.sample, status="unscored", reason=NOT_RUN_BUDGET,
                                           attempts=attempt)
                return
            req = ChatRequest(messages=messages, temperature=spec.temperature, seed=seed,
                              max_tokens=spec.max_tokens, schema=self.schema, timeout=spec.timeout)
            try:
                if judge_response is not None:
                    res = await judge_response(resp, self.rubric)
                else:
                    res = await self._call_with_retries(backend, req)
            except (RunAborted, TransientError, PermanentError) as exc:
                text = self.control.failure(exc, spec, halted=self._halted())
                if text is not None:
                    self.report.transport_failures += 1
                    self.report.failure_reasons[_reason_kind(text)] += 1
                    self.store.add_failure(key=unit.key, response=resp, judge=spec.model, reason=text)
                unit.result = SampleResult(sample=unit.sample, status="unscored", attempts=attempt,
                                           reason=NOT_RUN_STOPPED if text is None else f"error: {text}")
                return
            self.report.count_call(res.tokens_in, res.tokens_out, res.cost)
            if res.cost is not None:
                unit.cost = (unit.cost or 0.0) + res.cost
            unit.tokens_in += res.tokens_in
            unit.tokens_out += res.tokens_out
            unit.latency_s += res.latency_s
            unit.calls += 1
            try:
                parsed = parse_reply(res.text, self.rubric)
            except ReplyError as exc:
                reason = str(exc)
                if res.finish_reason == "length":
                    reason += " (the reply was cut off at max_tokens)"
                self._save(unit, attempt, "invalid", res, None, None, reason)
                messages = [*messages, {"role": "assistant", "content": res.text or ""},
                            reask_message(reason, self.rubric)]
                attempt += 1
                continue
            self._save(unit, attempt, "ok", res, parsed.scores, parsed.rationale, None)
            unit.result = SampleResult(sample=unit.sample, status="scored", scores=parsed.scores,
                                       rationale=parsed.rationale, attempts=attempt + 1,
                                       truncated=judge_response is not None and parsed.extra.get("truncated") is True)
            return
        unit.result = SampleResult(sample=unit.sample, status="unscored", attempts=attempt,
                                   reason=f"invalid reply after {attempt} attempt(s): {reason}")

    def _save(self, unit: _Unit, attempt: int, status: str, res, scores, rationale, reason) -> None:  # type: ignore[no-untyped-def]
        spec = self.judges[unit.ji]
        self.store.add_call(
            key=unit.key, attempt=attempt, status=status, response=self.responses[unit.ri], judge=spec.model,
            sample=unit.sample, reply=res.text, scores=scores, rationale=rationale, reason=reason,
            tokens_in=res.tokens_in, tokens_out=res.tokens_out, cost=res.cost, latency_s=res.latency_s,
            temperature=spec.temperature, seed=None if spec.seed is None else spec.seed + unit.sample,
            settings=self._settings_text(unit.ji), rubric=self.rubric.name, rubric_version=self.rubric.version)

    def _settings_text(self, ji: int) -> str:
        """The stored ``settings`` of judge ``ji``'s calls (its identity as JSON), computed once per run."""
        text = self._settings_cache.get(ji)
        if text is None:
            text = self._settings_cache[ji] = settings_text(self.judges[ji].identity())
        return text

    # ---- the whole run --------------------------------------------------------------------------------
    async def run(self) -> RunReport:
        start = time.perf_counter()
        with _gc_paused():
            units = self._plan(self.plan_keys)
        todo = [u for u in units if u.result is None]
        if todo:  # the store's identity rows (judgekit.judging.merge): what `judgekit store merge` checks
            record_identity(self.store, rubric_fingerprint=self.rubric.fingerprint, rubric_name=self.rubric.name,
                            rubric_version=self.rubric.version, prompt_version=PROMPT_VERSION,
                            judges=[spec.identity() for spec in self.judges])
        self.report.calls_cached = sum(u.cached_calls for u in units)
        total = len(units)
        self._done = total - len(todo)
        if self.progress:
            self.progress(self._done, total, 0.0)
        backends = [make_backend(spec, concurrency=self.opt.concurrency) for spec in self.judges]
        self.control.backends = backends  # for Ctrl-C: local judges stop between chunks

        async def run_one(unit: _Unit) -> None:
            await self._run_unit(unit, backends[unit.ji])

        def absorb(unit: _Unit, calls: list[StoredCall]) -> bool:
            """Stored attempts another run made since the plan: read from the store, not paid here."""
            known = len(unit.stored)
            unit.stored = calls
            _absorb_stored(unit, self.opt.reasks, start=known,
                           local=self.judges[unit.ji].model.startswith("local/"))
            self.report.calls_cached += len(calls) - known
            return unit.result is not None

        # A response's judgments are assembled as soon as its last unit settles, while other calls are in flight
        # (the event loop waits on the network most of the time), rather than all after the last call.
        groups = self._groups(units) if todo and self.assemble_early else {}  # a re-run from the store: none
        left = Counter(u.ri for u in todo)
        early = self._early = {}

        def settled(unit: _Unit) -> None:
            self._done += 1
            if self.assemble_early:
                left[unit.ri] -= 1
                if not left[unit.ri]:
                    early[unit.ri] = self._response_judgments(unit.ri, groups)
            if self.progress:
                self.progress(self._done, total, self.report.cost)

        # Claims: each sample's key is claimed (in chunks) before its first call; see ClaimScheduler.
        sched: ClaimScheduler[_Unit] = ClaimScheduler(
            self.store, chunk=self.opt.concurrency, key=lambda u: u.key, known=lambda u: len(u.stored),
            absorb=absorb, run=run_one, settled=settled, notify=self.notify, what="judge call",
            stopped=self._halted)
        try:
            await sched.run(todo, self.opt.concurrency)
        finally:
            self.report.waited = sched.note
            for b in backends:
                if (stats := getattr(b, "server_stats", None)) is not None:
                    from judgekit.judging.backends.servers import merge_stats

                    merge_stats(self.report.per_server, stats())
                await b.aclose()
        with _gc_paused():
            self.report.judgments = self._assemble(units)
        self.report.wall_s = time.perf_counter() - start
        return self.report

    def run_sync(self) -> RunReport:
        """:meth:`run` in a new event loop (``asyncio.run``), for callers without one.

        The report is taken from the runner, not returned through the loop's main task: on Python 3.11,
        ``asyncio.run`` renders the repr of its finished main task, result included, twice (through
        ``signal.getsignal(SIGINT)``, whose handler holds the task); with a 50,000-judgment report that cost
        ~3 s, more than a whole re-run from the store (bench/bench_runner.py, phase C).
        """

        try:
            self.control.run(self.run)
        finally:
            self.report.interrupted = self.control.interrupted
        return self.report

    def _halted(self) -> bool:
        """No new call starts: the budget was reached, a setup mistake or Ctrl-C."""
        return self._stop or self.control.stopped

    def interrupt(self, task: asyncio.Future[Any] | None = None) -> None:
        """Ctrl-C (see :meth:`RunControl.interrupt`)."""
        self.control.interrupt(task)

    # ---- reduction ------------------------------------------------------------------------------------
    def _judgment(self, resp: Response, spec: JudgeSpec, units: list[_Unit]) -> Judgment:
        # Every field is computed first and the Judgment is built once: setting pydantic fields one by one
        # afterwards cost more than the rest of a re-run from the store (bench/bench_runner.py, phase C).
        rubric = self.rubric
        samples = [u.result for u in units if u.result is not None]
        valid = [s for s in samples if s.status == "scored"]
        fields: dict[str, Any] = dict(
            id=resp.id, model=entry_name(resp.model, resp.setting), condition=resp.condition, category=resp.category,
            judge=spec.model, setting=resp.setting, status="unscored", samples=samples, rubric=rubric.name,
            rubric_version=rubric.version,
            temperature=spec.temperature, seed=spec.seed)
        checks = self._checks(resp)
        if checks:  # fact checks cost no call: recorded on unscored judgments too
            fields["checks"] = checks
        if len(units) == 1:  # one sample (the default): its own accounting
            u = units[0]
            fields.update(tokens_in=u.tokens_in, tokens_out=u.tokens_out, cost=u.cost,
                          latency_s=round(u.latency_s, 6), calls=u.calls, cached_calls=u.cached_calls)
        else:
            fields.update(
                tokens_in=sum(u.tokens_in for u in units), tokens_out=sum(u.tokens_out for u in units),
                cost=None if all(u.cost is None for u in units) else sum(u.cost or 0.0 for u in units),
                latency_s=round(sum(u.latency_s for u in units), 6), calls=sum(u.calls for u in units),
                cached_calls=sum(u.cached_calls for u in units), reduce=self.opt.reduce)  # several samples
        if not valid:
            reasons = sorted({s.reason or "" for s in samples})
            return Judgment(**fields, reason="; ".join(reasons))
        keys = rubric.reply_keys
        if len(valid) == 1:  # one valid sample: mean, median and mode all give its own scores
            only = valid[0].scores
            scores = {k: float(only[k]) for k in keys}
        else:
            scores = {k: _reduce([s.scores[k] for s in valid], self.opt.reduce) for k in keys}
        fields.update(self._verdict(scores, checks))
        if len(valid) > 1:
            fields["spread"] = {k: round(statistics.pstdev([s.scores[k] for s in valid]), 6) for k in keys}
        fields["rationale"] = valid[0].rationale
        if any(s.truncated for s in valid):
            fields["truncated"] = True
        if len(valid) < len(samples):
            fields["reason"] = f"{len(valid)} of {len(samples)} samples valid; " + "; ".join(
                sorted({s.reason or "" for s in samples if s.status != "scored"}))
        return Judgment(**fields)

    def _checks(self, resp: Response) -> dict[str, Any]:
        """The rubric's fact checks on ``resp`` (deterministic, no call; computed once per response)."""
        if not self.rubric.checks:
            return {}
        key = id(resp)  # the responses are held by self.responses for the runner's life
        if key not in self._check_cache:
            from judgekit.judging.checks import run_checks

            self._check_cache[key] = run_checks(self.rubric.checks, resp)
        return self._check_cache[key]

    def _verdict(self, scores: dict[str, float], checks: dict[str, Any] | None = None) -> dict[str, Any]:
        """The fields of a scored judgment that follow from its (reduced) scores and its fact checks."""
        rubric = self.rubric
        overall = rubric.compute_overall(scores, checks)
        criteria = {k: v for k, v in scores.items() if k != "overall"}
        values = {**criteria, "overall": overall}
        out = {"scores": criteria, "overall": round(overall, 6), "passed": rubric.passed(values, checks),
               "flags": rubric.derive_flags(values), "status": "scored"}
        if checks and rubric.weighted_checks:
            out["overall_judge"] = round(rubric.compute_overall(scores), 6)
        return out

    def _finish(self, j: Judgment, scores: dict[str, float], checks: dict[str, Any] | None = None) -> None:
        for name, value in self._verdict(scores, checks).items():
            setattr(j, name, value)

    def _panel(self, resp: Response, members: list[Judgment]) -> Judgment:
        quorum = self.opt.panel_quorum or (len(members) // 2 + 1)
        scored = [m for m in members if m.status == "scored"]
        failed = [m for m in members if m.status != "scored"]
        j = Judgment(id=resp.id, model=entry_name(resp.model, resp.setting), condition=resp.condition,
                     category=resp.category, setting=resp.setting,
                     judge="panel:" + "+".join(m.judge for m in members), status="unscored", panel=members,
                     rubric=self.rubric.name, rubric_version=self.rubric.version,
                     tokens_in=sum(m.tokens_in for m in members), tokens_out=sum(m.tokens_out for m in members),
                     cost=None if all(m.cost is None for m in members) else sum(m.cost or 0 for m in members),
                     latency_s=sum(m.latency_s for m in members), calls=sum(m.calls for m in members),
                     cached_calls=sum(m.cached_calls for m in members), panel_reduce=self.opt.panel_reduce,
                     panel_quorum=quorum)
        j.truncated = any(m.truncated for m in scored)
        j.checks = self._checks(resp)
        failed_text = "; ".join(f"{m.judge} unscored ({m.reason})" for m in failed)
        if len(scored) < quorum:
            j.reason = f"panel: {len(scored)} of {len(members)} judges scored, quorum is {quorum}" + (
                f"; {failed_text}" if failed_text else "")
            return j
        keys = [*self.rubric.criterion_names]
        scores = {k: _reduce([m.scores[k] for m in scored], self.opt.panel_reduce) for k in keys}
        if self.rubric.overall.method == "judge":
            scores["overall"] = _reduce([m.overall if m.overall_judge is None else m.overall_judge for m in scored
                                         if m.overall is not None], self.opt.panel_reduce)
        self._finish(j, scores, j.checks)
        j.spread = {k: round(statistics.pstdev([m.scores[k] for m in scored]), 6) for k in keys}
        if failed:
            j.reason = f"panel: {len(scored)} of {len(members)} judges scored; {failed_text}"
        return j

    @staticmethod
    def _groups(units: list[_Unit]) -> dict[tuple[int, int], list[_Unit]]:
        """The units of each (response, judge), in sample order."""
        by: dict[tuple[int, int], list[_Unit]] = {}
        for u in units:
            by.setdefault((u.ri, u.ji), []).append(u)
        return by

    def _response_judgments(self, ri: int, groups: dict[tuple[int, int], list[_Unit]]) -> tuple[list[Judgment],
                                                                                                  Judgment]:
        """Response ``ri``'s judgment by each judge, and its final judgment (the panel's, with several judges)."""
        resp = self.responses[ri]
        members = [self._judgment(resp, spec, groups[(ri, ji)]) for ji, spec in enumerate(self.judges)]
        return members, members[0] if len(members) == 1 else self._panel(resp, members)

    def _assemble(self, units: list[_Unit]) -> list[Judgment]:
        """Every response's judgment, in the responses' order (those assembled during :meth:`run` as their last
        unit settled are taken as they are: a settled unit does not change)."""
        groups: dict[tuple[int, int], list[_Unit]] | None = None  # built only if some response needs it
        early, self._early = self._early, {}
        out: list[Judgment] = []
        per_judge: dict[str, list[Judgment]] = {s.model: [] for s in self.judges}
        for ri in range(len(self.responses)):
            done = early.get(ri)
            if done is None:
                groups = groups or self._groups(units)
                done = self._response_judgments(ri, groups)
            members, final = done
            for m in members:
                per_judge[m.judge].append(m)
            out.append(final)
        self.report.per_judge = per_judge
        return out


def run_judging(responses: Sequence[Response], rubric: Rubric, judges: Sequence[JudgeSpec], store: Store,
                options: RunOptions | None = None,
                progress: Callable[[int, int, float], None] | None = None) -> RunReport:
    """Judge every response with every judge (a panel when there are several) and return the report.

    Calls whose replies are already in ``store`` are not made again. ``progress(done, total, cost)`` is
    called as samples finish.
    """
    runner = Runner(responses, rubric, judges, store, options or RunOptions(), progress)
    return runner.run_sync()


__all__ = ["NOT_RUN_BUDGET", "RunOptions", "RunReport", "Runner", "run_judging"]
