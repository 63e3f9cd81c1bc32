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
) -> None:
    """Wait `interval` seconds, run `work`, again until `stopping` is set. `failing` is the
    warning's format, with one `%s` for the reason."""
    in_failure = False
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await stopping.wait()
        if stopping.is_set():
            return
        try:
            await work()
        except Exception as error:
            if not in_failure:
                reason = "unreachable" if is_unavailable(error) else type(error).__name__
                logger.warning(failing, reason)
            in_failure = True
        else:
            in_failure = False
