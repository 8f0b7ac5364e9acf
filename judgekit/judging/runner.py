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
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import sqlite3
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Judgment, Response, SampleResult
from judgekit.io.redact import MASK, redact, secret_values
from judgekit.judging.backends import (
    Backend,
    ChatRequest,
    JudgeSpec,
    PermanentError,
    TransientError,
    make_backend,
)
from judgekit.judging.parse import ReplyError, parse_reply
from judgekit.judging.prompt import PROMPT_VERSION, build_messages, reask_message
from judgekit.judging.rubric import Rubric
from judgekit.judging.store import Store, StoredCall, call_key

Reduce = Literal["mean", "median", "mode"]
NOT_RUN_BUDGET = "not judged: the --max-cost budget was reached (re-run to continue)"
NOT_RUN_STOPPED = "not judged: the run was stopped (re-run to continue)"
#: A run stops early when its first this-many tries all failed with "nothing answered" (connection refused, no
#: route, unknown host) and none succeeded: a wrong --api-base or a server that is not up, not a hiccup.
CONNECT_LIMIT = 8
#: After Ctrl-C, calls in flight get this long to finish (and be stored) before they are cancelled.
INTERRUPT_GRACE_S = 1.2


class RunAborted(JudgekitError):
    """A setup mistake made every call fail alike (a refused key, an unknown model, nothing answering): the
    run stopped at once. The CLI prints the cause (redacted) and exits 2 without writing results."""


class _Health:
    """Watches the tries of one backend: :meth:`failed` returns the abort message once the first
    :data:`CONNECT_LIMIT` tries all failed with "nothing answered" and none succeeded."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.ok = 0
        self.connect_failures = 0

    def succeeded(self) -> None:
        self.ok += 1

    def failed(self, err: TransientError) -> str | None:
        if self.ok or getattr(err, "kind", "other") != "connect":
            return None
        self.connect_failures += 1
        if self.connect_failures < CONNECT_LIMIT:
            return None
        cause = str(err).split(": ", 1)[-1] if str(err).startswith("connection error") else str(err)
        return (f"nothing answers at {self.where}: {cause} ({self.connect_failures} tries, none answered); "
                "check --api-base and that the server is up")


def _reason_kind(text: str) -> str:
    """A failure reason without its per-call details (tries count), for counting the most common one."""
    return text.split(" (gave up after", 1)[0][:200]


class RunControl:
    """How a run of calls (judging or generation) stops: a setup mistake (:meth:`abort`, the first cause is
    kept in ``fatal``) or Ctrl-C (:meth:`interrupt`). ``stopped`` is True from then on: no new call starts,
    retries give up. :meth:`run` runs a coroutine in a new event loop with the Ctrl-C handler in place and
    raises ``fatal`` afterwards."""

    def __init__(self) -> None:
        self.stopped = False
        self.fatal: RunAborted | None = None
        self.interrupted = False
        self.interrupts = 0
        self.backends: list[Any] = []  # their stop() is called on Ctrl-C (local models stop between chunks)
        self._health: dict[int, _Health] = {}

    def health(self, backend: Any) -> _Health:
        """The connection watch of ``backend`` (see :class:`_Health`)."""
        h = self._health.get(id(backend))
        if h is None:
            spec = getattr(backend, "spec", None)
            h = self._health[id(backend)] = _Health(
                (spec.api_base or spec.model) if spec is not None else str(getattr(backend, "model", "the server")))
        return h

    def abort(self, err: RunAborted) -> None:
        if self.fatal is None:
            self.fatal = err
        self.stopped = True

    def failure(self, exc: BaseException, spec: JudgeSpec, *, halted: bool | None = None) -> str | None:
        """What a failed call means for the run, the one rule for judging and generation: a setup mistake or
        nothing answering aborts the run; Ctrl-C and retries cut short by a stop are no failure; anything else
        is a failure to record and retry later. Returns its redacted text (None: record nothing). ``halted``:
        whether the caller stopped starting calls for a reason of its own too (the --max-cost budget)."""
        if isinstance(exc, RunAborted):  # nothing answers at all
            self.abort(RunAborted(_redact(exc.message, spec)))
            return None
        text = _redact(str(exc), spec)
        kind = getattr(exc, "kind", "")
        if isinstance(exc, PermanentError) and kind == "interrupted":
            return None
        if isinstance(exc, PermanentError) and kind == "setup":  # every call would fail alike
            self.abort(RunAborted(f"{spec.model}: {text}; stopped at the first such error, since every call "
                                  "would fail the same way"))
            return None
        if (self.stopped if halted is None else halted) and "(the run was stopped)" in text:
            return None
        return text

    def interrupt(self, task: asyncio.Future[Any] | None = None) -> None:
        """Ctrl-C. The first: no new call starts, local models stop after the chunk in progress, calls in flight
        get :data:`INTERRUPT_GRACE_S` to finish (and be stored), then ``task`` (the run) is cancelled and
        ``interrupted`` is set. The second: exit at once (code 130; every stored call is committed)."""
        import os
        import sys

        self.interrupts += 1
        if self.interrupts > 1:
            sys.stderr.write("\njudgekit: interrupted again: exiting now\n")
            sys.stderr.flush()
            os._exit(130)
        self.interrupted = True
        self.stopped = True
        for b in self.backends:
            stop = getattr(b, "stop", None)
            if stop is not None:
                stop()
        if task is not None:
            asyncio.get_running_loop().call_later(INTERRUPT_GRACE_S, task.cancel)

    def run(self, coro_factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``coro_factory()`` in a new event loop (``asyncio.run``) with Ctrl-C handled by :meth:`interrupt`
        (in the main thread only); a cancellation by Ctrl-C returns normally with ``interrupted`` set. Raises
        ``fatal`` when the run was aborted."""
        import signal

        async def main() -> None:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(coro_factory())
            try:
                loop.add_signal_handler(signal.SIGINT, self.interrupt, task)
                installed = True
            except (ValueError, RuntimeError, NotImplementedError):
                installed = False
            try:
                await task
            except asyncio.CancelledError:
                if not self.interrupted:
                    raise
            finally:
                if installed:
                    loop.remove_signal_handler(signal.SIGINT)

        asyncio.run(main())
        if self.fatal is not None:
            raise self.fatal


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


