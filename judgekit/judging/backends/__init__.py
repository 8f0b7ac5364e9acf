"""Judge backends: one small protocol, one file per backend.

- :mod:`judgekit.judging.backends.openai_compat` (``lean``): kept-alive connections of judgekit's own HTTP/1.1
  client (:mod:`judgekit.judging.backends.http`) to an OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, ...);
  ~0.5 ms of CPU per call, whole runner included.
- :mod:`judgekit.judging.backends.litellm_backend` (``litellm``): any provider string litellm knows
  (``openai/...``, ``anthropic/...``, ``ollama/...``); ~4 ms of CPU per call, imported lazily.

- :mod:`judgekit.judging.backends.local` (``local/NAME``): a model run in-process (torch), scoring the response on
  the rubric directly (``judge_response``) instead of answering chat messages.
- :mod:`judgekit.judging.backends.servers`: several servers behind one judge (``JudgeSpec.deployments``): the
  least-busy choice and cooldown both the lean and the litellm path (through a litellm Router) use.

``auto`` picks ``lean`` when an ``--api-base`` is given and the model is ``openai/NAME`` (or has no
provider prefix), and ``litellm`` otherwise. Both raise :class:`TransientError` for what is worth retrying
(429, 408, 5xx, timeouts, dropped connections) and :class:`PermanentError` for the rest; the runner does
all retrying, parsing, storing and accounting, identically for both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, Protocol

from judgekit.io.errors import JudgekitError

ResponseFormat = Literal["auto", "json_schema", "json_object_schema", "json_object", "none"]

# What ``auto`` tries, in order, when a server rejects a response_format: the OpenAI json_schema form,
# llama-cpp-python's form ({"type": "json_object", "schema": ...}), then no constraint at all.
AUTO_FORMATS: tuple[str, ...] = ("json_schema", "json_object_schema", "none")


def response_format_body(fmt: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``fmt`` (None: send none)."""
    if fmt == "json_schema" and schema is not None:
        return {"type": "json_schema", "json_schema": {"name": "judgment", "schema": schema, "strict": True}}
    if fmt == "json_object_schema" and schema is not None:
        return {"type": "json_object", "schema": schema}
    if fmt in ("json_object", "json_object_schema"):
        return {"type": "json_object"}
    return None


def rejects_response_format(status: int | None, text: str) -> bool:
    """Whether an error reply says the server does not accept the response_format that was sent (some
    servers answer 400 or 422, llama-cpp-python answers 500 for a request-validation error)."""
    return (status is None or status in (400, 422, 500)) and "response_format" in text.lower()


class FormatNegotiator:
    """Tracks the response format in use. With ``auto`` it moves down :data:`AUTO_FORMATS` each time the
    server rejects the current one (shared by all calls of a backend, so concurrent rejections of the same
    format advance it once)."""

    def __init__(self, requested: str, initial: str | None = None) -> None:
        self.auto = requested == "auto"
        self.current = initial or (AUTO_FORMATS[0] if self.auto else requested)

    def fall_back(self, failed: str) -> bool:
        """Called after ``failed`` was rejected; True if the call should be re-sent with ``current``."""
        if not self.auto:
            return False
        if failed != self.current:  # another call already moved on
            return True
        order = list(AUTO_FORMATS)
        i = order.index(failed) if failed in order else len(order) - 1
        if i + 1 >= len(order):
            return False
        self.current = order[i + 1]
        return True


@dataclass(slots=True)
class ChatRequest:
    messages: list[dict[str, Any]]
    temperature: float
    seed: int | None
    max_tokens: int
    schema: dict[str, Any] | None = None
    timeout: float = 120.0


@dataclass(slots=True)
class ChatResult:
    text: str | None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None


