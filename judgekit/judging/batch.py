"""Provider batch APIs (``judgekit judge --batch``): the pending calls of a run go out as one OpenAI-format batch
per judge and round, through the provider's files + batches API, at batch prices.

Conventions:

- **Same calls, same keys.** A request body is built exactly as the live backend builds it for the same
  :class:`~judgekit.judging.backends.ChatRequest` (the same messages from
  :func:`~judgekit.judging.prompt.build_messages`, re-asks appended as on a resumed live run, the same temperature,
  seed, max tokens, response format and extra fields). Each reply is parsed by
  :func:`~judgekit.judging.parse.parse_reply` and stored as a call under the same
  :func:`~judgekit.judging.store.call_key` and attempt number as a live call, so a batch run and a live run give the
  same judgments and a later live (or batch) run reads the replies from the store.
- **The JSONL**: one line per request, ``{"custom_id": "<call key>.<attempt>", "method": "POST",
  "url": "/v1/chat/completions", "body": {...}}``. The custom id names the call it answers; a line for an
  attempt that is already stored is ignored.
- **Re-attach.** Every batch is recorded in the store's ``batches`` table (batch id, judge, input file id,
  status, created, the custom ids it covers) as soon as the provider has created it. A later run (after
  Ctrl-C, a crash, or a run that stopped while the provider was still working) polls the open batches that
  cover its pending calls instead of submitting them again. A batch becomes ``collected`` once its output
  and error files are stored.
- **Rounds and re-asks.** An invalid reply is stored (status ``invalid``) and re-asked in a follow-up batch
  (the conversation with the reply and the re-ask message, as live) while the sample has at most ``reasks``
  attempts; then the sample is unscored with the reason.
- **Failures.** A line of the error file, a line missing from the output of an expired, failed or cancelled
  batch, or an error status inside the output: the sample is unscored with the reason (a ``failures`` row,
  as a live transport failure) and is submitted again by the next run. A provider without the batch API
  (HTTP 404/405 on ``/files`` or ``/batches``), a refused key (401/403): :class:`RunAborted`, exit 2.
- **Polling**: the first poll after ``poll`` seconds, then each wait 1.5 times the previous, capped at
  ``10 * poll`` (the default ``poll`` is 30 s: at most 5 minutes between polls). Ctrl-C stops polling at
  once; everything submitted is recorded and the next run re-attaches.
- **Cost** at batch prices: the price map's ``*_cost_per_token_batches`` entries when it has them, else half
  of its per-token prices; ``--price-in``/``--price-out`` (the live prices) are halved. ``--max-cost`` is
  checked before each submission against an estimate (prompt characters / 4 in, ``max_tokens`` out, per
  request): the requests that would pass the budget are not submitted (unscored, the budget note).
- **Transport.** The lean path (``openai/NAME`` or no prefix, with ``--api-base``) calls the server's
  ``/files`` and ``/batches`` with aiohttp (:class:`HttpBatchAPI`; the same URLs as OpenAI's under the given
  base); every other judge goes through litellm's ``acreate_file``/``acreate_batch``/``aretrieve_batch``/
  ``afile_content`` (:class:`LiteLLMBatchAPI`) with the provider litellm finds for the model.
- Batch runs do not take the store's claims (a batch may run for hours, longer than any lease): two batch
  runs on one store share work through the ``batches`` table; do not run a live run on the same responses
  while a batch run is pending.
- ``latency_s`` of a batch call is 0 (the provider does not say when each request ran).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Response, SampleResult
from judgekit.io.redact import redact
from judgekit.judging.backends import (
    ChatRequest,
    JudgeSpec,
    PermanentError,
    TransientError,
    make_backend,
    price_per_token,
    response_format_body,
)
from judgekit.judging.control import RunAborted, _backend_secrets, _redact
from judgekit.judging.parse import ReplyError, parse_reply
from judgekit.judging.prompt import build_messages, reask_message
from judgekit.judging.rubric import Rubric
from judgekit.judging.runner import NOT_RUN_BUDGET, NOT_RUN_STOPPED, Runner, RunOptions, RunReport, _Unit
from judgekit.judging.store import Store, StoredCall

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
DEFAULT_POLL_S = 30.0
BATCH_DISCOUNT = 0.5  # batch price / live price when the price map has no batch entry
_RETRIEVE_FAILURES = 20  # consecutive failed polls of one batch before the run gives up on it


def custom_id(key: str, attempt: int) -> str:
    """The custom id of the request for attempt ``attempt`` of the call key ``key``."""
    return f"{key}.{attempt}"


def batch_prices(spec: JudgeSpec) -> tuple[float, float] | None:
    """(input, output) USD per token at batch prices for ``spec``, or None when the judge is unpriced (see the
    module docstring)."""
    if spec.price_in is not None or spec.price_out is not None:
        return ((spec.price_in or 0.0) / 1e6 * BATCH_DISCOUNT, (spec.price_out or 0.0) / 1e6 * BATCH_DISCOUNT)
    from judgekit.judging.backends import _price_map

    prices = _price_map()
    for name in (spec.model, spec.model.split("/", 1)[-1]):
        entry = prices.get(name)
        if entry and "input_cost_per_token_batches" in entry:
            return float(entry["input_cost_per_token_batches"]), float(entry.get("output_cost_per_token_batches", 0.0))
    live = price_per_token(spec.model)
    return None if live is None else (live[0] * BATCH_DISCOUNT, live[1] * BATCH_DISCOUNT)


# ---- transports ----------------------------------------------------------------------------------------
class HttpBatchAPI:
    """OpenAI's files + batches API under ``api_base`` (``{base}/files``, ``{base}/batches``), with aiohttp."""

    def __init__(self, spec: JudgeSpec) -> None:
        assert spec.api_base is not None
        self.spec = spec
        self.base = spec.api_base.rstrip("/")
        self._session: Any = None

    def _get(self) -> Any:
        import aiohttp

        if self._session is None:
            headers = {}
            key = self.spec.api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=300))
        return self._session

    async def _request(self, method: str, path: str, **kw: Any) -> bytes:
        import aiohttp

        url = self.base + path
        try:
            async with self._get().request(method, url, **kw) as resp:
                raw = await resp.read()
                if resp.status == 200:
                    return bytes(raw)
                detail = raw[:300].decode("utf-8", "replace")
        except aiohttp.ClientConnectorError as exc:
            raise TransientError(f"connection error: {exc}", kind="connect") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from None
        msg = f"HTTP {resp.status} from {method} {url}: {detail}"
        if resp.status in (404, 405) and path in ("/files", "/batches"):
            raise RunAborted(f"{self.spec.model}: the server at {self.base} offers no batch API ({msg}); "
                             "run without --batch")
        if resp.status in (401, 403):
            raise RunAborted(f"{self.spec.model}: {msg}")
        if resp.status == 429 or resp.status >= 500:
            raise TransientError(msg)
        raise PermanentError(msg, kind="setup" if resp.status == 404 else "request")

    async def upload(self, data: bytes) -> str:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", data, filename="judgekit-batch.jsonl", content_type="application/jsonl")
        return str(json.loads(await self._request("POST", "/files", data=form))["id"])

    async def create(self, file_id: str) -> dict[str, Any]:
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h"}
        return dict(json.loads(await self._request("POST", "/batches", json=body)))

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return dict(json.loads(await self._request("GET", f"/batches/{batch_id}")))

    async def content(self, file_id: str) -> bytes:
        return await self._request("GET", f"/files/{file_id}/content")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class LiteLLMBatchAPI:
    """The files + batches API of the provider litellm finds for ``spec.model`` (openai, azure, vertex_ai,
    bedrock, ...), through litellm's ``acreate_file``/``acreate_batch``/``aretrieve_batch``/``afile_content``."""

    def __init__(self, spec: JudgeSpec) -> None:
        from judgekit.judging.backends.litellm_backend import _import_litellm

        self.spec = spec
        self._litellm = _import_litellm()
        self.provider = self._litellm.get_llm_provider(model=spec.model, api_base=spec.api_base)[1]
        self._kw: dict[str, Any] = {"custom_llm_provider": self.provider}
        if spec.api_base:
            self._kw["api_base"] = spec.api_base
        key = spec.api_key()
        if key:
            self._kw["api_key"] = key
        elif spec.api_base:
            self._kw["api_key"] = "none"

    async def _call(self, what: str, fn: Any, **kw: Any) -> Any:
        try:
            return await fn(**kw, **self._kw)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            text = f"{type(exc).__name__}: {str(exc)[:300]}"
            if status in (404, 405) and what in ("upload", "create"):
                raise RunAborted(f"{self.spec.model}: {self.provider} offers no batch API here ({text}); "
                                 "run without --batch") from None
            if status in (401, 403):
                raise RunAborted(f"{self.spec.model}: {text}") from None
            if status is None or status == 429 or (isinstance(status, int) and status >= 500):
                raise TransientError(text) from None
            raise PermanentError(text, kind="request") from None

    async def upload(self, data: bytes) -> str:
        obj = await self._call("upload", self._litellm.acreate_file, file=("judgekit-batch.jsonl", data),
                               purpose="batch")
        return str(obj.id)

    async def create(self, file_id: str) -> dict[str, Any]:
        obj = await self._call("create", self._litellm.acreate_batch, completion_window="24h", endpoint=ENDPOINT,
                               input_file_id=file_id)
        return dict(obj.model_dump())

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return dict((await self._call("retrieve", self._litellm.aretrieve_batch, batch_id=batch_id)).model_dump())

    async def content(self, file_id: str) -> bytes:
        obj = await self._call("content", self._litellm.afile_content, file_id=file_id)
        return bytes(obj.content)

    async def aclose(self) -> None:
        return None


