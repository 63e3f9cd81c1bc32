"""The lock that lets one process evaluate a round of alert rules at a time
(`telemetry.job_lock` with the evaluators' own key; on SQLite `<database>.alerts-lock`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.job_lock import job_lock

LOCK_KEY: Final = 0x5374_6657_0002
"""The evaluators' advisory lock (the roll-up folder's is another)."""


@contextlib.asynccontextmanager
async def round_lock(engine: AsyncEngine) -> AsyncIterator[bool]:
    """True while this process holds the round; False when another does."""
    async with job_lock(engine, key=LOCK_KEY, name="alerts") as locked:
        yield locked
