"""A lean HTTP/1.1 client for provider calls: pooled keep-alive connections over asyncio
protocols, responses parsed by httptools (the parser uvicorn serves with).

A provider call is one POST with a body already encoded, a status, two or three headers read
only when the answer is an error, and the body whole or as it arrives. A general client pays for
much more on every request (request and response objects of many parts, cookie jars, redirects,
tracing hooks, timer contexts); measured on loopback, about 200 µs of CPU a call against 20 µs
here (`python -m benchmarks upstream_client`). What stays: a pool of keep-alive connections per
origin with a total limit, connect, read and total timeouts, TLS with the system's trust store,
chunked and gzip bodies, and reading paused while a slow reader falls behind.

Failures are `TimeoutError` or an `OSError` (`UpstreamConnectionError` and its kinds for what is
not the socket's own error); `providers.errors.connection_reason` names them for a client.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, cast

import httptools
from multidict import CIMultiDict

READ_PAUSE_BYTES: Final = 1 << 20
"""A body this far ahead of its reader stops the socket being read until the reader catches up."""

_NO_BODY_STATUSES: Final = frozenset({204, 304})


class UpstreamConnectionError(ConnectionError):
    """The connection failed in a way the socket did not report as an OS error."""


class ServerDisconnected(UpstreamConnectionError):
    """The server closed the connection before its answer was complete."""


class MalformedResponse(UpstreamConnectionError):
    """The server's bytes are not an HTTP/1.1 response (or its body is not what it says)."""


class UnsendableRequest(ValueError):
    """A request the client cannot send."""


class InvalidURL(UnsendableRequest):
    """Not an absolute http(s) URL."""


