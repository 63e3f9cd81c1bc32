"""What the mock's streaming answers share, whatever the wire format: counting, batching writes,
pauses and cutting the connection on purpose."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod

from aiohttp import web

from providers.mock.stats import MockStats


class SSEWriter(ABC):
    """Subclasses set `request`, `stats`, `response` and `_pending`, and write the events."""

    request: web.Request
    stats: MockStats
    response: web.StreamResponse
    _pending: list[bytes]

    async def run(self) -> web.StreamResponse:
        self.stats.streams_started += 1
        try:
            dropped = await self._write_events()
        except asyncio.CancelledError:
            self.stats.streams_aborted += 1
            raise
        except ConnectionError:
            self.stats.streams_aborted += 1
            return self.response
        if dropped:
            self.stats.streams_dropped += 1
        else:
            self.stats.streams_completed += 1
        return self.response

    @abstractmethod
    async def _write_events(self) -> bool:
        """Send the whole stream; True when it was cut on purpose."""

    async def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            await self.response.write(data)

    async def _pause(self, milliseconds: float) -> None:
        if milliseconds > 0:
            await self._flush()
            await asyncio.sleep(milliseconds / 1000.0)

    async def _drop_connection(self) -> None:
        """Close the socket mid-body (no terminating chunk) once the data sent is out."""
        await self._flush()
        transport = self.request.transport
        if transport is None:
            return
        deadline = time.monotonic() + 1.0
        while transport.get_write_buffer_size() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        transport.abort()
