"""Whether one large guarded prompt holds up everyone else's requests.

A serial client times small guarded requests for a while on its own, then again while wrk sends
large guarded prompts to the same gateway over one connection, back to back. The gateway checks
inputs longer than `guardrails.offload_chars` in a worker thread, so its event loop keeps serving
the small requests meanwhile; what is left is the worker thread's share of the CPU and the GIL.
The client reads the gateway's own `x-steerway-overhead-ms` of every answer too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from benchmarks.stats import percentile
from benchmarks.wrk import WrkError, WrkResult

OVERHEAD_HEADER = "x-steerway-overhead-ms"
BACKGROUND_LEAD_S = 0.5
"""The large prompts start this long before the timed requests, so the first are in flight."""


@dataclass
class SerialTimings:
    """Per answered request: the client's latency and the gateway's own overhead, in ms."""

    latency_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)
    failed: int = 0
    first_failure: str | None = None

    def summary(self) -> dict[str, float]:
        if not self.latency_ms:
            raise RuntimeError(f"no request answered: {self.first_failure or 'none sent'}")
        values = {
            "p50": percentile(self.latency_ms, 50),
            "p99": percentile(self.latency_ms, 99),
            "requests": float(len(self.latency_ms)),
            "non_2xx": float(self.failed),
        }
        if self.overhead_ms:
            values["overhead_p50"] = percentile(self.overhead_ms, 50)
            values["overhead_p99"] = percentile(self.overhead_ms, 99)
        return values

    def fail(self, reason: str) -> None:
        self.failed += 1
        if self.first_failure is None:
            self.first_failure = reason[:200]


async def time_serial(
    url: str,
    *,
    headers: Mapping[str, str],
    body: Callable[[int], bytes],
    duration_s: float,
    warmup: int = 20,
) -> SerialTimings:
    """Requests one after the other for `duration_s` (after `warmup` untimed ones); request
    number n sends `body(n)`."""
    timings = SerialTimings()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1),
        timeout=timeout,
        headers={**headers, "Content-Type": "application/json"},
    ) as session:
        number = 0
        for _ in range(warmup):
            number += 1
            await _send(session, url, body(number), SerialTimings())
        deadline = time.perf_counter() + duration_s
        while time.perf_counter() < deadline:
            number += 1
            await _send(session, url, body(number), timings)
    return timings


async def _send(
    session: aiohttp.ClientSession, url: str, data: bytes, timings: SerialTimings
) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, data=data) as response:
            await response.read()
            ended = time.perf_counter()
            if response.status != 200:
                timings.fail(f"HTTP {response.status}")
                return
            overhead = response.headers.get(OVERHEAD_HEADER)
    except (TimeoutError, aiohttp.ClientError) as error:
        timings.fail(type(error).__name__)
        return
    timings.latency_ms.append((ended - started) * 1000)
    if overhead is not None:
        with contextlib.suppress(ValueError):
            timings.overhead_ms.append(float(overhead))


class Background:
    """A wrk load running in a thread while the caller measures; `result()` waits for it."""

    def __init__(self, load: Callable[[], WrkResult]) -> None:
        self._load = load
        self._outcome: WrkResult | Exception | None = None
        self._thread = threading.Thread(target=self._run, name="guardrails-background")

    def _run(self) -> None:
        try:
            self._outcome = self._load()
        except (WrkError, OSError, RuntimeError) as error:
            self._outcome = error

    def __enter__(self) -> Background:
        self._thread.start()
        time.sleep(BACKGROUND_LEAD_S)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join()

    def result(self) -> WrkResult:
        self._thread.join()
        if isinstance(self._outcome, Exception):
            raise RuntimeError(f"background load failed: {self._outcome}") from self._outcome
        if self._outcome is None:
            raise RuntimeError("background load produced nothing")
        return self._outcome


def background_values(result: WrkResult) -> dict[str, float]:
    """What the large prompts' own load did, as values of the loaded row."""
    return {
        "large_requests": float(result.ok_requests),
        "large_p50": result.p50_ms,
        "large_non_2xx": float(result.non_2xx + result.socket_errors),
    }


def measure_alone(
    url: str, headers: Mapping[str, str], body: Callable[[int], bytes], duration_s: float
) -> dict[str, float]:
    return asyncio.run(
        time_serial(url, headers=headers, body=body, duration_s=duration_s)
    ).summary()


def measure_beside(
    url: str,
    headers: Mapping[str, str],
    body: Callable[[int], bytes],
    duration_s: float,
    background: Callable[[], WrkResult],
) -> dict[str, float]:
    """The small requests while `background` (lasting at least `duration_s` + the lead) runs."""
    with Background(background) as running:
        timings = asyncio.run(time_serial(url, headers=headers, body=body, duration_s=duration_s))
    values = timings.summary()
    values |= background_values(running.result())
    return values