def _limiter(per_minute: float | None):  # type: ignore[no-untyped-def]
    """A leaky bucket (aiolimiter) for ``per_minute``, refilled over 6 s windows, so at most a tenth of a
    minute's allowance goes out in one burst (a 60 s bucket would let a whole minute's worth out at once)."""
    if not per_minute:
        return None
    from aiolimiter import AsyncLimiter

    if per_minute >= 10:
        return AsyncLimiter(per_minute / 10, 6.0)
    return AsyncLimiter(1, 60.0 / per_minute)


def _redact(text: str, spec: JudgeSpec) -> str:
    """Remove the API key and any other secret (see :mod:`judgekit.io.redact`) from a text before it is stored,
    written or shown (some providers echo them, in error bodies and in replies)."""
    key = spec.api_key() if spec.api_key_env else None
    if key and len(key) >= 4:  # a short key still goes, whatever judgekit.io.redact's minimum length
        text = text.replace(key, MASK)
    return redact(text, secret_values([key])) or text


def _backend_secrets(backend: Backend) -> tuple[str, ...]:
    """The secrets to mask in ``backend``'s replies (computed once per backend object)."""
    secrets = getattr(backend, "_judgekit_secrets", None)
    if secrets is None:
        spec = getattr(backend, "spec", None)
        secrets = secret_values([spec.api_key()] if spec is not None and spec.api_key_env else [])
        with contextlib.suppress(AttributeError):  # a backend with __slots__: recomputed next time
            backend._judgekit_secrets = secrets  # type: ignore[attr-defined]
    return secrets


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


U = TypeVar("U")


