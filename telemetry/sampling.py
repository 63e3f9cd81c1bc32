"""A sampler bounded in time: at most so many events a minute pass, however fast they come."""

from __future__ import annotations

import time
from collections.abc import Callable


class PerMinuteSampler:
    """A token bucket holding `per_minute` tokens, refilled evenly over the minute.

    A burst takes what the bucket holds and then one event every `60 / per_minute` seconds, so
    the events kept from a flood are bounded by its duration, not by its rate.
    """

    __slots__ = ("_clock", "_last", "_per_second", "_size", "_tokens")

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = float(per_minute)
        self._per_second = per_minute / 60.0
        self._tokens = float(per_minute)
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._size, self._tokens + (now - self._last) * self._per_second)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
