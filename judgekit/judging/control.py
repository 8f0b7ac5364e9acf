"""How a run of calls stops and how one call is made: shared by the judge runner
(:mod:`judgekit.judging.runner`) and candidate generation (:mod:`judgekit.generation.candidates`).

- :class:`RunControl`: the one rule for what a failed call means (:meth:`RunControl.failure`: a setup mistake or
  nothing answering aborts the run with :class:`RunAborted`, exit 2; anything else is recorded and retried by a
  re-run), Ctrl-C (:meth:`RunControl.interrupt`: stop starting calls, a grace period for those in flight, a
  second Ctrl-C exits at once) and the event loop a run goes in (:meth:`RunControl.run`);
- :class:`_Health`: the early stop when the first :data:`CONNECT_LIMIT` tries of a backend found nothing
  answering;
- :func:`call_with_retries`: one request with retries of transient faults (back-off with jitter, Retry-After),
  behind the optional rate limiters (:func:`_limiter`), its reply redacted (:func:`_redact`,
  :func:`_backend_secrets`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from judgekit.io.errors import JudgekitError
from judgekit.io.redact import MASK, redact, secret_values
from judgekit.judging.backends import Backend, ChatRequest, JudgeSpec, PermanentError, TransientError

if TYPE_CHECKING:
    from judgekit.judging.runner import RunOptions

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


async def call_with_retries(backend: Backend, req: ChatRequest, opt: RunOptions, *, rpm=None, tpm=None,  # type: ignore[no-untyped-def]
                            health: _Health | None = None, stopped: Callable[[], bool] | None = None):
    """One request with up to ``opt.retries`` retries of transient faults: exponential back-off with full jitter
    (or the server's Retry-After, capped at ``opt.backoff_max``), behind the optional ``rpm``/``tpm`` limiters
    (see :func:`_limiter`). Raises :class:`TransientError` when every try failed, :class:`RunAborted` when
    ``health`` says nothing answers at all, and gives up early (TransientError) once ``stopped()``."""
    est_tokens = 0 if tpm is None else sum(len(m["content"]) if isinstance(m["content"], str) else 1000
                                           for m in req.messages) // 4 + req.max_tokens  # for the tpm limiter only
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
