"""Time-ordered identifiers, so inserts append and lists page by id.

Trace and span ids are handed to clients (`x-steerway-trace-id`, `traceparent` upstream), so
their random bits come from the operating system's CSPRNG, never from `random`'s Mersenne
Twister, whose state (and so every later id) can be rebuilt from a few hundred outputs. A system
call per id would add about 0.6 µs to each; the bits are read in blocks of `_POOL_WORDS` 64-bit
words instead and handed out one word at a time, which costs about what `random` did
(docs/operations.md has the figures).
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Iterator

_POOL_WORDS = 512
_WORD_BYTES = array("Q").itemsize
assert _WORD_BYTES == 8

# UUIDv7: 48 bits of Unix milliseconds, version 7, 12 bits rand_a, variant 0b10, 62 bits rand_b.
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)
_RANDOM_BITS = (0xFFF << 64) | 0x3FFF_FFFF_FFFF_FFFF


def _fresh_pool() -> Iterator[int]:
    return iter(array("Q", os.urandom(_WORD_BYTES * _POOL_WORDS)))


_pool: Iterator[int] = iter(())


def _forget_pool() -> None:
    """A forked child must not hand out the words its parent still holds."""
    global _pool
    _pool = iter(())


os.register_at_fork(after_in_child=_forget_pool)


def random_word() -> int:
    """64 bits from the OS CSPRNG.

    Safe across threads: each word is taken by one C-level `next()`, which the GIL does not
    interleave; when two threads find the pool empty at once, each reads a fresh block.
    """
    global _pool
    word = next(_pool, None)
    if word is None:
        _pool = _fresh_pool()
        word = next(_pool)
    return word


def uuid7_hex() -> str:
    """A UUIDv7 as 32 lowercase hex digits: 48 bits of Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = ((random_word() << 64) | random_word()) & _RANDOM_BITS
    value = ((millis & 0xFFFF_FFFF_FFFF) << 80) | _VERSION_AND_VARIANT | rand
    return value.to_bytes(16).hex()


def span_id_hex() -> str:
    """A W3C span id: 16 hex digits, never all zero."""
    while True:
        value = random_word()
        if value:
            return value.to_bytes(8).hex()
