"""Time-ordered identifiers, so inserts append and lists page by id."""

from __future__ import annotations

import random
import time

# Ids need uniqueness, not secrecy: the process-local generator (seeded from the OS in every
# process, and again after a fork) avoids a system call per id.
_random_bits = random.getrandbits


def uuid7_hex() -> str:
    """A UUIDv7 as 32 lowercase hex digits: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = _random_bits(80)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 68) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b: 62 bits
    return f"{value:032x}"


def span_id_hex() -> str:
    """A W3C span id: 16 hex digits, never all zero."""
    while True:
        value = _random_bits(64)
        if value:
            return f"{value:016x}"
