"""An aiohttp server on 127.0.0.1 that runs its own event loop in a thread, so synchronous and
async tests alike can start it, call it and stop it; subclasses route its requests."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from typing import Self

from aiohttp import web

from tests.ports import free_port


class ThreadedServer(ABC):
    client_max_size = 1024**2
    auto_decompress = True

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @abstractmethod
    def route(self, app: web.Application) -> None:
        """Add the server's handlers to `app`."""

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    async def _start(self) -> None:
        app = web.Application(client_max_size=self.client_max_size)
        self.route(app)
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=self.auto_decompress)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
