"""The upstream HTTP client against real local servers that answer exactly the bytes each test
scripts: keep-alive, the body's framings, timeouts, failures, the pool's limit and TLS."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvloop

from providers.errors import connection_reason
from providers.http_client import (
    READ_PAUSE_BYTES,
    ConnectionPool,
    MalformedResponse,
    RequestHeaders,
    ServerDisconnected,
    Timeouts,
    endpoint,
)
from tests.telemetry.alerts.smtp_server import self_signed_certificate, server_tls_context

pytestmark = pytest.mark.asyncio(loop_scope="module")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = RequestHeaders({"Content-Type": "application/json", "Authorization": "Bearer k"})
QUICK = Timeouts(total=5.0, connect=2.0, read=2.0)


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Each test on both loops: the gateway serves on uvloop, whose transports differ."""
    if request.param == "uvloop":
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


class Server:
    """A local server; `connections` counts the connections it accepted, `requests` keeps
    each request's head and body as received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        self.requests.append((head, await reader.readexactly(length)))
        return True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(
    script: Callable[[Server], Handler], tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    server = Server(lambda reader, writer: asyncio.sleep(0))
    server.handler = script(server)
    listener = await asyncio.start_server(server._accept, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def keep_answering(body: bytes = b'{"ok": true}') -> Callable[[Server], Handler]:
    def script(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await server.read_request(reader):
                writer.write(answer(body, "Content-Type: application/json"))
                await writer.drain()

        return handle

    return script


def once(raw: bytes, *, then_close: bool = True, stall: float = 0.0) -> Callable[[Server], Handler]:
    def script(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(raw)
            await writer.drain()
            if stall:
                await asyncio.sleep(stall)
            if not then_close:
                await reader.read()

        return handle

    return script


def url(server: Server, path: str = "/v1/chat/completions", scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.port}{path}"


async def test_requests_in_turn_share_one_connection_and_send_what_was_asked() -> None:
    pool = ConnectionPool()
    async with serving(keep_answering()) as server:
        for number in range(3):
            response = await pool.post(
                endpoint(url(server, "/v1/chat/completions?x=1")),
                b'{"n": %d}' % number,
                HEADERS,
                QUICK,
                b"traceparent: 00-abc-def-01\r\n",
            )
            assert response.status == 200
            assert response.headers["content-type"] == "application/json"
            assert await response.read() == b'{"ok": true}'
            response.release()
        assert server.connections == 1
        head, body = server.requests[2]
        assert head.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
        assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in head
        assert b"\r\nAuthorization: Bearer k\r\n" in head
        assert b"\r\ntraceparent: 00-abc-def-01\r\n" in head
        assert b"\r\nContent-Length: 8\r\n" in head
        assert body == b'{"n": 2}'
    await pool.close()
    assert pool.open_connections == 0


async def test_a_chunked_body_arrives_piece_by_piece_and_whole() -> None:
    events = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]

    def script(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for event in events:
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            await reader.read()

        return handle

    pool = ConnectionPool()
    async with serving(script) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        received = [piece async for piece in response.iter_any()]
        assert b"".join(received) == b"".join(events)
        assert len(received) == 3  # each as it arrived, not all at the end
        assert response.at_eof()
        response.release()
        assert pool.open_connections == 1  # read to the end: kept for the next request
    await pool.close()


async def test_a_gzip_body_is_decompressed() -> None:
    packed = gzip.compress(b'{"choices": []}')
    pool = ConnectionPool()
    async with serving(once(answer(packed, "Content-Encoding: gzip"), then_close=False)) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        assert await response.read() == b'{"choices": []}'
        response.release()
    await pool.close()


async def test_a_body_without_length_ends_when_the_server_closes() -> None:
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 5000
    pool = ConnectionPool()
    async with serving(once(raw)) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        assert await response.read() == b"x" * 5000
        response.release()
        assert pool.open_connections == 0  # not reusable
    await pool.close()


async def test_an_error_status_and_its_headers_are_read() -> None:
    raw = answer(b'{"error": {"message": "slow down"}}', "Retry-After: 3", status="429 Too Many")
    pool = ConnectionPool()
    async with serving(once(raw, then_close=False)) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        assert response.status == 429
        assert response.headers.get("retry-after") == "3"
        assert b"slow down" in await response.read()
        response.release()
    await pool.close()


async def test_a_stalled_answer_times_out_on_the_read_timeout() -> None:
    pool = ConnectionPool()
    async with serving(once(b"", then_close=False)) as server:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await pool.post(endpoint(url(server)), b"{}", HEADERS, Timeouts(total=10, read=0.2))
        assert asyncio.get_running_loop().time() - started < 2
        assert pool.open_connections == 0
    await pool.close()


async def test_a_stalled_body_times_out_on_the_total_timeout() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"
    pool = ConnectionPool()
    async with serving(once(raw, then_close=False)) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, Timeouts(total=0.3))
        with pytest.raises(TimeoutError):
            await response.read()
        response.release()
        assert pool.open_connections == 0
    await pool.close()


async def test_a_body_cut_short_is_a_disconnect() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it"
    pool = ConnectionPool()
    async with serving(once(raw)) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        with pytest.raises(ServerDisconnected) as caught:
            await response.read()
        assert connection_reason(caught.value) == "the provider closed the connection"
        response.close()
    await pool.close()


async def test_bytes_that_are_not_http_are_malformed() -> None:
    pool = ConnectionPool()
    async with serving(once(b"SMTP ready\r\n\r\n", then_close=False)) as server:
        with pytest.raises(MalformedResponse):
            await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        assert pool.open_connections == 0
    await pool.close()


async def test_a_refused_connection_names_its_reason() -> None:
    async with serving(keep_answering()) as server:
        port = server.port
    pool = ConnectionPool()
    with pytest.raises(OSError) as caught:
        await pool.post(endpoint(f"http://127.0.0.1:{port}/v1"), b"{}", HEADERS, QUICK)
    assert connection_reason(caught.value) == "connection refused"
    assert pool.open_connections == 0
    await pool.close()


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    def script(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(answer(b"{}"))
            await writer.drain()  # and close: an idle timeout on the server's side

        return handle

    pool = ConnectionPool()
    async with serving(script) as server:
        for _ in range(2):
            response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
            assert await response.read() == b"{}"
            response.release()
            await asyncio.sleep(0.1)
        assert server.connections == 2
        assert pool.open_connections <= 1
    await pool.close()


async def test_at_the_limit_a_request_waits_for_a_connection_to_come_back() -> None:
    release_first = asyncio.Event()

    def script(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await server.read_request(reader):
                if len(server.requests) == 1:
                    await release_first.wait()
                writer.write(answer(b"{}"))
                await writer.drain()

        return handle

    pool = ConnectionPool(limit=1)
    async with serving(script) as server:
        first = asyncio.create_task(pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK))
        await asyncio.sleep(0.1)
        assert not second.done() and len(server.requests) == 1
        release_first.set()
        response = await first
        await response.read()
        response.release()
        response = await second
        await response.read()
        response.release()
        assert server.connections == 1
    await pool.close()


async def test_a_body_larger_than_the_read_pause_is_read_whole() -> None:
    body = bytes(range(256)) * (3 * READ_PAUSE_BYTES // 256 + 7)
    pool = ConnectionPool()
    async with serving(once(answer(body), then_close=False)) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        assert await response.read() == body
        response.release()
    await pool.close()


async def test_a_reader_that_falls_behind_stops_the_socket_being_read() -> None:
    size = 8 * READ_PAUSE_BYTES
    sent = 0

    def script(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal sent
            await server.read_request(reader)
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            piece = b"y" * 65536
            while sent < size:
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
            await reader.read()

        return handle

    pool = ConnectionPool()
    async with serving(script) as server:
        response = await pool.post(endpoint(url(server)), b"{}", HEADERS, QUICK)
        await asyncio.sleep(0.5)  # the reader does not read
        assert sent < size  # the server is held back: the client stopped reading
        total = 0
        async for piece in response.iter_any():
            total += len(piece)
        assert total == size
        response.release()
    await pool.close()


async def test_tls_with_a_trusted_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    client_context = ssl.create_default_context(cafile=str(cert))
    pool = ConnectionPool(ssl_context=client_context)
    async with serving(keep_answering(), tls=server_tls_context(cert, key)) as server:
        response = await pool.post(endpoint(url(server, scheme="https")), b"{}", HEADERS, QUICK)
        assert await response.read() == b'{"ok": true}'
        response.release()
    await pool.close()


async def test_tls_with_an_untrusted_certificate_is_a_tls_error(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    pool = ConnectionPool()
    async with serving(keep_answering(), tls=server_tls_context(cert, key)) as server:
        with pytest.raises(OSError) as caught:
            await pool.post(endpoint(url(server, scheme="https")), b"{}", HEADERS, QUICK)
        assert connection_reason(caught.value) == "TLS error"
    await pool.close()
