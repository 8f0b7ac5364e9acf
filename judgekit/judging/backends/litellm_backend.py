"""The universal path: any provider litellm knows (``openai/...``, ``anthropic/...``, ``ollama/...``, or an
OpenAI-compatible server through ``api_base``). litellm is imported here, lazily, after
``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set (see :mod:`judgekit`). litellm's and the openai client's own
retries are switched off: the runner retries, with back-off, identically for every backend.

Several servers of one judge (``JudgeSpec.deployments``, or several ``--api-base`` for one judge) go through a
litellm ``Router``: one deployment per server in its ``model_list``, all in one model group. The Router's
settings and why:

- ``num_retries=0`` (and no fallbacks): the runner's retry loop (:func:`judgekit.judging.control.call_with_retries`,
  ``--retries`` with back-off) stays the only one, so a call is tried at most ``retries + 1`` times in all, not
  ``(retries + 1) x (num_retries + 1)``; each of those tries goes to the server chosen at that moment.
- the choice is judgekit's own (a custom routing strategy, ``Router.set_custom_routing_strategy``) over
  :class:`~judgekit.judging.backends.servers.ServerPool`: least busy healthy server, weights, per-server
  ``max_concurrency``/``rpm``/``tpm``, exponential cooldown of a failing server; the same rules as the lean path.
  litellm's own cooldown (``allowed_fails``/``cooldown_time``) is switched off (``disable_cooldowns=True``): it
  never cools a server that refuses connections (it skips ``APIConnectionError``), and it would only apply to
  litellm's built-in strategies; litellm's ``least-busy`` strategy would even send every call to a dead server,
  whose failures keep its in-flight count at zero.
"""

from __future__ import annotations

import contextvars
import os
import time
from typing import Any