class ClaimScheduler(Generic[U]):
    """Runs units (one store key each) under claims in ``store``, for the judge runner and ``judgekit generate``.

    ``workers`` coroutines take units from the queue; when the claimed units run out, the next ``chunk``
    units are claimed in one transaction (:meth:`Store.claim_many`). A unit whose key the store holds more
    attempts of than ``known(unit)`` gets them through ``absorb(unit, attempts)``, which returns True when
    they settle it (it is then not run). A unit that another live run holds is deferred; after the queue
    the deferred units are polled every ``poll_s`` seconds: absorbed when settled, run here when their claim
    is free again. ``settled(unit)`` is called once per unit settled here (run or absorbed). A heartbeat
    renews this run's leases every third of the lease; claims of settled units are released in batches and
    all of them when :meth:`run` ends, however it ends. ``notify`` gets the waiting note, once. Once
    ``stopped()`` is true (the run was stopped: budget, abort, Ctrl-C), deferred units are no longer waited
    for: they go to ``run`` unclaimed, which must then settle them without a call.
    """

    def __init__(self, store: Store, *, chunk: int, key: Callable[[U], str], known: Callable[[U], int],
                 absorb: Callable[[U, list[StoredCall]], bool], run: Callable[[U], Awaitable[None]],
                 settled: Callable[[U], None], notify: Callable[[str], None] | None = None,
                 what: str = "call", poll_s: float = 0.5, stopped: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.chunk = max(1, chunk)
        self._key, self._known, self._absorb, self._run = key, known, absorb, run
        self._settled, self._notify, self.what, self.poll_s = settled, notify, what, poll_s
        self._stopped = stopped
        self._ready: deque[U] = deque()
        self._deferred: list[tuple[U, tuple[int, str]]] = []
        self._release: list[str] = []
        self.note: str | None = None

    def _claim(self, batch: list[U]) -> None:
        res = self.store.claim_many({self._key(u): self._known(u) for u in batch})
        for u in batch:
            k = self._key(u)
            holder = res.held.get(k)
            if holder is not None:
                self._deferred.append((u, holder))
            elif k in res.stored and self._absorb(u, res.stored[k]):
                self._done(u)
            else:
                self._ready.append(u)

    def _next(self, source: Iterator[U]) -> U | None:
        while not self._ready:
            batch = list(itertools.islice(source, self.chunk))
            if not batch:
                return None
            self._claim(batch)
        return self._ready.popleft()

    def _done(self, u: U) -> None:
        self._release.append(self._key(u))
        if len(self._release) >= self.chunk:
            self._flush()
        self._settled(u)

    def _flush(self) -> None:
        keys, self._release = self._release, []
        self.store.release(keys)

    async def _drain(self, units: Iterable[U], workers: int) -> int:
        """Run every unit of ``units`` this run can claim (the others are deferred); returns how many ran."""
        source = iter(units)
        ran = 0

        async def worker() -> None:
            nonlocal ran
            while (u := self._next(source)) is not None:  # one shared iterator: asyncio runs one worker at a time
                await self._run(u)
                ran += 1
                self._done(u)

        await asyncio.gather(*(worker() for _ in range(max(1, workers))))
        return ran

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.store.lease_s / 3)
            with contextlib.suppress(sqlite3.OperationalError):  # busy this time: the next beat renews
                self.store.renew()
                self._flush()

    def _wait_note(self) -> str:
        holders = Counter(h for _, h in self._deferred)
        (pid, host), _ = holders.most_common(1)[0]
        others = f" and {len(holders) - 1} other run(s)" if len(holders) > 1 else ""
        n = len(self._deferred)
        return (f"waiting for {n} {self.what}{'s' if n != 1 else ''} claimed by another judgekit run "
                f"(pid {pid} on {host}{others}); their results are read from the store as they arrive")

    async def run(self, units: Sequence[U], workers: int) -> None:
        """Run or absorb every unit of ``units`` (see the class docstring)."""
        if not units:
            return
        beat = asyncio.create_task(self._heartbeat())
        try:
            await self._drain(units, min(workers, len(units)))
            while self._deferred:
                waiting, self._deferred = [u for u, _ in self._deferred], []
                stored = self.store.attempts({self._key(u) for u in waiting})
                rest = []
                for u in waiting:
                    calls = stored.get(self._key(u))
                    if calls and len(calls) > self._known(u) and self._absorb(u, calls):
                        self._done(u)
                    else:
                        rest.append(u)
                if rest and self._stopped is not None and self._stopped():
                    for u in rest:  # stopped: no call is made, the unit is settled as not run
                        await self._run(u)
                        self._settled(u)
                    break
                ran = await self._drain(rest, min(workers, len(rest))) if rest else 0
                if self._deferred and not ran:
                    if self.note is None:
                        self.note = self._wait_note()
                        if self._notify is not None:
                            self._notify(self.note)
                    self._flush()
                    await asyncio.sleep(self.poll_s)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._release.clear()
            with contextlib.suppress(sqlite3.Error):  # never mask the run's own error; Store.close() retries
                self.store.release_all()


