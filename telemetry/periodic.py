"""The loop of a background job (folding roll-ups, evaluating alerts): its work every
`interval` seconds until it is told to stop.

A failing round is logged once, when a run of failures begins, with the database's reason (its
being unreachable, or the error's type, never the error's text, which may quote rows), and the
job carries on: the next round that succeeds ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telemetry.db_outage import is_unavailable


async def run_every(
    interval: float,
    stopping: asyncio.Event,
    work: Callable[[], Awaitable[object]],
    *,
    logger: logging.Logger,
    failing: str,
    immediately: bool = False,
) -> None:
    """Wait `interval` seconds, run `work`, again until `stopping` is set. `failing` is the
    warning's format, with one `%s` for the reason. `immediately`: the first round does not
    wait (a job whose interval is longer than a process may live)."""
    in_failure = False
    waits = not immediately
    while not stopping.is_set():
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stopping.wait()
            if stopping.is_set():
                return
        waits = True
        try:
            await work()
        except Exception as error:
            if not in_failure:
                reason = "unreachable" if is_unavailable(error) else type(error).__name__
                logger.warning(failing, reason)
            in_failure = True
        else:
            in_failure = False


class PeriodicJob:
    """A background job's task: `run_every` started with `start` and stopped with `close`,
    which waits `close_timeout` seconds for a round in progress before cancelling it."""

    def __init__(
        self,
        name: str,
        interval: float,
        work: Callable[[], Awaitable[object]],
        *,
        logger: logging.Logger,
        failing: str,
        close_timeout: float = 5.0,
        immediately: bool = False,
    ) -> None:
        self._name = name
        self._interval = interval
        self._work = work
        self._logger = logger
        self._failing = failing
        self._close_timeout = close_timeout
        self._immediately = immediately
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(
                run_every(
                    self._interval,
                    self._stopping,
                    self._work,
                    logger=self._logger,
                    failing=self._failing,
                    immediately=self._immediately,
                ),
                name=self._name,
            )

    async def close(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        task, self._task = self._task, None
        try:
            async with asyncio.timeout(self._close_timeout):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
