"""Ids for the demo history, drawn from a seeded generator so one seed always gives the same
rows. They have the shape of the gateway's own (`telemetry.ids`): UUIDv7 in hex, W3C span ids.

A trace id's 12 `rand_a` bits hold the microseconds within its millisecond (UUIDv7's optional
sub-millisecond precision), so trace ids sort exactly as their start times do and keyset paging
by id walks the history in time order.
"""

from __future__ import annotations

import random

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_B = (1 << 62) - 1


class DemoIds:
    __slots__ = ("_bits",)

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def at(self, epoch_seconds: float) -> str:
        """A UUIDv7 of that instant with random bits."""
        millis = int(epoch_seconds * 1000)
        rand = self._bits(74)
        value = (
            ((millis & 0xFFFF_FFFF_FFFF) << 80)
            | _VERSION
            | ((rand >> 62) << 64)
            | _VARIANT
            | (rand & _RAND_B)
        )
        return f"{value:032x}"

    def trace(self, epoch_micros: int) -> str:
        """A UUIDv7 whose order is the order of `epoch_micros`."""
        millis, micros = divmod(epoch_micros, 1000)
        value = (
            ((millis & 0xFFFF_FFFF_FFFF) << 80)
            | _VERSION
            | ((micros * 4) << 64)
            | _VARIANT
            | self._bits(62)
        )
        return f"{value:032x}"

    def span(self) -> str:
        """A W3C span id: 16 hex digits, never all zero."""
        return f"{self._bits(64) or 1:016x}"
