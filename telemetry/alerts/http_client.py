"""The one httpx client of a process for notifications (low rate, so httpx's own transport).

A client's pooled connections belong to the event loop that opened them, so a client made on
another loop (a test's, or a forked worker's) is replaced rather than shared.

httpx logs every request's URL at INFO level, and a notification URL can be the secret itself
(a Slack incoming webhook); its log records show only the scheme, host and port of a URL.
"""

from __future__ import annotations

import asyncio
import logging
import os

import httpx

USER_AGENT = "Steerway-Notifications/1"


class _HostOnlyUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, httpx.URL) for arg in record.args
        ):
            record.args = tuple(
                f"{arg.scheme}://{arg.netloc.decode()}/..." if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


def _mask_logged_urls() -> None:
    target = logging.getLogger("httpx")
    if not any(isinstance(f, _HostOnlyUrls) for f in target.filters):
        target.addFilter(_HostOnlyUrls())


_mask_logged_urls()

_client: httpx.AsyncClient | None = None
_owner: tuple[int, asyncio.AbstractEventLoop] | None = None


def shared_client() -> httpx.AsyncClient:
    global _client, _owner
    owner = (os.getpid(), asyncio.get_running_loop())
    if _client is None or _client.is_closed or _owner != owner:
        # Redirects are not followed: a signed body must not be replayed to another address.
        _client = httpx.AsyncClient(
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=8),
        )
        _owner = owner
    return _client


async def close_shared_client() -> None:
    """At shutdown, from the loop that used the client."""
    global _client, _owner
    client, _client, _owner = _client, None, None
    if client is not None:
        await client.aclose()
