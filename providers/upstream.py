"""The shared upstream HTTP client: one pool of keep-alive connections per worker."""

from __future__ import annotations

from providers.http_client import (
    ConnectionPool,
    Endpoint,
    RequestHeaders,
    Timeouts,
    UpstreamConnectionError,
    UpstreamResponse,
)


class UpstreamClient:
    """Owns the worker's connection pool (`providers.http_client`); adapters borrow it for every
    provider call."""

    def __init__(self, *, limit: int = 1000, keepalive: float = 30.0) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._pool: ConnectionPool | None = None

    async def start(self) -> None:
        self._pool = ConnectionPool(limit=self._limit, keepalive=self._keepalive)

    async def post(
        self,
        url: Endpoint,
        body: bytes,
        headers: RequestHeaders,
        timeouts: Timeouts,
        extra: bytes = b"",
    ) -> UpstreamResponse:
        """POST `body`; the response once its status and headers have arrived."""
        if self._pool is None:
            raise UpstreamConnectionError("the upstream client is not started")
        return await self._pool.post(url, body, headers, timeouts, extra)

    @property
    def open_connections(self) -> int:
        return 0 if self._pool is None else self._pool.open_connections

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
