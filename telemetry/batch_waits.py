"""Waiting in a background batcher (the recorder's writer, the OTLP exporter): for a batch to
fill, and, on the other side, for the batcher to have settled a given number of items."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_to_fill(wake: asyncio.Event, filled: Callable[[], bool], interval: float) -> None:
    """Return once `filled()` holds, checked each time `wake` is set, or after `interval`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + interval
    while not filled():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), remaining)
        except TimeoutError:
            return


class SettledWaiters:
    """Futures that resolve once a running count of settled items reaches their target."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def waiting(self) -> bool:
        """Someone waits: the batcher should not hold a batch back to fill it."""
        return any(not waiter.done() for _, waiter in self._waiting)

    async def wait(self, target: int, wake: asyncio.Event) -> None:
        """Wait until `target` items are settled, waking the batcher to get on with it."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((target, waiter))
        wake.set()
        await waiter

    def settled(self, count: int, *, everything: bool = False) -> None:
        """Resolve the waiters whose target `count` reaches (all of them with `everything`)."""
        waiting = []
        for target, waiter in self._waiting:
            if everything or count >= target:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._waiting = waiting
