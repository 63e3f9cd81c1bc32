"""One OTLP/HTTP export request: protobuf body, the configured headers, and what the answer
means (success, worth retrying, or refused), shared by the span and the metric exporters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import httpx

from telemetry.alerts.attempts import parse_retry_after

USER_AGENT: Final = "Steerway-OTLP-Exporter/1"
RETRIED_STATUSES: Final = {
    429: "throttled",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}


class ExportFailure(Exception):
    """An attempt that failed: `reason` is a metric label; `retry` whether another attempt may
    succeed, after `delay` seconds when the collector said (`Retry-After`)."""

    def __init__(self, reason: str, *, retry: bool, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.delay = delay
        self.status: int | None = None


def request_headers(configured: Mapping[str, str], *, gzip: bool) -> dict[str, str]:
    headers = {
        **configured,
        "content-type": "application/x-protobuf",
        "user-agent": USER_AGENT,
    }
    if gzip:
        headers["content-encoding"] = "gzip"
    return headers


def new_client(timeout: float) -> httpx.AsyncClient:
    """Redirects are not followed: the headers may hold a credential meant for this URL only."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
    )


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> bytes:
    """Send one export request; the answer's body on a success, else `ExportFailure`."""
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise ExportFailure("timeout", retry=True) from None
    except httpx.TransportError:
        raise ExportFailure("connection", retry=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return response.content
    if status in RETRIED_STATUSES:
        delay = parse_retry_after(response.headers.get("retry-after"))
        failure = ExportFailure(RETRIED_STATUSES[status], retry=True, delay=delay)
    else:
        failure = ExportFailure("refused", retry=False)
    failure.status = status
    raise failure


def describe(failure: ExportFailure) -> str:
    return f"status {failure.status}" if failure.reason == "refused" else failure.reason


def host_of(url: str) -> str:
    """The URL's scheme, host and port only: its path or user info could hold a credential."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"
