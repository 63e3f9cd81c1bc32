"""Running the mock provider: in-process for tests, or as a blocking multi-process server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any

from aiohttp import web

from providers.mock.app import PROVIDER_KEY, create_mock_app
from providers.mock.settings import MockSettings
from providers.mock.stats import MockStats

_BACKLOG = 2048


class MockServer:
    """A mock provider listening on loopback inside the current event loop."""

    def __init__(self, runner: web.AppRunner, app: web.Application, host: str, port: int) -> None:
        self._runner = runner
        self._app = app
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI SDK takes as `base_url`."""
        return f"{self.url}/v1"

    @property
    def stats(self) -> MockStats:
        return self._app[PROVIDER_KEY].stats

    @property
    def last_request(self) -> dict[str, Any] | None:
        recorded = self._app[PROVIDER_KEY].last_request
        return None if recorded is None else recorded.to_dict()

    def reset(self) -> None:
        """Zero the counters, forget the last request and restart every `mock.scenario`."""
        self._app[PROVIDER_KEY].clear_state()

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> MockServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_mock_server(
    settings: MockSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> MockServer:
    """Start serving in the running event loop; `port=0` picks a free port (see `.port`)."""
    app = create_mock_app(settings)
    runner = _runner(app)
    await runner.setup()
    sock = _listening_socket(host, port, reuse_port=False)
    try:
        await web.SockSite(runner, sock, backlog=_BACKLOG).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return MockServer(runner, app, host, sock.getsockname()[1])


def run_mock_provider(host: str, port: int, settings: MockSettings, workers: int = 1) -> None:
    """Serve until SIGINT or SIGTERM. With `workers > 1`, forked processes share the port
    through SO_REUSEPORT and the kernel spreads connections across them.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if workers == 1:
        sock = _listening_socket(host, port, reuse_port=False)
        _announce(host, sock.getsockname()[1], workers)
        _run_worker(sock, settings)
        return
    reservation = _bound_socket(host, port, reuse_port=True)
    bound_port = reservation.getsockname()[1]
    ready_reader, ready_writer = os.pipe()
    children: list[int] = []
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                reservation.close()
                os.close(ready_reader)
                _child_main(host, bound_port, settings, ready_writer)
            children.append(pid)
        os.close(ready_writer)
        if _count_ready(ready_reader, workers) < workers:
            _terminate(children)
            _supervise(children)
            raise RuntimeError("a mock provider worker failed to start")
        _announce(host, bound_port, workers)
        _supervise(children)
    finally:
        os.close(ready_reader)
        reservation.close()


def _child_main(host: str, port: int, settings: MockSettings, ready_writer: int) -> None:
    status = 0

    def report_ready() -> None:
        os.write(ready_writer, b".")
        os.close(ready_writer)

    try:
        _run_worker(_listening_socket(host, port, reuse_port=True), settings, report_ready)
    except BaseException as error:  # a forked child must never return into the parent's code
        print(f"mock provider worker {os.getpid()} failed: {error!r}", file=sys.stderr)
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _count_ready(reader: int, expected: int) -> int:
    """Wait until every worker listens; a worker that dies first closes its end early."""
    received = 0
    while received < expected:
        data = os.read(reader, expected)
        if not data:
            break
        received += len(data)
    return received


def _terminate(children: list[int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _supervise(children: list[int]) -> None:
    def forward(signum: int, frame: FrameType | None) -> None:
        _terminate(children)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        remaining = set(children)
        while remaining:
            try:
                pid, _ = os.wait()
            except ChildProcessError:
                break
            remaining.discard(pid)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_worker(
    sock: socket.socket, settings: MockSettings, on_ready: Callable[[], None] | None = None
) -> None:
    _event_loop_runner()(_serve(sock, settings, on_ready))


async def _serve(
    sock: socket.socket, settings: MockSettings, on_ready: Callable[[], None] | None
) -> None:
    runner = _runner(create_mock_app(settings))
    await runner.setup()
    await web.SockSite(runner, sock, backlog=_BACKLOG).start()
    if on_ready is not None:
        on_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def _runner(app: web.Application) -> web.AppRunner:
    return web.AppRunner(app, access_log=None, handler_cancellation=True)


def _bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = _bound_socket(host, port, reuse_port=reuse_port)
    sock.listen(_BACKLOG)
    sock.setblocking(False)
    return sock


def _announce(host: str, port: int, workers: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(
        f"mock provider listening on http://{shown}:{port}/v1 "
        f"(workers: {workers}, pid: {os.getpid()})",
        flush=True,
    )