async def call_with_retries(backend: Backend, req: ChatRequest, opt: RunOptions, *, rpm=None, tpm=None,  # type: ignore[no-untyped-def]
                            health: _Health | None = None, stopped: Callable[[], bool] | None = None):
    """One request with up to ``opt.retries`` retries of transient faults: exponential back-off with full jitter
    (or the server's Retry-After, capped at ``opt.backoff_max``), behind the optional ``rpm``/``tpm`` limiters
    (see :func:`_limiter`). Raises :class:`TransientError` when every try failed, :class:`RunAborted` when
    ``health`` says nothing answers at all, and gives up early (TransientError) once ``stopped()``."""
    est_tokens = sum(len(m["content"]) if isinstance(m["content"], str) else 1000
                     for m in req.messages) // 4 + req.max_tokens
    for attempt in range(opt.retries + 1):
        if rpm is not None:
            await rpm.acquire()
        if tpm is not None:
            await tpm.acquire(min(est_tokens, tpm.max_rate))
        try:
            async with asyncio.timeout(req.timeout + 5):
                res = await backend.complete(req)
            res.text = redact(res.text, _backend_secrets(backend))  # no secret echoed in a reply is ever stored
            if health is not None:
                health.succeeded()
            return res
        except TimeoutError:
            err: TransientError = TransientError(f"timed out after {req.timeout:g} s")
        except TransientError as exc:
            err = exc
        if health is not None and (abort := health.failed(err)) is not None:
            raise RunAborted(abort)
        if stopped is not None and stopped():
            raise TransientError(f"{err} (the run was stopped)")
        if attempt == opt.retries:
            raise TransientError(f"{err} (gave up after {attempt + 1} tries)")
        if err.retry_after is not None:
            delay = min(err.retry_after, opt.backoff_max)
        else:  # exponential back-off with full jitter
            delay = random.uniform(0, min(opt.backoff_max, opt.backoff_base * 2 ** attempt))
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


