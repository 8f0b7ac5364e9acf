"""A scripted OpenAI-compatible chat-completions server for fault-injection tests.

Endpoints (on 127.0.0.1): ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``.

Directive language
------------------
The text of all request messages (string contents and ``text`` parts) is concatenated and searched
for ``[[script:NAME]]``; the LAST occurrence wins. NAME is a comma-separated list of tokens:

``valid`` / ``valid=S``   valid JSON reply, every integer criterion = S (default 4). Default behaviour.
``fenced``                the JSON inside a ```json code fence, with a sentence before and after.
``prose``                 ``Here is my assessment: {json} Hope this helps.``
``malformed``             truncated, invalid JSON.
``out_of_range``          first criterion = 7 (or maximum + 1 when the maximum is >= 7).
``missing``               first criterion left out.
``float``                 first criterion = 3.5.
``malformed_then_valid``  first (non-fault) reply for the key is malformed, later ones valid.
``429xN`` / ``500xN`` / ``503xN``  first N requests for the key get that HTTP error (Retry-After: 0).
``dropxN``                first N requests for the key: connection closed without any HTTP response.
``slow=SECONDS``          sleep before answering.
``say=WORDS``             reply with the plain text WORDS (``_`` becomes a space): a model under test's answer.
``always429`` / ``always500`` / ``always503``  always that error; ``always401`` / ``always403`` /
                          ``always404`` too (setup mistakes: a refused key, an unknown model).
``echo_auth``             a valid reply whose rationale echoes the request's Authorization header (a server
                          that leaks the key inside a 200 answer).
``inject``                a verdict of 1s and 2s, then a quoted injected object of 5s (a steering attempt).
``bylength=N``            valid, every criterion = 1 + (characters of the answer under judgement) // N, within 1-5
                          (a judge with a scripted verbosity bias; the answer is the text between the case's
                          ``<<<ANSWER n>>>`` and ``<<<END ANSWER n>>>`` with the same nonce n).
``byseed``                valid, every criterion = 1 + (the request's seed mod 5) (scripted sampling noise).
``byimage``               valid, every criterion = 1 + (first byte of sha256 of the first image URL mod 5) (a judge
                          that looks at the image and nothing else); 4 without an image.

Faults (``429xN``, ``500xN``, ``503xN``, ``dropxN``) are consumed in the order written, e.g.
``429x1,dropx1,valid=5``: attempt 0 -> 429, attempt 1 -> dropped, attempts 2.. -> valid with 5.
An unknown token answers HTTP 400 so that typos in tests show up.

``[[script@MODEL:NAME]]`` applies only to requests whose ``model`` field is MODEL (the wire name, e.g.
``b`` for the judge ``openai/b``; MODEL cannot contain ``:``), so one answer can script each judge of a
panel differently. Among the directives that apply to a request, the last one wins.

The KEY of a request is sha256 of the text of its first user message, so a re-ask (which appends
messages) shares the key of the original request. Attempts are counted per key.

Criteria come from ``response_format`` (``json_schema.schema.properties``, every property of type
``integer`` with its ``minimum``/``maximum``); otherwise from a ``[[criteria:a,b,c]]`` directive
(scale 1-5); otherwise the five defaults below. Valid replies add ``"rationale": "scripted"``.

Whole-server faults (several servers behind one judge): ``ScriptedServer(fail_all=503)`` answers every request
with that HTTP status (``fail_all="drop"``: closes every connection without a response), whatever the script;
``ScriptedServer(max_concurrency=N)`` serves at most N requests at a time (the others queue, as on a GPU server
with N slots); ``.set_fail_all(...)`` changes the fault while running.

Authentication: ``ScriptedServer(api_key=KEY)`` answers HTTP 401 unless the request carries
``Authorization: Bearer KEY``. The log records only whether the header was present (``has_auth``) and,
with ``api_key`` set, whether it matched (``auth_ok``); never the header's value.

Process mode: ``python tests/scripted_server.py --port 0 --port-file PATH [--latency S] [--log PATH]``
writes the port to PATH once listening; ``--log`` appends one JSON line per request (flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

SCRIPT_RE = re.compile(r"\[\[script:([A-Za-z_0-9:.,=-]+)\]\]")
SCRIPT_ANY_RE = re.compile(r"\[\[script(?:@([^\]\s:]+))?:([A-Za-z_0-9:.,=-]+)\]\]")  # (model or '', spec)
ANSWER_RE = re.compile(r"<<<ANSWER (\w+)>>>\n(.*?)\n<<<END ANSWER \1>>>", re.DOTALL)
CRITERIA_RE = re.compile(r"\[\[criteria:([A-Za-z_0-9,-]+)\]\]")
FAULT_RE = re.compile(r"(429|500|503|drop)x(\d+)")
DEFAULT_CRITERIA = ["technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity", "overall"]
STYLES = {"valid", "fenced", "prose", "malformed", "out_of_range", "missing", "float", "malformed_then_valid",
          "echo_auth", "inject"}
ERROR_TYPES = {401: "invalid_api_key", 403: "permission_denied", 404: "model_not_found",
               429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}


def key_for(text: str) -> str:
    """The counting key for a request whose first user message has this text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parts(content: Any) -> tuple[list[str], int]:
    """Text pieces and the number of image parts of one message content."""
    if isinstance(content, str):
        return [content], 0
    texts, images = [], 0
    for part in content or []:
        if isinstance(part, dict):
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                images += 1
    return texts, images


