"""Time to first byte and to first content token of streamed chat completions.

wrk only sees whole responses, so this small client measures the start of a stream: the first
body byte (the gateway relays the upstream's first event) and the first event that carries
content (the upstream's time to first token plus every hop's relay delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from benchmarks.stats import percentile


@dataclass(frozen=True)
class StreamTiming:
    first_byte_ms: float
    first_content_ms: float
    total_ms: float


@dataclass(frozen=True)
class StreamSummary:
    completed: int
    failed: int
    first_byte_p50_ms: float
    first_byte_p99_ms: float
    first_content_p50_ms: float
    total_p50_ms: float
    first_failure: str | None = None


def event_has_content(event: bytes) -> bool:
    """Whether one SSE event (`data: {...}`) carries a non-empty content delta."""
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            continue
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                return True
    return False


def stream_body(model: str, max_tokens: int = 64) -> bytes:
    prompt = f"hello {uuid.uuid4().hex}"
    return json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": True,
        }
    ).encode()


async def _one(session: aiohttp.ClientSession, url: str, model: str) -> StreamTiming:
    started = time.perf_counter()
    first_byte = first_content = None
    pending = b""
    async with session.post(url, data=stream_body(model)) as response:
        if response.status != 200:
            text = (await response.text())[:200]
            raise RuntimeError(f"HTTP {response.status}: {text}")
        async for data in response.content.iter_any():
            now = time.perf_counter()
            if first_byte is None:
                first_byte = now
            if first_content is None:
                pending += data.replace(b"\r\n", b"\n")
                *events, pending = pending.split(b"\n\n")
                if any(event_has_content(event) for event in events):
                    first_content = now
    ended = time.perf_counter()
    if first_byte is None:
        raise RuntimeError("empty stream")
    return StreamTiming(
        first_byte_ms=(first_byte - started) * 1000,
        first_content_ms=((first_content or ended) - started) * 1000,
        total_ms=(ended - started) * 1000,
    )


async def measure_streams(
    url: str,
    *,
    headers: Mapping[str, str],
    model: str,
    count: int,
    concurrency: int,
    warmup: int = 5,
) -> StreamSummary:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    timings: list[StreamTiming] = []
    failures: list[str] = []
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={**headers, "Content-Type": "application/json"},
    ) as session:
        for _ in range(warmup):
            with contextlib.suppress(aiohttp.ClientError, RuntimeError, asyncio.TimeoutError):
                await _one(session, url, model)
        queue = iter(range(count))

        async def worker() -> None:
            for _ in queue:
                try:
                    timings.append(await _one(session, url, model))
                except (TimeoutError, aiohttp.ClientError, RuntimeError) as error:
                    failures.append(f"{type(error).__name__}: {error}"[:200])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if not timings:
        return StreamSummary(
            0, len(failures), 0.0, 0.0, 0.0, 0.0, failures[0] if failures else None
        )
    first_bytes = [t.first_byte_ms for t in timings]
    return StreamSummary(
        completed=len(timings),
        failed=len(failures),
        first_byte_p50_ms=percentile(first_bytes, 50),
        first_byte_p99_ms=percentile(first_bytes, 99),
        first_content_p50_ms=percentile([t.first_content_ms for t in timings], 50),
        total_p50_ms=percentile([t.total_ms for t in timings], 50),
        first_failure=failures[0] if failures else None,
    )
