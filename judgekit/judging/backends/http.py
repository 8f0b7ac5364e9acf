"""A small HTTP/1.1 client on asyncio's protocols: what the lean path needs to POST JSON to an
OpenAI-compatible server, over kept-alive connections, and nothing more.

Written by hand rather than with aiohttp (which the lean path used before, and which ``judgekit judge --batch``
still uses) because aiohttp was the largest cost of a judging command outside the calls themselves: ~0.25 s to
import, and ~0.39 ms of CPU per call against ~0.13 ms here (2,000 calls to the loopback server of
``bench/bench_runner.py``, 64 in flight). What it does:

- ``http://`` and ``https://`` (certificates verified with :func:`ssl.create_default_context`, which honours
  ``SSL_CERT_FILE``/``SSL_CERT_DIR``); IPv4, IPv6 and host names; credentials in the URL sent as HTTP Basic
  (unless an ``Authorization`` header is given); no proxies (as aiohttp without ``trust_env``).
- Keep-alive: a connection returns to its server's idle list after a complete response unless the server said
  ``Connection: close`` (or spoke HTTP/1.0 without keep-alive); an idle connection the server has closed
  meanwhile is dropped, never reused. One request at a time per connection (no pipelining); the number of
  connections is bounded by the caller's concurrency (the runner never has more calls in flight).
- Responses framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the connection; interim
  ``1xx`` responses skipped; a ``gzip`` or ``deflate`` body decoded (``Accept-Encoding: identity`` is sent,
  so a server should not compress).
- Errors: :class:`ConnectFailed` when nothing answered (refused, no route, unknown host, TLS handshake or
  certificate refused), :class:`HttpFailure` when a connection broke or the reply was not HTTP. A timeout is
  the caller's (``asyncio.timeout`` around :meth:`HttpClient.post`): a call cancelled mid-way closes its
  connection, which is never reused.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from typing import Any
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024  # a status line and headers longer than this are not an HTTP reply


class HttpFailure(Exception):
    """The connection broke, or what came back was not an HTTP/1.x reply."""


class ConnectFailed(HttpFailure):
    """Nothing answered: refused, no route, unknown host, or the TLS handshake failed (``reason`` says which, in
    lower case)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpReply:
    """A complete reply: ``status``, ``headers`` (names lower-cased; a repeated header keeps its last value) and
    the decoded ``body``."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses the reply as it arrives (head, then the body by its framing) and
    resolves the waiting future with an :class:`HttpReply`."""

    __slots__ = ("_body", "_buf", "_chunk_left", "_framing", "_length", "_reply", "_waiter", "closed", "got_data",
                 "keep_alive", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = False
        self.got_data = False
        self._buf = bytearray()
        self._waiter: asyncio.Future[HttpReply] | None = None
        self._reply: HttpReply | None = None  # head parsed, body being read
        self._framing = ""  # "length", "chunked" or "close"
        self._length = 0
        self._chunk_left = -1  # chunked: bytes of the current chunk still to read (-1: at a size line, -2: trailers)
        self._body = bytearray()

    # ---- asyncio.Protocol ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():  # nothing asked: an idle connection the server wrote to
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            return
        self.got_data = True
        self._buf += data
        try:
            self._advance()
        except HttpFailure as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if exc is None and self._reply is not None and self._framing == "close":
            self._reply.body = self._decoded(bytes(self._buf))
            self.keep_alive = False
            waiter.set_result(self._reply)
            return
        what = "the server closed the connection" if exc is None else f"{type(exc).__name__}: {exc}"
        part = " during the reply" if self.got_data else " before replying"
        waiter.set_exception(HttpFailure(what + part))

    # ---- one exchange --------------------------------------------------------------------------------------
    def send(self, data: bytes) -> asyncio.Future[HttpReply]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._reply = None
        self.got_data = False
        self._buf.clear()
        self.transport.write(data)
        return self._waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.abort()

    def _advance(self) -> None:
        buf = self._buf
        while self._reply is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise HttpFailure("the reply's head is longer than 64 KiB")
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            self._head(head)
        if self._framing == "length":
            if len(buf) >= self._length:
                body = bytes(buf[:self._length])
                del buf[:self._length]
                self._finish(body)
        elif self._framing == "chunked":
            self._chunks()

    def _head(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpFailure(f"not an HTTP/1.x reply: {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:  # an interim reply (100 Continue, 103 Early Hints): the real one follows
            return
        connection = headers.get("connection", "").lower()
        self.keep_alive = "close" not in connection and (parts[0] != "HTTP/1.0" or "keep-alive" in connection)
        self._reply = HttpReply(status, headers, b"")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing, self._chunk_left = "chunked", -1
            self._body.clear()
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise HttpFailure(f"a bad Content-Length: {headers['content-length']!r}") from None
            self._framing = "length"
        elif status in (204, 304):
            self._framing, self._length = "length", 0
        else:
            self._framing = "close"

    def _chunks(self) -> None:
        buf = self._buf
        while True:
            if self._chunk_left == -1:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                size = bytes(buf[:eol]).split(b";", 1)[0].strip()
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise HttpFailure(f"a bad chunk size: {size[:20]!r}") from None
                del buf[:eol + 2]
                if self._chunk_left == 0:  # the last chunk: trailers (ignored) up to an empty line
                    self._chunk_left = -2
            if self._chunk_left == -2:
                if buf[:2] == b"\r\n":
                    del buf[:2]
                    self._finish(bytes(self._body))
                    return
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                del buf[:end + 4]
                self._finish(bytes(self._body))
                return
            if len(buf) < self._chunk_left + 2:
                return
            self._body += buf[:self._chunk_left]
            del buf[:self._chunk_left + 2]
            self._chunk_left = -1

    def _finish(self, body: bytes) -> None:
        reply = self._reply
        assert reply is not None and self._waiter is not None
        reply.body = self._decoded(body)
        if self._buf:  # bytes after the reply that nobody asked for: do not reuse this connection
            self.keep_alive = False
        self._waiter.set_result(reply)

    def _decoded(self, body: bytes) -> bytes:
        assert self._reply is not None
        coding = self._reply.headers.get("content-encoding", "identity").lower()
        if coding in ("", "identity") or not body:
            return body
        try:
            if coding in ("gzip", "x-gzip"):
                return zlib.decompress(body, 16 + zlib.MAX_WBITS)
            if coding == "deflate":
                try:
                    return zlib.decompress(body)
                except zlib.error:
                    return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send it
        except zlib.error as exc:
            raise HttpFailure(f"the {coding} body does not decode: {exc}") from None
        raise HttpFailure(f"the reply is encoded as {coding!r}, which judgekit does not decode")


class _Origin:
    """One server (scheme, host, port): its request head and its idle connections."""

    __slots__ = ("head", "host", "idle", "path", "port", "tls")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None and parts.port != (443 if self.tls else 80):
            host += f":{parts.port}"
        if parts.username is not None and not any(k.lower() == "authorization" for k in headers):
            # credentials in the URL (http://user:password@host/v1) are sent as HTTP Basic, as aiohttp did
            import base64
            from urllib.parse import unquote

            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers = {**headers, "Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self.idle: list[_Connection] = []


class HttpClient:
    """POSTs to a fixed set of URLs over kept-alive connections (see the module docstring).

    ``headers`` are sent with every request (with ``Content-Length`` added); they may hold a credential, which
    stays in memory and is never written anywhere.
    """

    def __init__(self, headers: dict[str, str], *, max_idle: int = 64) -> None:
        self.headers = {"Accept": "application/json", "Accept-Encoding": "identity", **headers}
        self.max_idle = max_idle
        self._origins: dict[str, _Origin] = {}
        self._ssl: Any = None
        self._open: set[_Connection] = set()

    def _origin(self, url: str) -> _Origin:
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = _Origin(url, self.headers)
        return origin

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        ssl_context: Any = None
        if origin.tls:
            if self._ssl is None:
                import ssl

                self._ssl = ssl.create_default_context()
            ssl_context = self._ssl
        try:
            _, conn = await loop.create_connection(_Connection, origin.host, origin.port, ssl=ssl_context)
        except OSError as exc:  # refused, unreachable, unknown host (socket.gaierror), TLS (ssl.SSLError)
            raise ConnectFailed(_reason(exc)) from None
        return conn

    async def post(self, url: str, body: bytes) -> HttpReply:
        """POST ``body`` (JSON) to ``url``; the complete reply, whatever its status. Raises :class:`ConnectFailed`
        or :class:`HttpFailure` (see the module docstring); cancelling it closes the connection it used."""
        origin = self._origin(url)
        idle = origin.idle
        conn = None
        while idle:
            candidate = idle.pop()
            if not candidate.closed:
                conn = candidate
                break
            self._open.discard(candidate)  # the server closed it while it was idle
        if conn is None:
            conn = await self._connect(origin)
            self._open.add(conn)
        ok = False
        try:
            reply = await conn.send(origin.head + str(len(body)).encode() + b"\r\n\r\n" + body)
            ok = True
        finally:
            if ok and conn.keep_alive and not conn.closed and len(idle) < self.max_idle:
                idle.append(conn)
            else:
                conn.abort()
                self._open.discard(conn)
        return reply

    async def close(self) -> None:
        """Close every connection (idle or not)."""
        for conn in self._open:
            if conn.transport is not None and not conn.closed:
                conn.transport.close()
        self._open.clear()
        for origin in self._origins.values():
            origin.idle.clear()
        await asyncio.sleep(0)  # let the transports' close callbacks run in this loop


def _reason(exc: OSError) -> str:
    """The cause of a failed connect, in lower case (``connection refused``, ``name or service not known``)."""
    import ssl
    from socket import gaierror

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {exc.verify_message or exc}".lower()
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}".lower()
    if isinstance(exc, gaierror):
        return (exc.strerror or str(exc)).lower()
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
