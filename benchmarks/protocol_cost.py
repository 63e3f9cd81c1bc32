"""`python -m benchmarks protocol`: what the connection guard adds to each request.

uvicorn's httptools protocol and `gateway.entry.server_connections.GuardedProtocol` take the same
keep-alive requests, one at a time, into an ASGI app that answers at once; the transport is a
sink, so the protocol and the event loop are all that is timed. The two alternate round by
round in one process and each round is timed in CPU time (`time.process_time`), so a busy
machine blurs the figures less than it would wall-clock throughput; the paired difference per
round is what the guard costs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.config.server import ServerConfig
from gateway.entry.server_connections import ConnectionGuard

REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"
    b"authorization: Bearer sk-benchmark\r\ncontent-type: application/json\r\n"
    b"content-length: 64\r\n\r\n" + b"x" * 64
)


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _Sink:
    """A transport that takes every write and never pushes back."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _round(factory: Callable[..., Any], requests: int) -> float:
    """CPU microseconds per request for one connection serving `requests` requests."""
    config = Config(_answer, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    protocol = factory(config=config, server_state=state, app_state={})
    protocol.connection_made(_Sink())
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        for task in list(state.tasks):
            await task
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


async def _measure(rounds: int, requests: int) -> dict[str, list[float]]:
    guard = ConnectionGuard(ServerConfig())
    factories: dict[str, Callable[..., Any]] = {"httptools": HttpToolsProtocol, "guarded": guard}
    results: dict[str, list[float]] = {name: [] for name in factories}
    for _ in range(rounds):
        for name, factory in factories.items():
            gc.collect()
            results[name].append(await _round(factory, requests))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks protocol", description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--requests", type=int, default=5000, help="requests per round")
    args = parser.parse_args(argv)
    results = uvloop.run(_measure(args.rounds, args.requests))
    plain, guarded = results["httptools"], results["guarded"]
    differences = sorted(g - p for p, g in zip(plain, guarded, strict=True))
    quartiles = statistics.quantiles(differences, n=4)
    print(f"httptools: median {statistics.median(plain):.2f} us CPU per request")
    print(f"guarded:   median {statistics.median(guarded):.2f} us CPU per request")
    print(
        f"guarded - httptools, paired by round: median {statistics.median(differences):+.2f} us "
        f"(quartiles {quartiles[0]:+.2f} to {quartiles[2]:+.2f}) over {args.rounds} rounds "
        f"of {args.requests} requests"
    )
    return 0