class InvalidHeader(UnsendableRequest):
    """A header whose name or value holds a line break (or a NUL)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`connect`: to open a connection; `read`: for the first byte of the answer and then
    between any two reads; `total`: from the request to the end of its body. None is no limit."""

    total: float | None = None
    connect: float | None = None
    read: float | None = None

    def replace(
        self,
        *,
        total: float | None = None,
        connect: float | None = None,
        read: float | None = None,
    ) -> Timeouts:
        """These timeouts with the ones given replaced."""
        return Timeouts(
            total=self.total if total is None else total,
            connect=self.connect if connect is None else connect,
            read=self.read if read is None else read,
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL split once into what the pool and the request line need."""

    scheme: str
    host: str
    port: int
    target: bytes
    """The request target: path and query, as sent."""
    host_header: bytes

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    def __str__(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.target.decode('latin-1')}"


@lru_cache(maxsize=4096)
def endpoint(url: str) -> Endpoint:
    """`url` parsed; raises InvalidURL for anything but an absolute http(s) URL."""
    try:
        parsed = httptools.parse_url(url.encode())
    except (httptools.HttpParserInvalidURLError, UnicodeEncodeError) as error:
        raise InvalidURL("invalid URL") from error
    scheme = (parsed.schema or b"").decode().lower()
    if scheme not in ("http", "https") or not parsed.host:
        raise InvalidURL("invalid URL")
    host = parsed.host.decode("ascii", "replace")
    port = parsed.port or (443 if scheme == "https" else 80)
    target = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
    shown_host = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    host_header = (shown_host if port == default else f"{shown_host}:{port}").encode("ascii")
    return Endpoint(scheme, host, port, target, host_header)


def _header_line(name: str, value: str) -> bytes:
    if any(c in value for c in "\r\n\x00") or any(c in name for c in "\r\n\x00: "):
        raise InvalidHeader(f"the header {name!r} cannot be sent")
    return f"{name}: {value}\r\n".encode("latin-1", "strict")


class RequestHeaders:
    """Headers sent with every request of a provider, encoded once."""

    __slots__ = ("_encoded", "_items")

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        merged: dict[str, tuple[str, str]] = {}
        for name, value in items:
            merged[name.lower()] = (name, value)
        self._items = tuple(merged.values())
        self._encoded = b"".join(_header_line(name, value) for name, value in self._items)

    def with_headers(self, headers: Mapping[str, str]) -> RequestHeaders:
        """These headers with `headers` added (a name already here is replaced)."""
        return RequestHeaders((*self._items, *headers.items()))

    def get(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self._items:
            if key.lower() == lowered:
                return value
        return None

    @property
    def encoded(self) -> bytes:
        return self._encoded


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one response at a time."""

    __slots__ = ("closed", "idle_since", "origin", "parser", "response", "transport")

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.close()  # bytes nobody asked for: the connection cannot be trusted again
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            response.fail(MalformedResponse("the provider's answer is not valid HTTP/1.1"))
            self.close()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            if response.until_close and response.status:
                response.finish()
            elif isinstance(exc, OSError):
                response.fail(exc)
            else:
                response.fail(ServerDisconnected("the provider closed the connection"))

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        response.status = self.parser.get_status_code()
        response.keep_alive = self.parser.should_keep_alive()
        response.headers_arrived()

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.feed(body)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.response.finish()

    # ours

    def send(self, response: UpstreamResponse, head: bytes, body: bytes) -> None:
        self.response = response
        self.parser = httptools.HttpResponseParser(self)
        if self.transport is None:
            raise ServerDisconnected("the connection is not open")
        if len(body) > 65536:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head + body)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    """A provider's answer: `status` and `headers` once it starts, then its body whole
    (`read`) or as it arrives (`iter_any`). `release` when done hands a finished connection
    back to the pool; `close` drops it (a body left unread stops the provider's work)."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_connection",
        "_deadline",
        "_decoder",
        "_error",
        "_headers",
        "_loop",
        "_paused",
        "_pool",
        "_read_timeout",
        "_waiter",
        "complete",
        "keep_alive",
        "raw_headers",
        "status",
        "until_close",
    )

    def __init__(
        self,
        pool: ConnectionPool,
        connection: _Connection,
        loop: asyncio.AbstractEventLoop,
        deadline: float | None,
        read_timeout: float | None,
    ) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._loop = loop
        self._deadline = deadline
        self._read_timeout = read_timeout
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._headers: CIMultiDict[str] | None = None
        self._decoder: zlib._Decompress | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.keep_alive = False
        self.complete = False
        self.until_close = False

    @property
    def headers(self) -> CIMultiDict[str]:
        if self._headers is None:
            self._headers = CIMultiDict(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in self.raw_headers
            )
        return self._headers

    # fed by the connection

    def headers_arrived(self) -> None:
        length = chunked = False
        for name, value in self.raw_headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = True
            elif lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lowered == b"content-encoding":
                encoding = value.strip().lower()
                if encoding in (b"gzip", b"x-gzip"):
                    self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                elif encoding == b"deflate":
                    self._decoder = zlib.decompressobj()
        self.until_close = not (length or chunked) and self.status not in _NO_BODY_STATUSES
        self._wake()

    def feed(self, body: bytes) -> None:
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error:
                self.fail(MalformedResponse("the provider's compressed body is corrupt"))
                if self._connection is not None:
                    self._connection.close()
                return
            if not body:
                return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > READ_PAUSE_BYTES and not self._paused and self._connection is not None:
            transport = self._connection.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
                self._paused = True
        self._wake()

    def finish(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
                self._buffered += len(rest)
        self.complete = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # read by the gateway

    async def _wait(self) -> None:
        """Until the connection has news: bytes, the end, or a failure; or a timeout."""
        timeout = self._read_timeout
        if self._deadline is not None:
            left = self._deadline - self._loop.time()
            if left <= 0:
                raise TimeoutError
            timeout = left if timeout is None else min(timeout, left)
        waiter = self._waiter = self._loop.create_future()
        handle = None
        if timeout is not None:
            handle = self._loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    async def start(self) -> None:
        """Until the status line and headers have arrived."""
        while not self.status:
            if self._error is not None:
                raise self._error
            await self._wait()

    def _take(self) -> bytes:
        chunks = self._chunks
        piece = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            connection = self._connection
            transport = None if connection is None else connection.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        return piece

    async def read(self) -> bytes:
        """The whole body (taken as it arrives, so that reading is never paused for it)."""
        parts: list[bytes] = []
        while True:
            if self._chunks:
                parts.append(self._take())
            if self.complete:
                break
            if self._error is not None:
                raise self._error
            await self._wait()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, joined when several pieces are waiting."""
        while True:
            if self._chunks:
                yield self._take()
                continue
            if self.complete:
                return
            if self._error is not None:
                raise self._error
            await self._wait()

    def at_eof(self) -> bool:
        """True once the whole body has arrived and been read."""
        return self.complete and not self._chunks

    def release(self) -> None:
        """Done with the response: its connection goes back to the pool if the body was read
        to the end and the server keeps it open, else it is closed."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.response = None
        if self.complete and not self._chunks and self.keep_alive and not self.until_close:
            self._pool.put_back(connection)
        else:
            self._pool.discard(connection)

    def close(self) -> None:
        """Done with the response before its end: the connection is dropped."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.response = None
            self._pool.discard(connection)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class ConnectionPool:
    """Keep-alive connections by origin, at most `limit` open at once (idle ones are closed
    to make room before a caller waits); an idle connection older than `keepalive` seconds is
    not used again."""

    def __init__(
        self,
        *,
        limit: int = 1000,
        keepalive: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def post(
        self,
        url: Endpoint,
        body: bytes,
        headers: RequestHeaders,
        timeouts: Timeouts,
        extra: bytes = b"",
    ) -> UpstreamResponse:
        """Send a POST and wait for its status and headers. `extra`: header lines already
        encoded (see `header_line`) sent after `headers`."""
        if self._closed:
            raise UpstreamConnectionError("the upstream client is closed")
        loop = asyncio.get_running_loop()
        deadline = None if timeouts.total is None else loop.time() + timeouts.total
        connection = await self._acquire(url, timeouts, deadline, loop)
        response = UpstreamResponse(self, connection, loop, deadline, timeouts.read)
        head = b"".join(
            (
                b"POST ",
                url.target,
                b" HTTP/1.1\r\nHost: ",
                url.host_header,
                b"\r\n",
                headers.encoded,
                extra,
                b"Content-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
            )
        )
        try:
            connection.send(response, head, body)
            await response.start()
        except BaseException:
            response.close()
            raise
        return response

    async def _acquire(
        self,
        url: Endpoint,
        timeouts: Timeouts,
        deadline: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> _Connection:
        """An idle connection to the origin, else a new one; at the limit, an idle connection
        to another origin is closed to make room, or the caller waits for one to come back."""
        origin = url.origin
        while True:
            idle = self._idle.get(origin)
            now = loop.time()
            while idle:
                connection = idle.pop()
                if not connection.closed and now - connection.idle_since < self._keepalive:
                    return connection
                self.discard(connection)
            if self._open < self._limit or self._close_oldest_idle():
                break
            await self._wait_for_room(deadline, loop)
        self._open += 1
        try:
            return await self._connect(url, timeouts, deadline, loop)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    async def _wait_for_room(self, deadline: float | None, loop: asyncio.AbstractEventLoop) -> None:
        waiter = loop.create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    async def _connect(
        self,
        url: Endpoint,
        timeouts: Timeouts,
        deadline: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> _Connection:
        limit = deadline
        if timeouts.connect is not None:
            by_connect = loop.time() + timeouts.connect
            limit = by_connect if limit is None else min(limit, by_connect)
        tls = self._tls() if url.scheme == "https" else None
        async with asyncio.timeout_at(limit):
            _, connection = await loop.create_connection(
                lambda: _Connection(url.origin),
                url.host,
                url.port,
                ssl=tls,
                server_hostname=url.host if tls is not None else None,
            )
        return connection

    def put_back(self, connection: _Connection) -> None:
        if self._closed or connection.closed:
            self.discard(connection)
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(connection.origin, []).append(connection)
        if self._waiting:
            self._wake_one()

    def discard(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1
        self._wake_one()

    def _close_oldest_idle(self) -> bool:
        oldest: tuple[float, list[_Connection]] | None = None
        for connections in self._idle.values():
            if connections and (oldest is None or connections[0].idle_since < oldest[0]):
                oldest = (connections[0].idle_since, connections)
        if oldest is None:
            return False
        self.discard(oldest[1].pop(0))
        return True

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every idle connection; those in use close when their response is done."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                self.discard(connection)
        self._idle.clear()


def header_line(name: str, value: str) -> bytes:
    """One header as sent (`extra` of `ConnectionPool.post`); a line break in it is refused."""
    return _header_line(name, value)
