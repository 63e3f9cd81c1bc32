"""Key names for the live feed: summaries carry a key's id, viewers want its name.

One cache per worker, filled from the keys table as ids turn up; a lookup that fails (the
database away or slow) leaves the name out for a while rather than holding the feed up.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.entry.auth import MASTER_KEY_INFO
from gateway.keys.store import KeyStore

CACHE_SIZE: Final = 4096
TTL_SECONDS: Final = 300.0
"""A renamed key shows its new name within this long."""
MISS_TTL_SECONDS: Final = 10.0
LOOKUP_SECONDS: Final = 1.0


class KeyNames:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = KeyStore(engine)
        self._clock = clock
        self._names: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def names(self, key_ids: Iterable[str | None]) -> dict[str, str | None]:
        """Each id's name (None for a key that is gone or could not be read in time)."""
        now = self._clock()
        found: dict[str, str | None] = {}
        for key_id in key_ids:
            if key_id is None or key_id in found:
                continue
            cached = self._names.get(key_id)
            if cached is not None and cached[0] > now:
                self._names.move_to_end(key_id)
                found[key_id] = cached[1]
            else:
                found[key_id] = await self._look_up(key_id, now)
        return found

    async def _look_up(self, key_id: str, now: float) -> str | None:
        if key_id == MASTER_KEY_INFO.key_id:
            name: str | None = MASTER_KEY_INFO.name
            expires = now + TTL_SECONDS
        else:
            try:
                async with asyncio.timeout(LOOKUP_SECONDS):
                    key = await self._store.get(key_id)
            except Exception:  # the feed goes on without the name
                name, expires = None, now + MISS_TTL_SECONDS
            else:
                name = key.name if key is not None else None
                expires = now + (TTL_SECONDS if key is not None else MISS_TTL_SECONDS)
        self._names[key_id] = (expires, name)
        self._names.move_to_end(key_id)
        while len(self._names) > CACHE_SIZE:
            self._names.popitem(last=False)
        return name
