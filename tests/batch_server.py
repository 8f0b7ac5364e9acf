"""A loopback OpenAI files + batches server for ``judgekit judge --batch`` tests.

Endpoints (on 127.0.0.1, under ``/v1``): ``POST /files`` (multipart: ``purpose=batch`` and ``file``),
``GET /files/{id}``, ``GET /files/{id}/content``, ``POST /batches`` (``input_file_id``, ``endpoint``,
``completion_window``), ``GET /batches/{id}``, ``POST /batches/{id}/cancel``. ``/chat/completions`` is not
served: a batch server is not a live one.

Faithful to OpenAI's behaviour where the client can see it:

- the status moves ``validating -> in_progress -> finalizing -> completed``, one step per retrieve of the batch
  (``steps`` retrieves in all; ``hold = True`` keeps every batch ``in_progress`` until it is set back to False);
- an input file whose lines are not ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``
  (or repeat a custom id) makes the batch ``failed`` with ``errors.data``;
- the output file has one line per answered request, ``{"id", "custom_id", "response": {"status_code": 200,
  "request_id", "body": {chat completion}}, "error": null}``, in an order shuffled by ``seed``; requests whose
  script says an HTTP error (``always500``, ``500x1``, ... of :mod:`tests.scripted_server`) go to the error
  file with that status code and an error body; ``request_counts`` counts both;
- ``expire_next = N``: the next batch created answers its first N requests, then ends ``expired`` (partial
  output, the rest in neither file, as OpenAI does);
- ``POST /batches/{id}/cancel``: ``cancelling``, then ``cancelled`` at the next retrieve, without output;
- ``content_status = S``: every ``GET /files/{id}/content`` answers HTTP S (results that cannot be read).

Replies are scripted by the request text exactly as :class:`tests.scripted_server.ScriptedServer` scripts
them (its ``Script``/``render`` helpers, the same ``[[script:...]]`` directives and per-key attempt counts),
so a batch run and a live run on the same answers get the same replies.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
import uuid
from typing import Any

from aiohttp import web
from scripted_server import (
    ERROR_TYPES,
    SCRIPT_ANY_RE,
    Script,
    _criteria,
    _image_urls,
    _parts,
    key_for,
    render,
    rule_score,
)

STEPS = ("validating", "in_progress", "finalizing", "completed")


class BatchServer:
    """The batches server, in a background thread (``with BatchServer() as srv: srv.base_url``)."""

    def __init__(self, *, seed: int = 0, steps: int = 3) -> None:
        self.seed = seed
        self.steps = steps
        self.hold = False
        self.expire_next: int | None = None
        self.content_status: int | None = None  # when set, GET /files/{id}/content answers this error status
        self.host, self.port = "127.0.0.1", 0
        self.files: dict[str, dict[str, Any]] = {}
        self.batch_objs: dict[str, dict[str, Any]] = {}
        self._retrieves: dict[str, int] = {}
        self._expire: dict[str, int] = {}
        self.counts: dict[str, int] = {}  # per scripted key: requests answered (as the scripted server counts)
        self.log: list[dict[str, Any]] = []  # one entry per answered request: key, script, attempt, status
        self.created = 0  # batches created
        self.uploads = 0
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ---- one request, scripted as tests.scripted_server does --------------------------------------------
    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(status code, body) of the chat completion the scripted server would send for ``body``."""
        messages = body.get("messages") or []
        texts: list[str] = []
        urls: list[str] = []
        first_user, case_found = None, False
        for msg in messages:
            t, _ = _parts(msg.get("content") if isinstance(msg, dict) else None)
            urls += _image_urls(msg.get("content") if isinstance(msg, dict) else None)
            texts.extend(t)
            if isinstance(msg, dict) and msg.get("role") == "user":
                joined = "\n".join(t)
                if "<<<ANSWER" in joined or (first_user is None and not case_found):
                    first_user = joined
                    case_found = case_found or "<<<ANSWER" in joined
        full = "\n".join(texts)
        model = body.get("model")
        scripts = [spec for who, spec in SCRIPT_ANY_RE.findall(full) if not who or who == model]
        script = Script(scripts[-1] if scripts else "valid")
        key = key_for(first_user or "")
        with self._lock:
            attempt = self.counts.get(key, 0)
            self.counts[key] = attempt + 1
            action, status = script.decide(attempt)
            self.log.append({"key": key, "script": script.spec, "attempt": attempt, "status": status,
                             "n_messages": len(messages), "seed": body.get("seed"), "model": model})
        if action == "drop":
            action, status = "error", 500
        if action == "error":
            msg = script.error or f"scripted HTTP {status}"
            return status, {"error": {"message": msg, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                                      "code": ERROR_TYPES.get(status)}}
        score = script.score if script.rule is None else rule_score(script.rule, first_user or "", body.get("seed"),
                                                                       urls[0] if urls else None)
        content = script.say if action == "say" else render(action, _criteria(body, full), score)
        p, c = len(full.split()), len(content.split())
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": model or "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }

    # ---- files ---------------------------------------------------------------------------------------------
    def _file(self, data: bytes, purpose: str, name: str) -> dict[str, Any]:
        fid = f"file-{uuid.uuid4().hex[:24]}"
        obj = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()), "filename": name,
               "purpose": purpose, "status": "processed"}
        self.files[fid] = {"obj": obj, "data": data}
        return obj

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch" or upload is None or not hasattr(upload, "file"):
            return web.json_response({"error": {"message": "purpose=batch and a file are required",
                                                "type": "invalid_request_error"}}, status=400)
        data = upload.file.read()
        with self._lock:
            self.uploads += 1
            obj = self._file(data, "batch", upload.filename or "input.jsonl")
        return web.json_response(obj)

    async def _file_get(self, request: web.Request) -> web.Response:
        f = self.files.get(request.match_info["fid"])
        if f is None:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.json_response(f["obj"])

    async def _file_content(self, request: web.Request) -> web.Response:
        if self.content_status is not None:
            return web.json_response({"error": {"message": "scripted content failure"}}, status=self.content_status)
        f = self.files.get(request.match_info["fid"])
        if f is None:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.Response(body=f["data"], content_type="application/octet-stream")

    # ---- batches -------------------------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        fid = body.get("input_file_id")
        if fid not in self.files or body.get("endpoint") != "/v1/chat/completions" \
                or body.get("completion_window") != "24h":
            return web.json_response({"error": {"message": "bad batch request", "type": "invalid_request_error"}},
                                     status=400)
        bid = f"batch_{uuid.uuid4().hex[:24]}"
        now = int(time.time())
        obj: dict[str, Any] = {
            "id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None, "input_file_id": fid,
            "completion_window": "24h", "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": now, "in_progress_at": None, "expires_at": now + 86400, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata")}
        with self._lock:
            self.created += 1
            self.batch_objs[bid] = obj
            self._retrieves[bid] = 0
            if self.expire_next is not None:
                self._expire[bid], self.expire_next = self.expire_next, None
        return web.json_response(obj)

    def _lines(self, obj: dict[str, Any]) -> list[dict[str, Any]] | str:
        """The input lines of a batch, or why the input is invalid."""
        out, seen = [], set()
        for n, line in enumerate(self.files[obj["input_file_id"]]["data"].decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                return f"line {n}: not JSON"
            if not isinstance(rec, dict) or set(rec) != {"custom_id", "method", "url", "body"} \
                    or rec["method"] != "POST" or rec["url"] != obj["endpoint"] or not isinstance(rec["body"], dict):
                return f"line {n}: expected custom_id, method POST, url {obj['endpoint']} and body"
            if rec["custom_id"] in seen:
                return f"line {n}: duplicate custom_id {rec['custom_id']}"
            seen.add(rec["custom_id"])
            out.append(rec)
        return out or "the file has no requests"

    def _run(self, obj: dict[str, Any]) -> None:
        """Answer the batch's requests and write its output and error files (status set by the caller)."""
        lines = self._lines(obj)
        if isinstance(lines, str):
            obj.update(status="failed", failed_at=int(time.time()),
                       errors={"object": "list", "data": [{"code": "invalid_request", "message": lines}]})
            return
        limit = self._expire.get(obj["id"])
        answered = lines if limit is None else lines[:limit]
        ok, bad = [], []
        for rec in answered:
            status, body = self.complete(rec["body"])
            row = {"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": rec["custom_id"],
                   "response": {"status_code": status, "request_id": uuid.uuid4().hex[:16], "body": body},
                   "error": None}
            (ok if status == 200 else bad).append(row)
        rng = random.Random(self.seed)
        rng.shuffle(ok)
        if ok:
            obj["output_file_id"] = self._file(
                ("\n".join(json.dumps(r) for r in ok) + "\n").encode(), "batch_output", "output.jsonl")["id"]
        if bad:
            obj["error_file_id"] = self._file(
                ("\n".join(json.dumps(r) for r in bad) + "\n").encode(), "batch_output", "errors.jsonl")["id"]
        obj["request_counts"] = {"total": len(lines), "completed": len(ok), "failed": len(bad)}
        if limit is not None:
            obj.update(status="expired", expired_at=int(time.time()))
        else:
            obj.update(status="completed", completed_at=int(time.time()))

    async def _retrieve(self, request: web.Request) -> web.Response:
        bid = request.match_info["bid"]
        with self._lock:
            obj = self.batch_objs.get(bid)
            if obj is None:
                return web.json_response({"error": {"message": "no such batch"}}, status=404)
            if obj["status"] == "cancelling":
                obj.update(status="cancelled", cancelled_at=int(time.time()))
            elif obj["status"] in ("validating", "in_progress", "finalizing"):
                self._retrieves[bid] += 1
                step = min(self._retrieves[bid], self.steps)
                if self.hold:
                    step = min(step, 1)
                if step >= self.steps:
                    self._run(obj)
                else:
                    obj["status"] = STEPS[min(step, 2)]
                    if obj["status"] == "in_progress" and obj["in_progress_at"] is None:
                        obj["in_progress_at"] = int(time.time())
            return web.json_response(obj)

    async def _cancel(self, request: web.Request) -> web.Response:
        with self._lock:
            obj = self.batch_objs.get(request.match_info["bid"])
            if obj is None:
                return web.json_response({"error": {"message": "no such batch"}}, status=404)
            if obj["status"] in ("validating", "in_progress", "finalizing"):
                obj["status"] = "cancelling"
            return web.json_response(obj)

    # ---- lifecycle ----------------------------------------------------------------------------------------
    async def start_async(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{fid}", self._file_get)
        app.router.add_get("/v1/files/{fid}/content", self._file_content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches/{bid}", self._retrieve)
        app.router.add_post("/v1/batches/{bid}/cancel", self._cancel)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    def start(self) -> BatchServer:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="batch-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(timeout=30)
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=30)
            loop.close()

    def __enter__(self) -> BatchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