class Runner:
    """Judges ``responses`` with every judge in ``judges`` under ``rubric``; see :func:`run_judging`."""

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
        self.control = RunControl()  # setup mistakes (exit 2) and Ctrl-C
        self._done = 0
        self._rpm = _limiter(options.requests_per_minute)
        self._tpm = _limiter(options.tokens_per_minute)

    # ---- planning ------------------------------------------------------------------------------------
    def _plan(self) -> list[_Unit]:
        stored = self.store.load()
        units: list[_Unit] = []
        fp, rv = self.rubric.fingerprint, self.rubric.version
        for ji, spec in enumerate(self.judges):
            ident = spec.identity()
            local = spec.model.startswith("local/")
            for ri, resp in enumerate(self.responses):
                for s in range(self.opt.samples):
                    key = call_key(response=resp, judge_identity=ident, rubric_fingerprint=fp,
                                   rubric_version=rv, prompt_version=PROMPT_VERSION, sample=s)
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
            rep = self.report
            rep.calls_made += 1
            rep.tokens_in += res.tokens_in
            rep.tokens_out += res.tokens_out
            if res.cost is None:
                rep.unpriced_calls += 1
            else:
                rep.cost += res.cost
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
            settings=spec.identity(), rubric=self.rubric.name, rubric_version=self.rubric.version)

    # ---- the whole run --------------------------------------------------------------------------------
    async def run(self) -> RunReport:
        start = time.perf_counter()
        with _gc_paused():
            units = self._plan()
        todo = [u for u in units if u.result is None]
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

        def settled(unit: _Unit) -> None:
            self._done += 1
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
            id=resp.id, model=resp.model, condition=resp.condition, category=resp.category, judge=spec.model,
            status="unscored", samples=samples, rubric=rubric.name, rubric_version=rubric.version,
            temperature=spec.temperature, seed=spec.seed)
        if len(units) == 1:  # one sample (the default): its own accounting
            u = units[0]
            fields.update(tokens_in=u.tokens_in, tokens_out=u.tokens_out, cost=u.cost,
                          latency_s=round(u.latency_s, 6), calls=u.calls, cached_calls=u.cached_calls)
        else:
            fields.update(
                tokens_in=sum(u.tokens_in for u in units), tokens_out=sum(u.tokens_out for u in units),
                cost=None if all(u.cost is None for u in units) else sum(u.cost or 0.0 for u in units),
                latency_s=round(sum(u.latency_s for u in units), 6), calls=sum(u.calls for u in units),
                cached_calls=sum(u.cached_calls for u in units))
        if not valid:
            reasons = sorted({s.reason or "" for s in samples})
            return Judgment(**fields, reason="; ".join(reasons))
        keys = rubric.reply_keys
        if len(valid) == 1:  # one valid sample: mean, median and mode all give its own scores
            only = valid[0].scores
            scores = {k: float(only[k]) for k in keys}
        else:
            scores = {k: _reduce([s.scores[k] for s in valid], self.opt.reduce) for k in keys}
        fields.update(self._verdict(scores))
        if len(valid) > 1:
            fields["spread"] = {k: round(statistics.pstdev([s.scores[k] for s in valid]), 6) for k in keys}
        fields["rationale"] = valid[0].rationale
        if any(s.truncated for s in valid):
            fields["truncated"] = True
        if len(valid) < len(samples):
            fields["reason"] = f"{len(valid)} of {len(samples)} samples valid; " + "; ".join(
                sorted({s.reason or "" for s in samples if s.status != "scored"}))
        return Judgment(**fields)

    def _verdict(self, scores: dict[str, float]) -> dict[str, Any]:
        """The fields of a scored judgment that follow from its (reduced) scores."""
        rubric = self.rubric
        overall = rubric.compute_overall(scores)
        criteria = {k: v for k, v in scores.items() if k != "overall"}
        values = {**criteria, "overall": overall}
        return {"scores": criteria, "overall": round(overall, 6), "passed": rubric.passed(values),
                "flags": rubric.derive_flags(values), "status": "scored"}

    def _finish(self, j: Judgment, scores: dict[str, float]) -> None:
        for name, value in self._verdict(scores).items():
            setattr(j, name, value)

    def _panel(self, resp: Response, members: list[Judgment]) -> Judgment:
        quorum = self.opt.panel_quorum or (len(members) // 2 + 1)
        scored = [m for m in members if m.status == "scored"]
        failed = [m for m in members if m.status != "scored"]
        j = Judgment(id=resp.id, model=resp.model, condition=resp.condition, category=resp.category,
                     judge="panel:" + "+".join(m.judge for m in members), status="unscored", panel=members,
                     rubric=self.rubric.name, rubric_version=self.rubric.version,
                     tokens_in=sum(m.tokens_in for m in members), tokens_out=sum(m.tokens_out for m in members),
                     cost=None if all(m.cost is None for m in members) else sum(m.cost or 0 for m in members),
                     latency_s=sum(m.latency_s for m in members), calls=sum(m.calls for m in members),
                     cached_calls=sum(m.cached_calls for m in members))
        j.truncated = any(m.truncated for m in scored)
        failed_text = "; ".join(f"{m.judge} unscored ({m.reason})" for m in failed)
        if len(scored) < quorum:
            j.reason = f"panel: {len(scored)} of {len(members)} judges scored, quorum is {quorum}" + (
                f"; {failed_text}" if failed_text else "")
            return j
        keys = [*self.rubric.criterion_names]
        scores = {k: _reduce([m.scores[k] for m in scored], self.opt.panel_reduce) for k in keys}
        if self.rubric.overall.method == "judge":
            scores["overall"] = _reduce([m.overall for m in scored if m.overall is not None], self.opt.panel_reduce)
        self._finish(j, scores)
        j.spread = {k: round(statistics.pstdev([m.scores[k] for m in scored]), 6) for k in keys}
        if failed:
            j.reason = f"panel: {len(scored)} of {len(members)} judges scored; {failed_text}"
        return j

    def _assemble(self, units: list[_Unit]) -> list[Judgment]:
        by: dict[tuple[int, int], list[_Unit]] = {}
        for u in units:
            by.setdefault((u.ri, u.ji), []).append(u)
        out: list[Judgment] = []
        per_judge: dict[str, list[Judgment]] = {s.model: [] for s in self.judges}
        for ri, resp in enumerate(self.responses):
            members = [self._judgment(resp, spec, by[(ri, ji)]) for ji, spec in enumerate(self.judges)]
            for m in members:
                per_judge[m.judge].append(m)
            out.append(members[0] if len(members) == 1 else self._panel(resp, members))
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
