"""Deadlines and a cap for the HTTP connections `steerway serve` accepts.

uvicorn closes a connection left idle between requests but sets no deadline for reading one: a
socket that never finished its headers, or trickled its body a byte a second, was held for ever,
and a few hundred of them used up the process's file descriptors, `/healthz` included.
`ConnectionGuard` is handed to uvicorn as its HTTP protocol (`http=`); it builds uvicorn's
httptools protocol with the deadlines of the `server` config section and keeps the worker's
connections under a cap.

A connection has one read deadline, set by the phase it is in, and a write deadline while the
client reads nothing of a full send buffer:

| phase | deadline | when it passes |
|---|---|---|
| waiting: connected, no request yet | header timeout, from the connection | closed |
| idle: between requests | keep-alive timeout, from the last answer | closed |
| headers | header timeout, from the connection or the request's first byte | 408, closed |
| body | body timeout, from the end of the headers | 408, closed |
| busy: request read, answer under way | none (answers may stream for minutes) | |

Deadlines are numbers, not timers: each request stores a few attributes, and one sweep per worker
(a quarter of the shortest timeout apart, at most a second) closes what has expired. uvicorn's
keep-alive timer, armed after every answer, is replaced by the same sweep.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.config.server import ServerConfig
from gateway.entry.response_writes import HeadWithBody
from gateway.errors import error_body
from telemetry import metrics

logger = logging.getLogger("steerway.server")

FD_RESERVE: Final = 64
"""Descriptors kept for what is not a client or upstream connection: the database, Redis, the
listening socket, log and spill files."""
MIN_CONNECTIONS: Final = 16
REPORT_INTERVAL: Final = 60.0
"""Seconds between two log lines about connections closed by a deadline or the cap."""

_WAITING, _IDLE, _HEADERS, _BODY, _BUSY = range(5)

_shutdown_callbacks: list[Callable[[], None]] = []
_serving: list[ServerState] = []
"""The server state of this process's server (one per worker process)."""


def when_shutting_down(callback: Callable[[], None]) -> None:
    """Call `callback` once when the server starts its graceful shutdown, before it waits for
    the answers under way: an answer that never ends by itself (a live feed) ends then, instead
    of holding the shutdown for its whole timeout."""
    _shutdown_callbacks.append(callback)


def limit_send_buffer(client: tuple[str, int] | None, size: int) -> bool:
    """Give the connection of `client` (the ASGI scope's `client`) a kernel send buffer of
    `size` bytes instead of one that grows to megabytes; False when no such connection is ours.

    For answers that stream for as long as the client stays, such as the live feed: a client
    that stops reading then fills its buffers after kilobytes rather than megabytes, so the
    application sees it fall behind while what it was sent is still recent.
    """
    if client is None:
        return False
    for state in _serving:
        for connection in state.connections:
            if isinstance(connection, GuardedProtocol) and connection.client == client:
                sock = connection.transport.get_extra_info("socket")
                if sock is None:
                    return False
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
                return True
    return False


def _shutting_down() -> None:
    callbacks = list(_shutdown_callbacks)
    _shutdown_callbacks.clear()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logger.exception("a shutdown callback failed")


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit, as servers commonly do at
    start (workers inherit it); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and soft != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft


def connection_cap(configured: int, open_file_limit: int | None = None) -> int:
    """The connections one worker may hold under its open-file limit (this process's unless
    given): each can need a second descriptor for its upstream call, and `FD_RESERVE` stay free
    for everything else."""
    limit = (
        resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if open_file_limit is None
        else open_file_limit
    )
    if limit == resource.RLIM_INFINITY:
        return configured
    return min(configured, max(MIN_CONNECTIONS, (limit - FD_RESERVE) // 2))


def _error_response(status: int, message: str, code: str, error_type: str) -> tuple[bytes, bytes]:
    """The head (up to the blank line) and body of an answer written straight to the socket."""
    body = error_body(message, error_type, code)
    head = (
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return STATUS_LINE[status], head + body


REQUEST_TIMEOUT: Final = _error_response(
    408,
    "The request was not received in time; send its headers and body without pausing.",
    "request_timeout",
    "invalid_request_error",
)
HEADERS_TOO_LARGE: Final = _error_response(
    431,
    "The request line and headers are too large.",
    "headers_too_large",
    "invalid_request_error",
)
OVER_CAPACITY: Final = _error_response(
    503,
    "The gateway has too many open connections; retry shortly.",
    "too_many_connections",
    "server_error",
)


class ConnectionGuard:
    """uvicorn's HTTP protocol factory, with the deadlines and cap of one `ServerConfig`.

    Picklable: with `--workers N` each worker process gets its own copy, and with it its own
    cap and sweep (the open-file limit is per process too).
    """

    def __init__(self, settings: ServerConfig) -> None:
        self.settings = settings
        self._server_state: ServerState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.cap = settings.max_connections
        self.waiting: dict[GuardedProtocol, None] = {}
        """Connections without a request in progress, longest waiting first: the ones shed
        at the cap."""
        self._closed: Counter[str] = Counter()
        self._next_report = 0.0
        self._sweep_interval = min(
            1.0,
            max(
                0.05,
                min(
                    settings.header_timeout_seconds,
                    settings.body_timeout_seconds,
                    settings.keepalive_timeout_seconds,
                    settings.write_timeout_seconds,
                )
                / 4,
            ),
        )

    def __reduce__(self) -> tuple[type[ConnectionGuard], tuple[ServerConfig]]:
        return ConnectionGuard, (self.settings,)

    def __call__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> GuardedProtocol:
        if server_state is not self._server_state:
            self._start(server_state, _loop or asyncio.get_running_loop())
        return GuardedProtocol(config, server_state, app_state, _loop, guard=self)

    def _start(self, server_state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self._server_state = server_state
        _serving[:] = [server_state]
        self._loop = loop
        self.cap = connection_cap(self.settings.max_connections)
        self.waiting.clear()
        loop.call_later(self._sweep_interval, self._sweep, server_state)

    def admit(self, protocol: GuardedProtocol) -> bool:
        """Make room for a new connection; False when it has to be refused."""
        metrics.connections_open.inc()
        if len(protocol.connections) > self.cap:
            if self.waiting:
                next(iter(self.waiting)).close("shed")
            else:
                self.note_closed("refused")
                return False
        self.waiting[protocol] = None
        return True

    def note_closed(self, reason: str) -> None:
        metrics.connections_closed.labels(reason).inc()
        self._closed[reason] += 1
        loop = self._loop
        if loop is not None and loop.time() >= self._next_report:
            self._report(loop.time())

    def _report(self, now: float) -> None:
        counts = ", ".join(f"{count} {reason}" for reason, count in sorted(self._closed.items()))
        logger.warning(
            "closed connections in the last %d s: %s (cap %d per worker; see the server section "
            "of the config)",
            REPORT_INTERVAL,
            counts,
            self.cap,
        )
        self._closed.clear()
        self._next_report = now + REPORT_INTERVAL

    def _sweep(self, server_state: ServerState) -> None:
        if server_state is not self._server_state or self._loop is None:
            return
        # The next sweep first: whatever happens below, deadlines keep being enforced.
        self._loop.call_later(self._sweep_interval, self._sweep, server_state)
        now = self._loop.time()
        for connection in list(server_state.connections):
            if isinstance(connection, GuardedProtocol):
                connection.check_deadlines(now)
        if self._closed and now >= self._next_report:
            self._report(now)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read and write deadlines and a place under the cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        guard: ConnectionGuard,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self.waiting = guard.waiting
        settings = guard.settings
        self.header_timeout = settings.header_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        self.keepalive_timeout = settings.keepalive_timeout_seconds
        self.write_timeout = settings.write_timeout_seconds
        self.max_header_bytes = settings.max_header_bytes
        self.header_bytes = 0
        self.header_tail = b""
        self.phase = _WAITING
        self.deadline = 0.0
        self.write_deadline = 0.0
        self.closed_for: str | None = None

    # --- connection events -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.header_timeout
        if not self.guard.admit(self):
            self.closed_for = "refused"
            self._answer_and_close(OVER_CAPACITY)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.waiting.pop(self, None)
        metrics.connections_open.dec()

    def shutdown(self) -> None:
        _shutting_down()
        super().shutdown()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.write_deadline = self.loop.time() + self.write_timeout

    def resume_writing(self) -> None:
        super().resume_writing()
        self.write_deadline = 0.0

    # --- parser callbacks: the phases of a request ---------------------------------------------

    # The base methods are called by name, not through super(): these run for every request.

    def data_received(self, data: bytes) -> None:
        if self.phase <= _HEADERS:
            # Measured before parsing: a whole header block (and more) can come in one read.
            # The end of the block may straddle two reads: the last bytes of the one before
            # are searched again.
            tail = self.header_tail
            end = (tail + data).find(b"\r\n\r\n")
            if end < 0:
                self.header_bytes += len(data)
                self.header_tail = data[-3:]
            else:
                self.header_bytes += end + 4 - len(tail)
                self.header_tail = b""
            if self.header_bytes > self.max_header_bytes:
                if not self.transport.is_closing():
                    self.closed_for = "headers_too_large"
                    self.guard.note_closed("headers_too_large")
                    self._answer_and_close(HEADERS_TOO_LARGE)
                return
        HttpToolsProtocol.data_received(self, data)

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        if self.phase != _WAITING:  # a later request: its headers get a whole timeout
            self.deadline = self.loop.time() + self.header_timeout
        self.phase = _HEADERS

    def on_headers_complete(self) -> None:
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not None:
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]
        self.waiting.pop(self, None)
        self.header_bytes = 0
        self.header_tail = b""
        self.phase = _BODY
        self.deadline = self.loop.time() + self.body_timeout

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.pipeline:
            self._become_idle()  # answered before its body was read
        else:
            self.phase = _BUSY
            self.deadline = 0.0

    def on_response_complete(self) -> None:
        """uvicorn's, with the idle deadline in place of its keep-alive timer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self.phase == _BUSY:
            self._become_idle()

    def _become_idle(self) -> None:
        self.phase = _IDLE
        self.deadline = self.loop.time() + self.keepalive_timeout
        self.waiting[self] = None

    # --- deadlines ---------------------------------------------------------------------------

    def check_deadlines(self, now: float) -> None:
        if self.closed_for is not None:
            return
        if self.write_deadline and now >= self.write_deadline:
            self.close("write_timeout", abort=True)
            return
        if not self.deadline or now < self.deadline:
            return
        phase = self.phase
        if phase in (_WAITING, _IDLE):
            self.close("idle")
        elif phase == _HEADERS:
            self._time_out("header_timeout", self.cycle is None or self.cycle.response_complete)
        elif self.flow.read_paused:
            # Reading stopped on our side (a full buffer, a pipelined request waiting its
            # turn): the client is not the one holding the body up.
            self.deadline = now + self.body_timeout
        else:
            self._time_out("body_timeout", not self.pipeline and not self.cycle.response_started)

    def _time_out(self, reason: str, can_answer: bool) -> None:
        """408 when no answer is under way on this connection, else just the end of it."""
        if can_answer:
            if self.phase == _BODY:
                # The application, waiting for the body, reads a disconnect; what it sends
                # after that is dropped.
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            self.closed_for = reason
            self.guard.note_closed(reason)
            self._answer_and_close(REQUEST_TIMEOUT)
        else:
            cycle = self.cycle
            answering = self.pipeline or (cycle is not None and not cycle.response_complete)
            self.close(reason, abort=bool(answering))

    def close(self, reason: str, *, abort: bool = False) -> None:
        """End the connection for `reason` (counted unless it is a plain idle close)."""
        self.closed_for = reason
        self.waiting.pop(self, None)
        if reason != "idle":
            self.guard.note_closed(reason)
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    def _answer_and_close(self, answer: tuple[bytes, bytes]) -> None:
        self.waiting.pop(self, None)
        status_line, rest = answer
        parts = [status_line]
        for name, value in self.server_state.default_headers:
            parts.extend([name, b": ", value, b"\r\n"])
        parts.append(rest)
        self.transport.write(b"".join(parts))
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # the client is not reading either
        else:
            self.transport.close()
