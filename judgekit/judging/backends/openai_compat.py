"""The lean path: kept-alive HTTP/1.1 connections (:mod:`judgekit.judging.backends.http`) to an
OpenAI-compatible ``/chat/completions`` endpoint.

Written by hand (not through litellm or the openai client) because those cost 2-4 ms of CPU per call,
which caps a 2-core client near 240 calls/s; and on judgekit's own small HTTP client rather than aiohttp, which
cost ~0.25 s to import and ~0.25 ms more CPU per call (bench/bench_runner.py, phases A and D).

Several servers (``JudgeSpec.deployments``, or several ``--api-base`` for one judge) share the one client; each
call goes to the least busy healthy server and a server whose call failed transiently is cooled down
(:class:`~judgekit.judging.backends.servers.ServerPool`; the rules are in that module). The failed call still
raises :class:`TransientError`, and the runner's retry goes to another server.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from pydantic_core import to_json  # the request body: ~4x faster than json.dumps (bench/bench_runner.py)

from judgekit.judging.backends import (
    SETUP_STATUS,
    ChatRequest,
    ChatResult,
    FormatNegotiator,
    JudgeSpec,
    PermanentError,
    TransientError,
    price_per_token,
    rejects_response_format,
    response_format_body,
)
from judgekit.judging.backends.http import ConnectFailed, HttpClient, HttpFailure
from judgekit.judging.backends.servers import Server, ServerPool

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


def _retry_after(headers: dict[str, str]) -> float | None:
    """The Retry-After header in seconds (header names are lower-cased by the HTTP client)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class OpenAICompatBackend:
    kind = "lean"
    accepts_images = True  # an OpenAI-compatible server is assumed multimodal; use --no-images if it is not

    def __init__(self, spec: JudgeSpec, *, concurrency: int) -> None:
        self.spec = spec
        self.model = spec.model
        self._wire_model = spec.model.split("/", 1)[1] if spec.model.startswith(("openai/", "hosted_vllm/")) \
            else spec.model
        assert spec.api_base is not None
        self.pool = ServerPool(spec.servers())
        for server in self.pool.servers:
            server.extra["url"] = server.dep.api_base.rstrip("/") + "/chat/completions"
        self._url = self.pool.servers[0].extra["url"]
        self._concurrency = concurrency
        self._client: HttpClient | None = None
        self.formats = FormatNegotiator(spec.response_format)
        if spec.price_in is not None or spec.price_out is not None:
            self._prices: tuple[float, float] | None = ((spec.price_in or 0.0) / 1e6, (spec.price_out or 0.0) / 1e6)
        else:
            self._prices = price_per_token(self._wire_model)

    def _get_client(self) -> HttpClient:
        if self._client is None:
            headers = {"Content-Type": "application/json", "User-Agent": "judgekit"}
            key = self.spec.api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._client = HttpClient(headers, max_idle=max(self._concurrency, 1) + 4)
        return self._client

    def _body(self, req: ChatRequest, fmt: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._wire_model, "messages": req.messages,
                                "temperature": req.temperature, "max_tokens": req.max_tokens}
        if req.seed is not None:
            body["seed"] = req.seed
        rf = response_format_body(fmt, req.schema)
        if rf is not None:
            body["response_format"] = rf
        body.update(self.spec.extra)
        return body

    def server_stats(self) -> dict[str, dict[str, Any]]:
        """Calls, failures and mean latency per server (see :meth:`ServerPool.stats`)."""
        return self.pool.stats()

    async def complete(self, req: ChatRequest) -> ChatResult:
        pool = self.pool
        tokens = 0
        if pool.limited:
            tokens = sum(len(m["content"]) if isinstance(m["content"], str) else 1000
                         for m in req.messages) // 4 + req.max_tokens
        server = await pool.acquire(tokens)
        try:
            res = await self._complete(req, server)
        except TransientError as exc:
            pool.done(server, error=exc, transient=True, retry_after=exc.retry_after, connect=exc.kind == "connect")
            if exc.kind == "connect" and len(pool.servers) > 1 and not pool.nothing_answers():
                exc.kind = "other"  # one dead server among live ones: cooled down, not a reason to stop
            raise
        except PermanentError as exc:
            pool.done(server, error=exc)
            raise
        except BaseException:
            pool.done(server, counted=False)  # cancelled: no outcome
            raise
        pool.done(server, latency=res.latency_s)
        return res

    async def _complete(self, req: ChatRequest, server: Server) -> ChatResult:
        client = self._get_client()
        url = server.extra["url"]
        start = time.perf_counter()
        try:
            async with asyncio.timeout(req.timeout):
                while True:
                    fmt = self.formats.current
                    resp = await client.post(url, to_json(self._body(req, fmt)))
                    if resp.status == 200:
                        raw = resp.body
                        break
                    detail = resp.body[:300].decode("utf-8", "replace")
                    msg = f"HTTP {resp.status} from {url}: {detail}"
                    if rejects_response_format(resp.status, detail):
                        if self.formats.fall_back(fmt):
                            continue  # the server does not take this response_format: try the next one
                        raise PermanentError(msg + f" (the server rejects --response-format {fmt})", kind="setup")
                    if resp.status in _TRANSIENT_STATUS or resp.status >= 500:
                        raise TransientError(msg, retry_after=_retry_after(resp.headers))
                    raise PermanentError(msg, kind="setup" if resp.status in SETUP_STATUS else "request")
        except TimeoutError:
            raise TransientError(f"timed out after {req.timeout:g} s") from None
        except ConnectFailed as exc:  # nothing answered: refused, no route, unknown host, TLS refused
            raise TransientError(f"connection error: {exc.reason}", kind="connect") from None
        except HttpFailure as exc:
            raise TransientError(f"connection error: {exc}") from None
        latency = time.perf_counter() - start
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise TransientError(f"malformed completion body: {raw[:200]!r}") from None
        usage = data.get("usage") or {}
        t_in = int(usage.get("prompt_tokens") or 0)
        t_out = int(usage.get("completion_tokens") or 0)
        cost = t_in * self._prices[0] + t_out * self._prices[1] if self._prices else None
        return ChatResult(text=text, tokens_in=t_in, tokens_out=t_out, cost=cost, latency_s=latency,
                          finish_reason=choice.get("finish_reason"))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
