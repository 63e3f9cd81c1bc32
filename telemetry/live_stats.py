"""Requests per second, error rate and p95 duration over the last minute, for one viewer.

Counted in one-second buckets, each with a histogram of durations on a logarithmic scale (bins
5 % wide), so memory stays a few kilobytes however many requests pass and the p95 is within
about 2.5 % of the exact value. The window starts when the viewer connects: until a minute has
passed the figures cover the time since then, and `window_seconds` says how long that is.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final

WINDOW_SECONDS: Final = 60
_BIN_BASE: Final = 1.05
_LOG_BASE: Final = math.log(_BIN_BASE)
_SMALLEST_MS: Final = 0.01


def _bin(duration_ms: float) -> int:
    return math.floor(math.log(max(duration_ms, _SMALLEST_MS)) / _LOG_BASE)


def _bin_middle(index: int) -> float:
    return float(_BIN_BASE ** (index + 0.5))


class _Second:
    __slots__ = ("errors", "histogram", "requests", "second", "skipped")

    def __init__(self, second: int) -> None:
        self.second = second
        self.requests = 0
        self.errors = 0
        self.skipped = 0
        self.histogram: dict[int, int] = {}


class RollingStats:
    def __init__(self, started: float, window: int = WINDOW_SECONDS) -> None:
        self._started = started
        self._window = window
        self._seconds: deque[_Second] = deque()

    def add(self, now: float, duration_ms: float, *, error: bool, shown: bool = True) -> None:
        """Count one request; `shown=False` when it matched but was not sent (row sampling)."""
        bucket = self._bucket(int(now))
        bucket.requests += 1
        bucket.errors += error
        bucket.skipped += not shown
        index = _bin(duration_ms)
        bucket.histogram[index] = bucket.histogram.get(index, 0) + 1

    def snapshot(self, now: float) -> dict[str, Any]:
        self._forget_before(int(now) - self._window + 1)
        requests = errors = skipped = 0
        merged: dict[int, int] = {}
        for bucket in self._seconds:
            requests += bucket.requests
            errors += bucket.errors
            skipped += bucket.skipped
            for index, count in bucket.histogram.items():
                merged[index] = merged.get(index, 0) + count
        window = min(float(self._window), max(now - self._started, 1.0))
        return {
            "window_seconds": round(window, 1),
            "requests": requests,
            "requests_per_second": round(requests / window, 3),
            "errors": errors,
            "error_rate": round(errors / requests, 4) if requests else 0.0,
            "p95_ms": _percentile(merged, requests, 0.95),
            "not_shown": skipped,
        }

    def _bucket(self, second: int) -> _Second:
        seconds = self._seconds
        if seconds and seconds[-1].second == second:
            return seconds[-1]
        bucket = _Second(second)
        seconds.append(bucket)
        self._forget_before(second - self._window + 1)
        return bucket

    def _forget_before(self, second: int) -> None:
        seconds = self._seconds
        while seconds and seconds[0].second < second:
            seconds.popleft()


def _percentile(histogram: dict[int, int], total: int, fraction: float) -> float | None:
    if not total:
        return None
    rank = math.ceil(total * fraction)
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(_bin_middle(index), 3)
    return None  # pragma: no cover - the counts add up to `total`
