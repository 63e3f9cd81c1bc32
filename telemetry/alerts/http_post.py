"""POSTing a body to a receiver with the retry policy every HTTP channel shares.

Retried: connection errors, timeouts, 429 and 5xx (waiting `Retry-After` when the receiver
sends one, if within `retry_after_max_s`). Not retried: any other status, since the same request
would be refused again. Each attempt's headers are made afresh, so a signature's timestamp is
the attempt's.

httpx (with the client of `telemetry.alerts.http_client`) is imported at the first notification:
every process that can notify imports this module, and httpx with its command line's
dependencies is a tenth of a gateway's start, for a feature most processes never use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from telemetry.alerts.attempts import (
    DeliveryFailed,
    DeliverySettings,
    Progress,
    attempt_timeout,
    backoff_delay,
    parse_retry_after,
    wait_before_retry,
)

if TYPE_CHECKING:
    import httpx

REPLY_QUOTED = 300
"""How much of a refusal's body the error quotes (Slack says `invalid_payload` there)."""
_REPLY_READ = 64 * 1024


def is_retried(status: int) -> bool:
    return status == 429 or status >= 500


async def post(
    url: str,
    body: bytes,
    *,
    headers: Callable[[], dict[str, str]],
    settings: DeliverySettings,
    progress: Progress,
) -> None:
    import httpx

    from telemetry.alerts.http_client import shared_client

    client = shared_client()
    while True:
        progress.attempts += 1
        timeout = attempt_timeout(settings, progress)
        retry_after: float | None = None
        try:
            async with asyncio.timeout(timeout):
                status, reply, retry_header = await _attempt(
                    client, url, body, headers(), httpx.Timeout(timeout)
                )
        except (TimeoutError, httpx.TimeoutException):
            reason = f"no answer within {timeout:.3g} s"
        except httpx.TransportError as error:
            reason = f"connection failed: {_describe(error)}"
        else:
            progress.http_status = status
            if 200 <= status < 300:
                return
            reason = f"HTTP {status}" + (f": {reply}" if reply else "")
            if not is_retried(status):
                raise DeliveryFailed(f"{reason} (not retried)")
            retry_after = parse_retry_after(retry_header)
        if progress.attempts >= settings.max_attempts:
            raise DeliveryFailed(
                f"{reason} (attempt {progress.attempts} of {settings.max_attempts})"
            )
        delay = backoff_delay(settings, progress.attempts)
        if retry_after is not None:
            if retry_after > settings.retry_after_max_s:
                raise DeliveryFailed(
                    f"{reason}; Retry-After {retry_after:g} s is over the channel's "
                    f"{settings.retry_after_max_s:g} s limit"
                )
            delay = retry_after
        await wait_before_retry(progress, delay, reason)


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    io_timeout: httpx.Timeout,
) -> tuple[int, str, str | None]:
    """Status, the start of the reply's body on one line, and `Retry-After`."""
    async with client.stream(
        "POST", url, content=body, headers=headers, timeout=io_timeout
    ) as reply:
        read = bytearray()
        async for chunk in reply.aiter_bytes():
            read += chunk
            if len(read) >= _REPLY_READ:
                break
    text = " ".join(read[:REPLY_QUOTED].decode("utf-8", "replace").split())
    return reply.status_code, text, reply.headers.get("retry-after")


def _describe(error: Exception) -> str:
    detail = str(error).strip()
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
