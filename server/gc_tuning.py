"""The cyclic garbage collector, set for a long-running server once the app has started.

Measured under load (2,000 req/s on one worker): with CPython's defaults (700, 10, 10) the
recorder's queued bundles and the requests in flight outlive the young generations, reach the
oldest, and a full collection ran about once a second, each 20-60 ms with the loop stopped:
most of the event-loop stalls over 20 ms. Two changes, at the end of start-up:

- everything start-up made (modules, the app, compiled rules, the key cache's first entries) is
  collected once and frozen: no later collection walks it again;
- the youngest generation is collected every `YOUNG_THRESHOLD` net allocations instead of 700.
  Objects that die young are freed by reference counting anyway; this only spaces the scans
  for cycles among them, so a request's objects are gone before a scan would promote them.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

YOUNG_THRESHOLD: Final = 50_000
MIDDLE_THRESHOLD: Final = 20
OLD_THRESHOLD: Final = 10


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


@asynccontextmanager
async def serving_gc(_app: object = None) -> AsyncIterator[None]:
    """For a served app's lifespan, after the gateway has started; the collector is as it was
    once the app stops."""
    before = gc.get_threshold()
    tune_for_serving()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
