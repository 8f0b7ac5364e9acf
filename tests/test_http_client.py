"""judgekit's own HTTP/1.1 client (judgekit.judging.backends.http) against real sockets on 127.0.0.1: a raw asyncio
server that answers with scripted bytes (every framing, interim replies, broken replies), and TLS with a CA made by
trustme."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from judgekit.judging.backends.http import ConnectFailed, HttpClient, HttpFailure

Reply = Callable[[int, bytes], Any]  # (request number, request bytes) -> bytes to send, or a list of pieces


class RawServer:
    """Reads each request (head + Content-Length body) and writes what ``reply`` returns: bytes, a list of pieces
    (written with a pause between them), or None (close without a reply). ``b"CLOSE"`` as the last piece closes the
    connection after writing."""

    def __init__(self, reply: Reply, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.ssl_ctx = ssl_ctx
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def url(self, path: str = "/v1/chat/completions") -> str:
        scheme = "https" if self.ssl_ctx else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                out = self.reply(len(self.requests), head + body)
                if out is None:
                    return
                pieces = out if isinstance(out, list) else [out]
                for piece in pieces:
                    if piece == b"CLOSE":
                        return
                    writer.write(piece)
                    await writer.drain()
                    if len(pieces) > 1:
                        await asyncio.sleep(0.005)
        finally:
            writer.close()


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_content_length_reply_and_connection_reuse() -> None:
    async def main() -> None:
        async with RawServer(lambda n, req: ok(b'{"n": %d}' % n)) as srv:
            client = HttpClient({"Content-Type": "application/json", "Authorization": "Bearer k"})
            first = await client.post(srv.url(), b'{"a": 1}')
            second = await client.post(srv.url(), b'{"a": 2}')
            await client.close()
        assert (first.status, first.body, second.body) == (200, b'{"n": 1}', b'{"n": 2}')
        assert first.headers["content-type"] == "application/json"  # names lower-cased
        assert srv.connections == 1  # kept alive
        head = srv.requests[0].decode()
        assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{srv.port}\r\n" in head and "Content-Length: 8\r\n" in head
        assert "Authorization: Bearer k\r\n" in head and head.endswith('{"a": 1}')

    run(main())


def test_credentials_in_the_url_are_sent_as_basic_auth_unless_a_key_is_given() -> None:
    async def main() -> list[bytes]:
        async with RawServer(lambda n, req: ok()) as srv:
            url = srv.url().replace("://", "://us%40er:p%3Ass@")
            plain, keyed = HttpClient({}), HttpClient({"Authorization": "Bearer k"})
            await plain.post(url, b"{}")
            await keyed.post(url, b"{}")
            await plain.close()
            await keyed.close()
        return srv.requests

    first, second = run(main())
    assert b"Authorization: Basic dXNAZXI6cDpzcw==\r\n" in first  # base64 of "us@er:p:ss"
    assert b"Authorization: Bearer k\r\n" in second and b"Basic" not in second
    assert b"Host: 127.0.0.1:" in first and b"us%40er" not in first


def test_chunked_reply_with_extensions_and_trailers_delivered_piece_by_piece() -> None:
    body = b'{"choices": [1, 2, 3]}'
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"5;ext=1\r\n" + body[:5] + b"\r\n"
               + b"%x\r\n" % (len(body) - 5) + body[5:] + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
    pieces = [chunked[i:i + 7] for i in range(0, len(chunked), 7)]  # the parser sees every split

    async def main() -> None:
        async with RawServer(lambda n, req: pieces) as srv:
            client = HttpClient({})
            reply = await client.post(srv.url(), b"{}")
            again = await client.post(srv.url(), b"{}")
            await client.close()
        assert reply.body == body and again.body == body
        assert srv.connections == 1

    run(main())


def test_close_delimited_and_connection_close_replies_are_not_reused() -> None:
    async def main() -> None:
        replies = {1: [b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"CLOSE"],
                   2: ok(b"x", "Connection: close\r\n"), 3: ok(b"y")}
        async with RawServer(lambda n, req: replies[n]) as srv:
            client = HttpClient({})
            first = await client.post(srv.url(), b"{}")
            second = await client.post(srv.url(), b"{}")
            third = await client.post(srv.url(), b"{}")
            await client.close()
        assert (first.body, second.body, third.body) == (b"until the end", b"x", b"y")
        assert srv.connections == 3

    run(main())


def test_interim_reply_is_skipped_and_bodies_are_decoded() -> None:
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = raw_deflate.compress(b"raw deflate") + raw_deflate.flush()
    replies = {1: b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after continue"),
               2: ok(gzip.compress(b"zipped"), "Content-Encoding: gzip\r\n"),
               3: ok(zlib.compress(b"zlib deflate"), "Content-Encoding: deflate\r\n"),
               4: ok(deflated, "Content-Encoding: deflate\r\n"),
               5: b"HTTP/1.1 204 No Content\r\n\r\n"}

    async def main() -> list[bytes]:
        async with RawServer(lambda n, req: replies[n]) as srv:
            client = HttpClient({})
            bodies = [(await client.post(srv.url(), b"{}")).body for _ in replies]
            await client.close()
        return bodies

    assert run(main()) == [b"after continue", b"zipped", b"zlib deflate", b"raw deflate", b""]


def test_broken_replies_raise_http_failure() -> None:
    cases: list[tuple[Any, str]] = [
        (None, "the server closed the connection before replying"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", b"CLOSE"], "during the reply"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x reply"),
        (ok(b"x", "Content-Encoding: br\r\n"), "judgekit does not decode"),
        (ok(b"not gzip", "Content-Encoding: gzip\r\n"), "does not decode"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "a bad Content-Length"),
    ]
    for reply, message in cases:
        async def main(reply: Any = reply) -> None:
            async with RawServer(lambda n, req: reply) as srv:
                client = HttpClient({})
                try:
                    await client.post(srv.url(), b"{}")
                finally:
                    await client.close()

        with pytest.raises(HttpFailure, match=message):
            run(main())


def test_refused_connection_is_a_connect_failure() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on it now

    async def main() -> None:
        client = HttpClient({})
        await client.post(f"http://127.0.0.1:{port}/v1", b"{}")

    with pytest.raises(ConnectFailed) as err:
        run(main())
    assert err.value.reason == "connection refused"


def test_a_cancelled_call_closes_its_connection_and_a_stale_idle_one_is_not_reused() -> None:
    def reply(n: int, req: bytes) -> Any:
        if n == 1:
            return [b"", ok(b"late")]  # written ~5 ms later: the client has given up by then
        if n == 3:
            return [ok(b"then closed"), b"CLOSE"]  # a complete reply, then the server closes the idle connection
        return ok(b"fresh %d" % n)

    async def main() -> RawServer:
        async with RawServer(reply) as srv:
            client = HttpClient({})
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.002):
                    await client.post(srv.url(), b"{}")
            assert (await client.post(srv.url(), b"{}")).body == b"fresh 2"  # a new connection, not the late reply
            assert (await client.post(srv.url(), b"{}")).body == b"then closed"  # the same connection again
            await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
            assert (await client.post(srv.url(), b"{}")).body == b"fresh 4"
            await client.close()
        return srv

    srv = run(main())
    assert srv.connections == 3  # the cancelled call's connection and the closed idle one were not reused


def test_https_with_a_trusted_ca_and_a_refused_certificate(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def call(trusted: bool) -> bytes:
        async with RawServer(lambda n, req: ok(b"secure"), ssl_ctx=server_ctx) as srv:
            client = HttpClient({})
            if trusted:
                monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
            else:
                monkeypatch.delenv("SSL_CERT_FILE", raising=False)
                monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
            try:
                return (await client.post(srv.url(), b"{}")).body
            finally:
                await client.close()

    assert run(call(True)) == b"secure"
    with pytest.raises(ConnectFailed, match="tls certificate refused"):
        run(call(False))