def make_batch_api(spec: JudgeSpec) -> HttpBatchAPI | LiteLLMBatchAPI:
    """The transport for ``spec`` (see the module docstring); local judges have none."""
    if spec.model.startswith("local/"):
        raise JudgekitError(f"{spec.model} is a local judge: --batch is for provider APIs", field="--batch")
    if spec.resolved_backend() == "lean":
        return HttpBatchAPI(spec)
    return LiteLLMBatchAPI(spec)


async def _with_retries(fn: Callable[[], Any], tries: int = 5, base: float = 0.5) -> Any:
    """``fn()`` with a few retries of transient errors (submission: a dropped connection is not worth a run)."""
    for i in range(tries):
        try:
            return await fn()
        except TransientError:
            if i == tries - 1:
                raise
            await asyncio.sleep(min(10.0, base * 2 ** i))
    raise AssertionError("unreachable")


@dataclass
class _Open:
    """A batch this run waits for."""

    batch_id: str
    ji: int
    custom_ids: list[str]
    status: str
    failures: int = 0


class BatchRunner(Runner):
    """A :class:`~judgekit.judging.runner.Runner` that sends its calls as provider batches (see the module
    docstring); planning from the store and the judgments it assembles are the runner's own."""

    def __init__(self, responses: Sequence[Response], rubric: Rubric, judges: Sequence[JudgeSpec], store: Store,
                 options: RunOptions, progress: Callable[[int, int, float], None] | None = None, *,
                 notify: Callable[[str], None] | None = None, poll: float = DEFAULT_POLL_S) -> None:
        super().__init__(responses, rubric, judges, store, options, progress, notify=notify)
        if not poll > 0:
            raise JudgekitError("must be positive", field="--batch-poll")
        for spec in self.judges:
            if spec.model.startswith("local/"):
                raise JudgekitError(f"{spec.model} is a local judge: --batch is for provider APIs", field="--batch")
        self.poll = poll
        self._seen: set[str] = set()  # batch ids this run waited for
        self.batches_created = 0
        self.batches_attached = 0

    # ---- request bodies ------------------------------------------------------------------------------
    def _request(self, unit: _Unit, backend: Any) -> ChatRequest:
        spec = self.judges[unit.ji]
        send_images = spec.images == "yes" or (spec.images == "auto" and getattr(backend, "accepts_images", True))
        messages = build_messages(self.rubric, self.responses[unit.ri], images=send_images)
        for c in unit.stored:  # the conversation so far, as a resumed live run sends it
            messages.append({"role": "assistant", "content": c.reply or ""})
            messages.append(reask_message(c.reason or "invalid reply", self.rubric))
        seed = None if spec.seed is None else spec.seed + unit.sample
        return ChatRequest(messages=messages, temperature=spec.temperature, seed=seed, max_tokens=spec.max_tokens,
                           schema=self.schema, timeout=spec.timeout)

    def _body(self, req: ChatRequest, backend: Any) -> dict[str, Any]:
        fmt = backend.formats.current
        body_of = getattr(backend, "_body", None)
        if body_of is not None:  # the lean backend: its own request shaping
            return dict(body_of(req, fmt))
        spec = backend.spec
        body: dict[str, Any] = {"model": spec.model.split("/", 1)[1] if "/" in spec.model else spec.model,
                                "messages": req.messages, "temperature": req.temperature,
                                "max_tokens": req.max_tokens}
        if req.seed is not None:
            body["seed"] = req.seed
        rf = response_format_body(fmt, req.schema)
        if rf is not None:
            body["response_format"] = rf
        body.update(spec.extra)
        return body

    # ---- the run -------------------------------------------------------------------------------------
    async def run(self) -> RunReport:
        from judgekit.judging.runner import _gc_paused

        start = time.perf_counter()
        with _gc_paused():
            units = self._plan()
        todo = [u for u in units if u.result is None]
        if todo:  # the store's identity rows, as the live runner writes them (judgekit.judging.merge)
            from judgekit.judging.merge import record_identity
            from judgekit.judging.prompt import PROMPT_VERSION

            record_identity(self.store, rubric_fingerprint=self.rubric.fingerprint, rubric_name=self.rubric.name,
                            rubric_version=self.rubric.version, prompt_version=PROMPT_VERSION,
                            judges=[spec.identity() for spec in self.judges])
        self.report.calls_cached = sum(u.cached_calls for u in units)
        self._total = len(units)
        self._done = self._total - len(todo)
        if self.progress:
            self.progress(self._done, self._total, 0.0)
        backends = [make_backend(spec, concurrency=1) for spec in self.judges]  # request shaping only
        apis = [make_batch_api(spec) for spec in self.judges]
        try:
            await self._rounds(todo, backends, apis)
        finally:
            for a in apis:
                await a.aclose()
            for b in backends:
                await b.aclose()
        with _gc_paused():
            self.report.judgments = self._assemble(units)
        self.report.wall_s = time.perf_counter() - start
        return self.report

    def _settle(self, unit: _Unit, result: SampleResult) -> None:
        unit.result = result
        self._done += 1
        if self.progress:
            self.progress(self._done, self._total, self.report.cost)

    def _note(self, text: str) -> None:
        if self.notify is not None:
            self.notify(text)

    async def _rounds(self, todo: list[_Unit], backends: list[Any], apis: list[Any]) -> None:
        while True:
            live = [u for u in todo if u.result is None]
            if not live:
                return
            if self.control.stopped:
                for u in live:
                    self._settle(u, SampleResult(sample=u.sample, status="unscored", reason=NOT_RUN_STOPPED,
                                                 attempts=len(u.stored)))
                return
            by_cid = {custom_id(u.key, len(u.stored)): u for u in live}
            names = {s.model: ji for ji, s in enumerate(self.judges)}
            waiting: list[_Open] = []
            covered: set[str] = set()
            for row in self.store.open_batches():
                ji = names.get(row["judge"])
                if ji is not None and by_cid.keys() & set(row["custom_ids"]):
                    waiting.append(_Open(row["batch_id"], ji, row["custom_ids"], row["status"]))
                    covered.update(row["custom_ids"])
            for w in waiting:
                if w.batch_id not in self._seen:  # submitted by an earlier run
                    self._seen.add(w.batch_id)
                    self.batches_attached += 1
                    self._note(f"re-attached to batch {w.batch_id} ({len(w.custom_ids)} requests to "
                               f"{self.judges[w.ji].model}, last seen {w.status}), submitted by an earlier run")
            for ji in range(len(self.judges)):
                units = [u for cid, u in by_cid.items() if u.ji == ji and cid not in covered]
                if units:
                    opened = await self._submit(units, ji, backends[ji], apis[ji])
                    if opened is not None:
                        waiting.append(opened)
            if not waiting:
                continue  # every unit was settled (budget) or the run stopped
            await self._wait(waiting, by_cid, apis)

    async def _submit(self, units: list[_Unit], ji: int, backend: Any, api: Any) -> _Open | None:
        spec = self.judges[ji]
        prices = batch_prices(spec)
        lines: list[str] = []
        ids: list[str] = []
        estimate = 0.0
        for u in units:
            req = self._request(u, backend)
            if prices is not None and self.opt.max_cost is not None:
                chars = sum(len(m["content"]) if isinstance(m["content"], str) else 4000 for m in req.messages)
                cost = chars / 4 * prices[0] + req.max_tokens * prices[1]
                if self.report.cost + estimate + cost > self.opt.max_cost:
                    self.report.budget_reached = True
                    self._settle(u, SampleResult(sample=u.sample, status="unscored", reason=NOT_RUN_BUDGET,
                                                 attempts=len(u.stored)))
                    continue
                estimate += cost
            cid = custom_id(u.key, len(u.stored))
            ids.append(cid)
            lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT,
                                     "body": self._body(req, backend)}, ensure_ascii=False))
        if not lines:
            return None
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            file_id = await _with_retries(lambda: api.upload(data))
            if self.control.stopped:  # Ctrl-C during the upload: create nothing (an unused file costs nothing)
                return None
            batch = await _with_retries(lambda: api.create(file_id))
        except (TransientError, PermanentError) as exc:
            text = _redact(str(exc), spec)
            sent = set(ids)
            for u in units:
                if custom_id(u.key, len(u.stored)) in sent:
                    self._fail(u, f"batch submission failed: {text}")
            return None
        except RunAborted as exc:
            raise RunAborted(_redact(exc.message, spec)) from None
        # recorded before the next await: a Ctrl-C from here on leaves the batch to re-attach to
        self.store.add_batch(batch_id=str(batch["id"]), judge=spec.model, input_file_id=file_id,
                             status=str(batch.get("status") or "validating"), custom_ids=ids)
        self.batches_created += 1
        self._seen.add(str(batch["id"]))
        self._note(f"submitted batch {batch['id']} ({len(ids)} requests to {spec.model}); Ctrl-C stops waiting, "
                   "the next run re-attaches")
        return _Open(str(batch["id"]), ji, ids, str(batch.get("status") or "validating"))

    def _fail(self, unit: _Unit, text: str) -> None:
        """A request that got no usable reply: unscored with the reason, recorded, retried by the next run."""
        spec = self.judges[unit.ji]
        self.report.transport_failures += 1
        self.report.failure_reasons[text.split(" (gave up after", 1)[0][:200]] += 1
        self.store.add_failure(key=unit.key, response=self.responses[unit.ri], judge=spec.model, reason=text)
        self._settle(unit, SampleResult(sample=unit.sample, status="unscored", attempts=len(unit.stored),
                                        reason=f"error: {text}"))

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.control.stopped and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.2))

    async def _wait(self, waiting: list[_Open], by_cid: dict[str, _Unit], apis: list[Any]) -> None:
        interval = self.poll
        pending = list(waiting)
        while pending:
            await self._sleep(interval)
            if self.control.stopped:
                return  # everything submitted is in the store; the next run re-attaches
            interval = min(interval * 1.5, 10 * self.poll)
            for w in list(pending):
                spec = self.judges[w.ji]
                try:
                    batch = await apis[w.ji].retrieve(w.batch_id)
                except (TransientError, PermanentError) as exc:
                    w.failures += 1
                    if isinstance(exc, PermanentError) or w.failures >= _RETRIEVE_FAILURES:
                        text = _redact(str(exc), spec)
                        self.store.set_batch_status(w.batch_id, "collected")
                        pending.remove(w)
                        for cid in w.custom_ids:
                            if (u := by_cid.get(cid)) is not None and u.result is None:
                                self._fail(u, f"batch {w.batch_id} could not be read: {text}")
                    continue
                w.failures = 0
                status = str(batch.get("status") or "")
                if status != w.status:
                    w.status = status
                    self.store.set_batch_status(w.batch_id, status)
                if status in TERMINAL:
                    pending.remove(w)
                    try:
                        await self._collect(w, batch, by_cid, apis[w.ji])
                    except (TransientError, PermanentError) as exc:  # the batch stays open: the next run re-reads it
                        text = _redact(str(exc), spec)
                        for cid in w.custom_ids:
                            if (u := by_cid.get(cid)) is not None and u.result is None \
                                    and custom_id(u.key, len(u.stored)) == cid:
                                self._fail(u, f"the results of batch {w.batch_id} could not be read: {text}")

    async def _collect(self, w: _Open, batch: dict[str, Any], by_cid: dict[str, _Unit], api: Any) -> None:
        spec = self.judges[w.ji]
        backend_secrets = _backend_secrets(_SpecHolder(spec))  # type: ignore[arg-type]
        seen: set[str] = set()
        for field_name in ("output_file_id", "error_file_id"):
            file_id = batch.get(field_name)
            if not file_id:
                continue
            raw = await _with_retries(lambda fid=file_id: api.content(fid))
            for line in raw.decode("utf-8", "replace").splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    cid = str(rec["custom_id"])
                except (ValueError, KeyError, TypeError):
                    continue
                seen.add(cid)
                unit = by_cid.get(cid)
                if unit is None or unit.result is not None or custom_id(unit.key, len(unit.stored)) != cid:
                    continue  # not ours, or already settled (a re-collected batch)
                self._line(unit, rec, backend_secrets)
        status = str(batch.get("status"))
        errors = batch.get("errors") or {}
        detail = ""
        if isinstance(errors, dict) and errors.get("data"):
            detail = ": " + "; ".join(str(e.get("message", e)) for e in errors["data"][:3] if isinstance(e, dict))
        for cid in w.custom_ids:
            unit = by_cid.get(cid)
            if cid in seen or unit is None or unit.result is not None:
                continue
            if custom_id(unit.key, len(unit.stored)) != cid:
                continue
            self._fail(unit, _redact(f"batch {w.batch_id} {status} without a reply to this request{detail}", spec))
        self.store.set_batch_status(w.batch_id, "collected")

    def _line(self, unit: _Unit, rec: dict[str, Any], secrets: tuple[str, ...]) -> None:
        """One line of an output or error file for the pending attempt of ``unit``."""
        spec = self.judges[unit.ji]
        response = rec.get("response") or {}
        err = rec.get("error")
        code = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if err or code != 200 or not isinstance(body, dict):
            what = err if err else (body.get("error") if isinstance(body, dict) else body)
            if isinstance(what, dict):
                what = what.get("message") or json.dumps(what)
            self._fail(unit, _redact(f"HTTP {code} in the batch: {str(what)[:300]}" if code else
                                     f"batch error: {str(what)[:300]}", spec))
            return
        try:
            choice = body["choices"][0]
            text = choice["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            self._fail(unit, f"malformed completion body in the batch: {json.dumps(body)[:200]}")
            return
        text = redact(text, secrets)
        usage = body.get("usage") or {}
        t_in, t_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        prices = batch_prices(spec)
        cost = t_in * prices[0] + t_out * prices[1] if prices else None
        self.report.count_call(t_in, t_out, cost)
        if cost is not None:
            unit.cost = (unit.cost or 0.0) + cost
        unit.tokens_in += t_in
        unit.tokens_out += t_out
        unit.calls += 1
        attempt = len(unit.stored)
        try:
            parsed = parse_reply(text, self.rubric)
        except ReplyError as exc:
            reason = str(exc)
            if choice.get("finish_reason") == "length":
                reason += " (the reply was cut off at max_tokens)"
            self._store(unit, attempt, "invalid", text, t_in, t_out, cost, None, None, reason)
            if len(unit.stored) > self.opt.reasks:
                self._settle(unit, SampleResult(sample=unit.sample, status="unscored", attempts=len(unit.stored),
                                                reason=f"invalid reply after {len(unit.stored)} attempt(s): {reason}"))
            return  # else re-asked in the next round
        self._store(unit, attempt, "ok", text, t_in, t_out, cost, parsed.scores, parsed.rationale, None)
        self._settle(unit, SampleResult(sample=unit.sample, status="scored", scores=parsed.scores,
                                        rationale=parsed.rationale, attempts=len(unit.stored)))

    def _store(self, unit: _Unit, attempt: int, status: str, text: str | None, t_in: int, t_out: int,
               cost: float | None, scores: dict[str, int] | None, rationale: str | None, reason: str | None) -> None:
        spec = self.judges[unit.ji]
        seed = None if spec.seed is None else spec.seed + unit.sample
        self.store.add_call(
            key=unit.key, attempt=attempt, status=status, response=self.responses[unit.ri], judge=spec.model,
            sample=unit.sample, reply=text, scores=scores, rationale=rationale, reason=reason, tokens_in=t_in,
            tokens_out=t_out, cost=cost, latency_s=0.0, temperature=spec.temperature, seed=seed,
            settings=self._settings_text(unit.ji), rubric=self.rubric.name, rubric_version=self.rubric.version)
        unit.stored.append(StoredCall(attempt, status, text, scores, rationale, reason, t_in, t_out, cost, 0.0))


@dataclass
class _SpecHolder:
    """Something with a ``spec`` for :func:`~judgekit.judging.control._backend_secrets`."""

    spec: JudgeSpec


__all__ = ["BatchRunner", "HttpBatchAPI", "LiteLLMBatchAPI", "batch_prices", "custom_id", "make_batch_api"]
