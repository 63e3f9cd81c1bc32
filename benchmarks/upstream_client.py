"""What a provider call costs the gateway's process: the upstream client against aiohttp.

`python -m benchmarks.upstream_client [--requests 5000] [--seconds 5] [--rounds 5]`. Starts the
mock provider (`--mock-workers` processes on 127.0.0.1), then per round, in alternating order,
for `lean` (`providers.http_client`, as the adapters use it) and `aiohttp` (a `ClientSession`
set up as the gateway's was before: one `TCPConnector`, keep-alive, a ready `CIMultiDict` and
`URL`, a `ClientTimeout`):

- serial: `--requests` chat completions one after another; CPU µs per request of this process
  and the wall-clock p50;
- concurrent: 32 tasks for `--seconds`; requests per second and CPU µs per request;
- streams: 32 tasks reading 50-chunk streams whole for `--seconds`; CPU µs per stream.

CPU is this process's own time (`time.process_time`), so the mock's work and other load on the
machine count less than in wall-clock figures. Medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import httpx
import msgspec
import uvloop
from multidict import CIMultiDict
from yarl import URL

from benchmarks.processes import free_port
from benchmarks.targets import steerway_command
from providers.http_client import RequestHeaders, Timeouts, endpoint
from providers.upstream import UpstreamClient

CONCURRENCY: Final = 32
HEADERS: Final = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
CHAT: Final = msgspec.json.encode(
    {"model": "mock-gpt", "messages": [{"role": "user", "content": "hello there"}]}
)
STREAM: Final = msgspec.json.encode(
    {
        "model": "mock-gpt",
        "messages": [{"role": "user", "content": "hello there"}],
        "stream": True,
        "mock": {"chunks": 50},
    }
)

Call = Callable[[bytes], Awaitable[int]]
"""One request: sends the body, reads the answer whole, returns its length."""


class LeanClient:
    def __init__(self, url: str) -> None:
        self._client = UpstreamClient()
        self._url = endpoint(url)
        self._headers = RequestHeaders(HEADERS)
        self._timeouts = Timeouts(total=600, connect=5, read=60)

    async def __aenter__(self) -> Call:
        await self._client.start()
        return self.call

    async def __aexit__(self, *_: object) -> None:
        await self._client.close()

    async def call(self, body: bytes) -> int:
        response = await self._client.post(self._url, body, self._headers, self._timeouts)
        try:
            return sum([len(piece) async for piece in response.iter_any()])
        finally:
            response.release()


class AiohttpClient:
    def __init__(self, url: str) -> None:
        self._url = URL(url)
        self._headers = CIMultiDict(HEADERS)
        self._timeout = aiohttp.ClientTimeout(total=600, sock_connect=5, sock_read=60)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Call:
        connector = aiohttp.TCPConnector(
            limit=1000, keepalive_timeout=30.0, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector, skip_auto_headers=("User-Agent", "Accept-Encoding")
        )
        return self.call

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, body: bytes) -> int:
        assert self._session is not None
        response = await self._session.post(
            self._url, data=body, headers=self._headers, timeout=self._timeout
        )
        try:
            return sum([len(piece) async for piece in response.content.iter_any()])
        finally:
            response.release()


CLIENTS: Final[dict[str, type[LeanClient] | type[AiohttpClient]]] = {
    "lean": LeanClient,
    "aiohttp": AiohttpClient,
}


async def serial(client: Call, requests: int) -> tuple[float, float]:
    """CPU µs per request and the wall-clock p50 in ms."""
    for _ in range(50):
        await client(CHAT)
    times: list[float] = []
    cpu = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        await client(CHAT)
        times.append(time.perf_counter() - started)
    used = time.process_time() - cpu
    return used / requests * 1e6, statistics.median(times) * 1000


async def concurrent(client: Call, body: bytes, seconds: float) -> tuple[float, float]:
    """Requests per second and CPU µs per request, `CONCURRENCY` tasks for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await client(body)
            done += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))  # warm the pool
    done = 0
    deadline = time.perf_counter() + seconds
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    used, elapsed = time.process_time() - cpu, time.perf_counter() - wall
    return done / elapsed, used / done * 1e6


async def one_round(name: str, url: str, requests: int, seconds: float) -> dict[str, float]:
    async with CLIENTS[name](url) as client:
        serial_cpu, serial_p50 = await serial(client, requests)
        rps, concurrent_cpu = await concurrent(client, CHAT, seconds)
        streams, stream_cpu = await concurrent(client, STREAM, seconds)
    return {
        "serial_cpu_us": serial_cpu,
        "serial_p50_ms": serial_p50,
        "rps": rps,
        "concurrent_cpu_us": concurrent_cpu,
        "streams_per_s": streams,
        "stream_cpu_us": stream_cpu,
    }


def start_mock(workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            *steerway_command(None),
            "mock-provider",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/_mock/stats", timeout=1).status_code == 200:
                return process, f"{base}/v1/chat/completions"
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the mock provider did not start")


def shown(value: float) -> str:
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.upstream_client")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mock-workers", type=int, default=1)
    args = parser.parse_args(argv)
    process, url = start_mock(args.mock_workers)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CLIENTS}
    try:
        for index in range(args.rounds):
            order = list(CLIENTS) if index % 2 == 0 else list(reversed(CLIENTS))
            for name in order:
                figures = uvloop.run(one_round(name, url, args.requests, args.seconds))
                results[name].append(figures)
                print(
                    f"round {index + 1} {name:8s} "
                    + ", ".join(f"{key} {shown(value)}" for key, value in figures.items()),
                    flush=True,
                )
    finally:
        process.terminate()
        process.wait(10)
    print(
        f"\nmedians of {args.rounds} rounds ({args.requests} serial requests, "
        f"{CONCURRENCY} tasks for {args.seconds:g} s):"
    )
    keys = list(results["lean"][0])
    print("| client | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, rounds in results.items():
        cells = [shown(statistics.median(r[key] for r in rounds)) for key in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    ratios = [
        statistics.median(
            a[key] / b[key] for a, b in zip(results["lean"], results["aiohttp"], strict=True)
        )
        for key in keys
    ]
    print("| lean ÷ aiohttp (paired) | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