def _image_urls(content: Any) -> list[str]:
    if isinstance(content, str):
        return []
    return [str((part.get("image_url") or {}).get("url", "")) for part in content or []
            if isinstance(part, dict) and part.get("type") == "image_url"]


def rule_score(rule: tuple[str, int], case_text: str, seed: Any, image_url: str | None) -> int:
    """The score of a ``bylength`` / ``byseed`` / ``byimage`` script for one request (see the module docstring)."""
    kind, arg = rule
    if kind == "bylength":
        m = ANSWER_RE.search(case_text)
        return max(1, min(5, 1 + len(m.group(2) if m else "") // arg))
    if kind == "byseed":
        return 1 + (int(seed or 0) % 5)
    if image_url is None:
        return 4
    return 1 + hashlib.sha256(image_url.encode()).digest()[0] % 5


def _criteria(body: dict[str, Any], text: str) -> list[tuple[str, int, int]]:
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        props = (rf.get("json_schema") or {}).get("schema", {}).get("properties", {}) or {}
        found = []
        for name, sch in props.items():
            typ = sch.get("type") if isinstance(sch, dict) else None
            if typ == "integer" or (isinstance(typ, list) and "integer" in typ):
                found.append((name, int(sch.get("minimum", 1)), int(sch.get("maximum", 5))))
        if found:
            return found
    matches = CRITERIA_RE.findall(text)
    names = [n for n in matches[-1].split(",") if n] if matches else DEFAULT_CRITERIA
    return [(n, 1, 5) for n in names]


class Script:
    """A parsed ``[[script:...]]`` directive."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.style, self.score, self.slow = "valid", 4, 0.0
        self.faults: list[tuple[str, int]] = []
        self.always: int | None = None
        self.error: str | None = None
        self.say: str | None = None
        self.rule: tuple[str, int] | None = None  # bylength / byseed / byimage: the score follows the request
        for tok in filter(None, spec.split(",")):
            name, _, arg = tok.partition("=")
            try:
                if m := FAULT_RE.fullmatch(tok):
                    self.faults.append((m.group(1), int(m.group(2))))
                elif tok in ("always401", "always403", "always404", "always429", "always500", "always503"):
                    self.always = int(tok[6:])
                elif name == "slow" and arg:
                    self.slow = float(arg)
                elif name == "say" and arg:
                    self.say = arg.replace("_", " ")
                elif name == "bylength" and arg:
                    self.rule = ("bylength", int(arg))
                elif tok in ("byseed", "byimage"):
                    self.rule = (tok, 0)
                elif name == "valid" and arg:
                    self.score = int(arg)
                elif tok in STYLES:
                    self.style = tok
                else:
                    self.error = f"unknown script token {tok!r}"
            except ValueError:
                self.error = f"bad script token {tok!r}"

    def decide(self, attempt: int) -> tuple[str, int]:
        """(action, status) for this attempt: action is 'drop', 'error' or a reply style."""
        if self.error:
            return "error", 400
        if self.always:
            return "error", self.always
        n = attempt
        for kind, count in self.faults:
            if n < count:
                return ("drop", 0) if kind == "drop" else ("error", int(kind))
            n -= count
        if self.style == "malformed_then_valid":
            return ("malformed" if n == 0 else "valid"), 200
        return ("say", 200) if self.say is not None else (self.style, 200)


def render(style: str, criteria: list[tuple[str, int, int]], score: int, auth: str | None = None) -> str:
    """The reply content for a reply style (``auth``: the request's Authorization header, for echo_auth)."""
    obj: dict[str, Any] = {name: score for name, _, _ in criteria}
    if style == "inject":
        verdict = {name: 1 + i % 2 for i, (name, _, _) in enumerate(criteria)}
        verdict["rationale"] = "The answer is wrong; it also tries to set its own scores."
        injected = {name: hi for name, _, hi in criteria}
        return f"{json.dumps(verdict)}\nThe answer contained this, which I ignore: {json.dumps(injected)}"
    first, _, hi = criteria[0]
    if style == "out_of_range":
        obj[first] = 7 if hi < 7 else hi + 1
    elif style == "missing":
        del obj[first]
    elif style == "float":
        obj[first] = 3.5
    obj["rationale"] = f"scripted; your header was {auth}" if style == "echo_auth" else "scripted"
    text = json.dumps(obj)
    if style == "fenced":
        return f"Sure, here is my evaluation.\n\n```json\n{text}\n```\n\nLet me know if you need more."
    if style == "prose":
        return f"Here is my assessment: {text} Hope this helps."
    if style == "malformed":
        return text[: max(12, len(text) // 2)]
    return text


class ScriptedServer:
    """Scripted chat-completions server running in a background thread (or the main loop)."""

    def __init__(
        self, latency: float = 0.0, log_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 0,
        api_key: str | None = None, fail_all: int | str | None = None, max_concurrency: int | None = None,
    ) -> None:
        self.latency = latency
        self.api_key = api_key
        self.fail_all = fail_all
        self.max_concurrency = max_concurrency
        self._slots: asyncio.Semaphore | None = None
        self.host, self.port = host, port
        self.log_path = Path(log_path) if log_path else None
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._counts: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._logfile: Any = None

    # ---- inspection (thread-safe copies) ----
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self._log)

    def count(self, first_user_text: str) -> int:
        """Number of requests whose first user message text is exactly this."""
        with self._lock:
            return self._counts.get(key_for(first_user_text), 0)

    def set_fail_all(self, fault: int | str | None) -> None:
        """From now on answer every request with HTTP ``fault`` (``"drop"``: no response; None: normally)."""
        self.fail_all = fault

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()

    # ---- HTTP handlers ----
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if self._slots is None:
            return await self._chat_one(request)
        async with self._slots:
            return await self._chat_one(request)

    async def _chat_one(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except Exception:
            err = {"error": {"message": "bad request body", "type": "invalid_request_error"}}
            return web.json_response(err, status=400)
        texts: list[str] = []
        images, first_user = 0, None
        urls: list[str] = []
        case_found = False
        for msg in messages:
            t, i = _parts(msg.get("content") if isinstance(msg, dict) else None)
            urls += _image_urls(msg.get("content") if isinstance(msg, dict) else None)
            texts.extend(t)
            images += i
            if isinstance(msg, dict) and msg.get("role") == "user":
                joined = "\n".join(t)
                # The case under judgement is the last user turn carrying an answer block (few-shot
                # examples come before it, re-asks after it); else the first user turn.
                if "<<<ANSWER" in joined or (first_user is None and not case_found):
                    first_user = joined
                    case_found = case_found or "<<<ANSWER" in joined
        full = "\n".join(texts)
        model = body.get("model")
        scripts = [spec for who, spec in SCRIPT_ANY_RE.findall(full) if not who or who == model]
        script = Script(scripts[-1] if scripts else "valid")
        key = key_for(first_user or "")
        auth = request.headers.get("Authorization")
        auth_ok = None if self.api_key is None else auth == f"Bearer {self.api_key}"
        with self._lock:
            attempt = self._counts.get(key, 0)
            self._counts[key] = attempt + 1
            action, status = ("error", 401) if auth_ok is False else script.decide(attempt)
            if self.fail_all is not None:
                action, status = ("drop", 0) if self.fail_all == "drop" else ("error", int(self.fail_all))
            entry = {
                "key": key, "script": script.spec, "status": status, "attempt": attempt,
                "n_messages": len(messages), "time": time.time(), "model": model,
                "temperature": body.get("temperature"), "seed": body.get("seed"),
                "max_tokens": body.get("max_tokens"),
                "has_response_format": body.get("response_format") is not None, "image_parts": images,
                "first_user_text": (first_user or "")[:300], "has_auth": auth is not None, "auth_ok": auth_ok,
            }
            self._log.append(entry)
            if self._logfile is not None:
                self._logfile.write(json.dumps(entry) + "\n")
                self._logfile.flush()
        delay = self.latency + script.slow
        if delay > 0:
            await asyncio.sleep(delay)
        if action == "drop":
            if request.transport is not None:
                request.transport.abort()  # no HTTP response at all: client sees a disconnect
            return web.Response(status=499)  # writing it fails quietly on the aborted transport
        if action == "error":
            msg = script.error or f"scripted HTTP {status}"
            err = {"error": {"message": msg, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                             "code": ERROR_TYPES.get(status)}}
            return web.json_response(err, status=status, headers={"Retry-After": "0"})
        score = script.score if script.rule is None else rule_score(script.rule, first_user or "", body.get("seed"),
                                                                       urls[0] if urls else None)
        content = script.say if action == "say" else render(action, _criteria(body, full), score, auth)
        p, c = len(full.split()), len(content.split())
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        })

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": "scripted-judge", "object": "model", "created": 0, "owned_by": "judgekit-tests"}]})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # ---- lifecycle ----
    async def start_async(self) -> None:
        """Start serving on the running event loop."""
        if self.max_concurrency:
            self._slots = asyncio.Semaphore(self.max_concurrency)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5,
                                     handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        if self.log_path:
            self._logfile = self.log_path.open("a", encoding="utf-8")
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._logfile is not None:
            with self._lock:
                self._logfile.close()
                self._logfile = None

    def start(self) -> ScriptedServer:
        """Start in a background thread with its own event loop; returns self."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="scripted-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(timeout=30)
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=30)
            loop.close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _serve(args: argparse.Namespace) -> None:
    server = ScriptedServer(latency=args.latency, log_path=args.log, host=args.host, port=args.port)
    await server.start_async()
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)  # atomic: readers never see a partial file
    print(f"scripted server listening on {server.base_url}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await server.stop_async()


def main(argv: list[str] | None = None) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", default=None)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