from judgekit.judging.backends import (
    SETUP_STATUS,
    ChatRequest,
    ChatResult,
    FormatNegotiator,
    JudgeSpec,
    PermanentError,
    TransientError,
    rejects_response_format,
    response_format_body,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _import_litellm() -> Any:
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def check_model(model: str, api_base: str | None, flag: str = "--judge", api_key_env: str | None = None) -> None:
    """Refuse, before any call, what would make every call fail the same way: a model string whose provider
    litellm does not know (``foobar/some-model``), or a hosted provider whose API key is nowhere (no
    ``--api-key-env`` and the provider's own variable, e.g. OPENAI_API_KEY, unset; litellm would report it
    as a retryable server error on every call). Raises :class:`~judgekit.io.errors.JudgekitError` naming ``flag``
    (or ``--api-key-env``)."""
    from judgekit.io.errors import JudgekitError

    litellm = _import_litellm()
    try:
        litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JudgekitError(f"litellm does not know how to call {model!r} ({first[:200]}); give a provider prefix "
                            "it knows (openai/, anthropic/, ollama/, hosted_vllm/, ...) or, for an "
                            "OpenAI-compatible server, openai/NAME with --api-base", field=flag) from None
    if api_base or api_key_env:
        return
    try:
        missing = litellm.validate_environment(model=model).get("missing_keys") or []
    except Exception:  # litellm cannot tell for this model: let the first call say
        return
    keys = [k for k in missing if k.endswith(("_KEY", "_TOKEN"))]
    if keys:
        raise JudgekitError(f"{model} needs an API key: set {' or '.join(keys)}, or name the variable that holds "
                            "it with --api-key-env", field="--api-key-env") from None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _litellm_cost(litellm: Any, resp: Any) -> float | None:
    """The cost of one completion in USD, or None when litellm cannot price the model (e.g. a self-hosted
    one: cost unknown, not zero).

    litellm prices every response itself, with the model name that was asked for, and leaves the result in
    ``resp._hidden_params["response_cost"]`` (None when unpriced). That figure is used as it is: calling
    ``completion_cost(completion_response=resp)`` again cost ~0.7 ms of CPU per call (a fifth of litellm's
    own cost, bench/bench_runner.py phase B), and it prices by the model name in the reply, which an
    OpenAI-compatible server may report differently (then it raised, and a priced model was recorded as
    unpriced). It remains the fallback for a response without the hidden figure.
    """
    hidden = getattr(resp, "_hidden_params", None)
    if isinstance(hidden, dict):
        if "response_cost" in hidden:
            value = hidden["response_cost"]
            return None if value is None else float(value)
    elif hidden is not None and getattr(hidden, "response_cost", None) is not None:
        return float(hidden.response_cost)
    try:
        return float(litellm.completion_cost(completion_response=resp))
    except Exception:
        return None


def _is_setup_text(text: str) -> bool:
    """Whether a litellm error text says that no call can succeed (no credentials, unknown provider), whatever
    exception class litellm chose for it."""
    t = text.lower()
    return any(s in t for s in ("missing credentials", "api_key client option must be set",
                                "llm provider not provided", "no api key provided"))


def _nothing_answered(exc: BaseException) -> bool:
    """Whether a litellm connection error means that nothing answered at the address (refused, no route,
    unknown host), judged by the causes it wraps and, failing those, its text."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError | OSError) and getattr(e, "errno", None) in (111, 113, 101, -2, -3):
            return True
        e = e.__cause__ or e.__context__
    text = str(exc).lower()
    return any(s in text for s in ("connection refused", "connect call failed", "name or service not known",
                                   "no route to host", "network is unreachable", "cannot connect"))


#: The servers chosen for the call in progress (set by :meth:`LiteLLMBackend.complete`, filled by the routing).
_CHOSEN: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("judgekit_chosen_server", default=None)
_GROUP = "judgekit-judge"


def _router(litellm: Any, spec: JudgeSpec, pool: Any) -> Any:
    """A litellm Router with one deployment per server of ``spec``, choosing through ``pool`` (see the module
    docstring for its settings)."""
    from litellm.types.router import CustomRoutingStrategyBase

    key = spec.api_key()
    model_list = [{"model_name": _GROUP, "model_info": {"id": f"judgekit-server-{s.index}"},
                   "litellm_params": {"model": spec.model, "api_base": s.dep.api_base, "api_key": key or "none",
                                      "max_retries": 0}}
                  for s in pool.servers]
    router = litellm.Router(model_list=model_list, num_retries=0, disable_cooldowns=True, set_verbose=False)
    by_id = {d["model_info"]["id"]: d for d in router.model_list}

    def deployment(server: Any) -> Any:
        chosen = _CHOSEN.get()
        if chosen is not None:
            chosen.append(server)
        return by_id[f"judgekit-server-{server.index}"]

    class PoolRouting(CustomRoutingStrategyBase):
        async def async_get_available_deployment(self, model: str, messages: Any = None, input: Any = None,
                                                 specific_deployment: Any = False, request_kwargs: Any = None,
                                                 **_: Any) -> Any:
            tokens = 0
            if pool.limited:  # the call's estimated tokens, for a server's tpm (as the runner's own --tpm)
                tokens = sum(len(m["content"]) if isinstance(m.get("content"), str) else 1000
                             for m in messages or []) // 4 + int((request_kwargs or {}).get("max_tokens") or 0)
            return deployment(await pool.acquire(tokens))

        def get_available_deployment(self, model: str, messages: Any = None, input: Any = None,
                                     specific_deployment: Any = False, request_kwargs: Any = None,
                                     **_: Any) -> Any:
            server = pool.pick()
            if server is None:  # the sync API cannot wait for a slot: the least loaded one
                server = min(pool.servers, key=lambda s: s.in_flight)
                server.in_flight += 1
            return deployment(server)

    router.set_custom_routing_strategy(PoolRouting())
    return router


class LiteLLMBackend:
    kind = "litellm"

    def __init__(self, spec: JudgeSpec) -> None:
        self.spec = spec
        self.model = spec.model
        self._litellm = _import_litellm()
        ex = self._litellm.exceptions
        self._transient: tuple[type[BaseException], ...] = (
            ex.RateLimitError, ex.Timeout, ex.APIConnectionError, ex.InternalServerError,
            ex.ServiceUnavailableError, ex.BadGatewayError,
        )
        initial = None
        if spec.response_format == "auto" and not spec.api_base:
            try:  # a hosted provider: litellm knows whether the model takes a JSON schema
                initial = "json_schema" if self._litellm.supports_response_schema(spec.model) else "none"
            except Exception:  # litellm raises for unmapped models
                initial = "none"
        self.formats = FormatNegotiator(spec.response_format, initial)
        # Images go to judges litellm knows to accept them, and to any OpenAI-compatible server (api_base),
        # whose capabilities litellm cannot know; a known text-only model gets the text alone.
        try:
            self.accepts_images = bool(spec.api_base) or bool(self._litellm.supports_vision(spec.model))
        except Exception:
            self.accepts_images = True
        self.pool: Any = None
        self._router: Any = None
        if spec.deployments:  # servers listed: through a Router (see the module docstring)
            from judgekit.judging.backends.servers import ServerPool

            self.pool = ServerPool(spec.deployments)
            self._router = _router(self._litellm, spec, self.pool)

    def server_stats(self) -> dict[str, dict[str, Any]]:
        """Calls, failures and mean latency per server; empty with one server or none."""
        return self.pool.stats() if self.pool is not None else {}

    def _kwargs(self, req: ChatRequest, fmt: str) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": self.spec.model, "messages": req.messages, "temperature": req.temperature,
            "max_tokens": req.max_tokens, "timeout": req.timeout, "num_retries": 0, "max_retries": 0,
        }
        if req.seed is not None:
            kw["seed"] = req.seed
        if self._router is not None:  # the servers and the key are in the Router's deployments
            kw["model"] = _GROUP
            del kw["num_retries"]  # the Router's own: 0
        else:
            if self.spec.api_base:
                kw["api_base"] = self.spec.api_base
            key = self.spec.api_key()
            if key:
                kw["api_key"] = key
            elif self.spec.api_base:
                kw["api_key"] = "none"  # OpenAI-compatible servers often need no key, but the client wants one
        rf = response_format_body(fmt, req.schema)
        if rf is not None:
            kw["response_format"] = rf
        kw.update(self.spec.extra)
        return kw

    async def complete(self, req: ChatRequest) -> ChatResult:
        while True:
            fmt = self.formats.current
            # outside the try: a missing API key variable is a JudgekitError, not a call error
            kwargs = self._kwargs(req, fmt)
            try:
                return await self._complete(kwargs)
            except (TransientError, PermanentError) as exc:
                if not rejects_response_format(None, str(exc)):
                    raise
                if not self.formats.fall_back(fmt):  # a rejected format is not worth retrying
                    raise PermanentError(f"{exc} (the server rejects --response-format {fmt})", kind="setup") from None

    async def _complete(self, kwargs: dict[str, Any]) -> ChatResult:
        if self.pool is None:
            return await self._complete_one(kwargs)
        chosen: list[Any] = []
        token = _CHOSEN.set(chosen)
        pool = self.pool
        try:
            res = await self._complete_one(kwargs)
        except TransientError as exc:
            for server in chosen:
                pool.done(server, error=exc, transient=True, retry_after=exc.retry_after,
                          connect=exc.kind == "connect")
            if exc.kind == "connect" and not pool.nothing_answers():
                exc.kind = "other"  # one dead server among live ones: cooled down, not a reason to stop
            raise
        except PermanentError as exc:
            for server in chosen:
                pool.done(server, error=exc)
            raise
        except BaseException:
            for server in chosen:
                pool.done(server, counted=False)
            raise
        finally:
            _CHOSEN.reset(token)
        for server in chosen:
            pool.done(server, latency=res.latency_s)
        return res

    async def _complete_one(self, kwargs: dict[str, Any]) -> ChatResult:
        start = time.perf_counter()
        try:
            resp = await (self._router or self._litellm).acompletion(**kwargs)
        except self._transient as exc:
            if _is_setup_text(str(exc)):  # litellm reports a missing key as a server error: it is not one
                raise PermanentError(f"{type(exc).__name__}: {str(exc)[:300]}", kind="setup") from None
            kind = "connect" if isinstance(exc, self._litellm.exceptions.APIConnectionError) \
                and _nothing_answered(exc) else "other"
            raise TransientError(f"{type(exc).__name__}: {str(exc)[:300]}", retry_after=_retry_after(exc),
                                 kind=kind) from None
        except (TimeoutError, ConnectionError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}",
                                 kind="connect" if isinstance(exc, ConnectionRefusedError) else "other") from None
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and (status == 429 or status >= 500):
                raise TransientError(f"{type(exc).__name__}: {str(exc)[:300]}",
                                     retry_after=_retry_after(exc)) from None
            ex = self._litellm.exceptions
            setup = isinstance(exc, ex.AuthenticationError | ex.PermissionDeniedError | ex.NotFoundError) or (
                isinstance(status, int) and status in SETUP_STATUS) or _is_setup_text(str(exc))
            raise PermanentError(f"{type(exc).__name__}: {str(exc)[:300]}",
                                 kind="setup" if setup else "request") from None
        latency = time.perf_counter() - start
        choice = resp.choices[0]
        text = choice.message.content
        usage = getattr(resp, "usage", None)
        t_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        t_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = _litellm_cost(self._litellm, resp)
        if self.spec.price_in is not None or self.spec.price_out is not None:
            cost = (t_in * (self.spec.price_in or 0.0) + t_out * (self.spec.price_out or 0.0)) / 1e6
        return ChatResult(text=text, tokens_in=t_in, tokens_out=t_out, cost=cost, latency_s=latency,
                          finish_reason=getattr(choice, "finish_reason", None))

    async def aclose(self) -> None:
        return None
