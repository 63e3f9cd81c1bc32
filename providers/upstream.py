"""The shared upstream HTTP client: one pooled, keep-alive aiohttp session per worker."""

from __future__ import annotations

import aiohttp


class UpstreamClient:
    """Owns the worker's `aiohttp.ClientSession`; adapters borrow it for every provider call."""

    def __init__(self, *, limit: int = 1000, limit_per_host: int = 0, keepalive: float = 30.0):
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Ask for identity encoding: pass-through streaming stays byte-for-byte and cheap.
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the upstream client is not started")
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