class TransientError(Exception):
    """Worth retrying (with back-off): rate limits, 5xx, timeouts, dropped connections.

    ``kind`` is ``"connect"`` when nothing answered at all (connection refused, no route, unknown host): the
    runner stops early when the first tries of a run all fail that way (see ``judgekit.judging.control``); else
    ``"other"``.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, kind: str = "other") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind


class PermanentError(Exception):
    """Not worth retrying.

    ``kind``: ``"setup"`` when every call of the run would fail the same way (authentication 401/403, a model
    or URL the server does not have 404, an unknown provider, a missing key, a rejected --response-format):
    the runner stops the whole run at once with the cause (exit 2); ``"request"`` when only this request is
    bad (e.g. 400: a prompt over the context): the sample is unscored with the reason; ``"interrupted"``
    when Ctrl-C stopped a local judge before it scored this response.
    """

    def __init__(self, message: str, *, kind: str = "request") -> None:
        super().__init__(message)
        self.kind = kind


#: HTTP statuses that mean every call of the run will fail alike (a setup mistake, not a bad request).
SETUP_STATUS = frozenset({401, 403, 404, 405})


class Backend(Protocol):
    model: str
    kind: str
    accepts_images: bool

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...


@dataclass
class JudgeSpec:
    """Everything that identifies a judge and how it is called.

    ``temperature`` and ``seed`` are explicit and recorded with every judgment; sample ``k`` of a judgment
    is sent with ``seed + k`` so that repeated samples differ when ``temperature > 0``.
    The API key is read from the environment variable named by ``api_key_env`` at call time and never
    stored. ``price_in``/``price_out`` (USD per million tokens) override the price map for the lean path.

    Servers: ``api_base`` is one server; ``deployments`` (:class:`~judgekit.judging.backends.servers.Deployment`,
    two or more) are several servers of the same judge, each call going to the least busy healthy one (see
    :mod:`judgekit.judging.backends.servers`). With ``deployments``, ``api_base`` is the first one's. Neither is
    part of :meth:`identity`: a result is the same whichever server answered.
    """

    model: str
    api_base: str | None = None
    backend: Literal["auto", "lean", "litellm"] = "auto"
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 512
    timeout: float = 120.0
    response_format: ResponseFormat = "auto"
    images: Literal["auto", "yes", "no"] = "auto"
    api_key_env: str | None = None
    price_in: float | None = None
    price_out: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    deployments: list[Any] = field(default_factory=list)  # list[Deployment]; see the class docstring

    def __post_init__(self) -> None:
        if self.deployments and not self.api_base:
            self.api_base = self.deployments[0].api_base

    def servers(self) -> list[Any]:
        """The servers of this judge as :class:`~judgekit.judging.backends.servers.Deployment` (none for a
        hosted provider reached without --api-base)."""
        if self.deployments:
            return list(self.deployments)
        if not self.api_base:
            return []
        from judgekit.judging.backends.servers import Deployment

        return [Deployment(api_base=self.api_base)]

    def resolved_backend(self) -> Literal["lean", "litellm"]:
        if self.backend != "auto":
            return self.backend
        provider = self.model.split("/", 1)[0] if "/" in self.model else ""
        if self.api_base and provider in ("", "openai", "hosted_vllm"):
            return "lean"
        return "litellm"

    def identity(self) -> dict[str, Any]:
        """What makes two calls the same, as far as the judge is concerned (part of the store key).
        The API base and key are not part of it: the same model behind another address is the same judge."""
        return {"model": self.model, "temperature": self.temperature, "seed": self.seed,
                "max_tokens": self.max_tokens, "response_format": self.response_format,
                "images": self.images, "extra": self.extra}

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if value is None:
            raise JudgekitError(f"environment variable {self.api_key_env} is not set", field="--api-key-env")
        if not value.strip():
            raise JudgekitError(f"environment variable {self.api_key_env} is set but empty", field="--api-key-env")
        return value


def make_backend(spec: JudgeSpec, *, concurrency: int) -> Backend:
    """Build the backend for ``spec`` (see the module docstring for how ``auto`` chooses); ``local/...``
    models get :class:`judgekit.judging.backends.local.LocalBackend`."""
    if spec.model.startswith("local/"):
        from judgekit.judging.backends.local import LocalBackend, check_local_spec

        check_local_spec(spec)  # a clear error (missing packages, unknown model) before any work
        return LocalBackend(spec)  # type: ignore[return-value]
    if spec.resolved_backend() == "lean":
        if not spec.api_base:
            raise JudgekitError("the lean backend needs --api-base", field="--backend")
        from judgekit.judging.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(spec, concurrency=concurrency)
    from judgekit.judging.backends.litellm_backend import LiteLLMBackend

    return LiteLLMBackend(spec)


@cache
def _price_text() -> tuple[bytes, bool]:
    """The bytes of litellm's bundled price map (a UTF-8 JSON file, read without importing litellm, which costs
    ~3 s; empty when litellm is not installed or the file cannot be read), and whether it spells every string
    plainly: no ``\\u`` or ``\\/`` escape, so that a key is in the file only if the UTF-8 bytes of its
    :func:`json.dumps` form are (searched as bytes: decoding the 3 MB cost more than the searches)."""
    spec = find_spec("litellm")
    if spec is None or not spec.origin:
        return b"", True
    path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
    try:
        text = path.read_bytes()
    except OSError:
        return b"", True
    return text, _plain(text)


def _plain(text: bytes) -> bool:
    """Whether the JSON ``text`` has no ``\\u`` or ``\\/`` escape (each backslash begins an escape: a walk over
    the few backslashes, much faster than two substring searches of the whole text)."""
    i = text.find(b"\\")
    while i != -1:
        if text[i + 1:i + 2] in (b"u", b"/"):
            return False
        i = text.find(b"\\", i + 2)
    return True


@cache
def _price_map() -> dict[str, Any]:
    """litellm's bundled price map, parsed (~30 ms: only when a model's name occurs in it, see
    :func:`price_per_token`); empty when it is missing, not UTF-8 or not JSON."""
    text = _price_text()[0]
    try:
        return json.loads(text.decode("utf-8")) if text else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}


def price_per_token(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's price map, or None when the model is not priced.

    The map (3 MB) is parsed only when one of the names looked up occurs in its text as a JSON string: a model it
    does not know (a local server's own name) costs a text search, not the parse."""
    names = (model, model.split("/", 1)[-1])
    text, plain = _price_text()
    if plain and not any(json.dumps(name, ensure_ascii=False).encode() in text for name in names):
        return None
    prices = _price_map()
    for name in names:
        entry = prices.get(name)
        if entry and "input_cost_per_token" in entry:
            return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token", 0.0))
    return None
