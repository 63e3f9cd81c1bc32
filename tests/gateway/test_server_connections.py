"""The connection guard in a real uvicorn server on loopback, with small ASGI apps that answer
at once, hold a request, or stream for longer than every deadline: the states a running
gateway reaches only by chance (pipelined requests, an answer before the body, a full cap).
"""

from __future__ import annotations

import asyncio
import json
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
import uvicorn

from gateway.config.server import ServerConfig
from gateway.entry.server_connections import MIN_CONNECTIONS, ConnectionGuard, connection_cap

PATIENCE = 10.0
QUICK = ServerConfig(
    header_timeout_seconds=0.5,
    body_timeout_seconds=0.5,
    keepalive_timeout_seconds=0.5,
    write_timeout_seconds=0.5,
)
Scope = dict[str, Any]


async def _ok(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _refuse_without_reading(scope: Scope, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"no"})


class _Holding:
    """Holds every request until released: connections that are busy, not idle."""

    def __init__(self) -> None:
        self.started = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self._released is None:
            self._loop, self._released = asyncio.get_running_loop(), asyncio.Event()
        self.started += 1
        await self._released.wait()
        await _ok(scope, receive, send)

    def release(self) -> None:
        assert self._loop is not None and self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)


async def _body_length(scope: Scope, receive: Any, send: Any) -> None:
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    answer = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


async def _slow_stream(scope: Scope, receive: Any, send: Any) -> None:
    """Ten chunks over two seconds: four times every deadline."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for index in range(10):
        await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b"chunk%d;" % index, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@contextmanager
def _serve(app: Any, settings: ServerConfig = QUICK) -> Iterator[int]:
    guard = ConnectionGuard(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=cast("type[asyncio.Protocol]", guard),
        ws="none",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(PATIENCE)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            pytest.fail(f"the connection was kept open for {PATIENCE} s")
        if not chunk:
            return received
        received += chunk


def _is_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except ConnectionError:
        return False
    finally:
        sock.settimeout(PATIENCE)


GET = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"


def test_pipelined_requests_are_all_answered_then_the_idle_connection_closes() -> None:
    with _serve(_ok) as port, _connect(port) as sock:
        sock.sendall(GET * 3)
        received = _read_until_closed(sock)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.endswith(b"ok")


def test_an_answer_before_the_body_does_not_keep_the_connection() -> None:
    with _serve(_refuse_without_reading) as port, _connect(port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n{")
        received = _read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 401 ")
    assert b"408" not in received.split(b"\r\n", 1)[1]  # one answer, not a second one


def test_an_answer_streaming_longer_than_every_deadline_is_not_cut() -> None:
    with _serve(_slow_stream) as port, _connect(port) as sock:
        sock.sendall(GET)
        received = _read_until_closed(sock)
    assert all(b"chunk%d;" % index in received for index in range(10))
    assert received.endswith(b"0\r\n\r\n")


def test_at_the_cap_the_longest_waiting_connection_makes_room() -> None:
    holding = _Holding()
    settings = ServerConfig(header_timeout_seconds=60, max_connections=MIN_CONNECTIONS)
    with _serve(holding, settings) as port:
        busy = _connect(port)
        busy.sendall(GET)
        waiting = [_connect(port) for _ in range(MIN_CONNECTIONS - 1)]
        deadline = time.monotonic() + PATIENCE
        while holding.started < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        newest = _connect(port)  # one over the cap
        time.sleep(0.3)
        assert [_is_open(sock) for sock in waiting] == [False] + [True] * (len(waiting) - 1)
        assert _is_open(busy) and _is_open(newest)
        holding.release()
        assert busy.recv(4096).startswith(b"HTTP/1.1 200 OK")
        for sock in [busy, newest, *waiting]:
            sock.close()


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused_with_503() -> None:
    holding = _Holding()
    settings = ServerConfig(max_connections=MIN_CONNECTIONS)
    with _serve(holding, settings) as port:
        busy = [_connect(port) for _ in range(MIN_CONNECTIONS)]
        for sock in busy:
            sock.sendall(GET)
        deadline = time.monotonic() + PATIENCE
        while holding.started < MIN_CONNECTIONS:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with _connect(port) as refused:
            answer = _read_until_closed(refused)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ")
        error = json.loads(body)["error"]
        assert (error["type"], error["code"]) == ("server_error", "too_many_connections")
        holding.release()
        for sock in busy:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
            sock.close()


def test_the_cap_leaves_room_for_upstream_connections_and_other_files() -> None:
    assert connection_cap(4096, open_file_limit=256) == 96
    assert connection_cap(4096, open_file_limit=1024) == 480
    assert connection_cap(4096, open_file_limit=1_048_576) == 4096
    assert connection_cap(4096, open_file_limit=40) == MIN_CONNECTIONS


def test_each_worker_gets_its_own_guard_with_the_same_settings() -> None:
    guard = ConnectionGuard(QUICK)
    copy = pickle.loads(pickle.dumps(guard))
    assert copy is not guard and copy.settings == QUICK and copy.waiting == {}


def test_headers_over_the_limit_are_answered_431() -> None:
    settings = ServerConfig(max_header_bytes=4096)
    with _serve(_ok, settings) as port, _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: test\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"x-filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    error = json.loads(body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "headers_too_large")


def test_headers_over_the_limit_in_one_write_are_answered_431() -> None:
    """The whole header block, and a body, in one read: the limit holds all the same."""
    settings = ServerConfig(max_header_bytes=4096)
    filler = b"".join(b"x-filler-%d: %s\r\n" % (i, b"a" * 500) for i in range(20))
    request = b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\n" + filler + b"\r\n{}"
    with _serve(_ok, settings) as port, _connect(port) as sock:
        sock.sendall(request)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_body_larger_than_the_header_limit_is_not_mistaken_for_headers() -> None:
    settings = ServerConfig(max_header_bytes=4096)
    body = b"b" * 300_000
    request = b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: %d\r\n\r\n" % len(body)
    with _serve(_body_length, settings) as port, _connect(port) as sock:
        sock.sendall(request + body)
        sock.sendall(request + body)  # the second one arrives while the first is answered
        received = b""
        while received.count(b"300000") < 2:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
