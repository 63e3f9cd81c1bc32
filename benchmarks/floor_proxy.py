"""The `floor` target: the least a Python proxy on Steerway's stack does for a request.

An ASGI app that forwards each POST to the mock provider through Steerway's own upstream client
(`providers.http_client`) and hands the answer back, whole or piece by piece as it arrives,
served by uvicorn with httptools and uvloop as `steerway serve` serves. No authentication,
rules, limits, records or metrics. Its overhead over `direct` is what the machine, the server
and the client cost; Steerway's overhead over the floor's is the gateway's own work.

`/plain/...` goes to `FLOOR_PLAIN_UPSTREAM`, `/stream/...` to `FLOOR_STREAM_UPSTREAM` (base URLs
ending in `/v1`); the rest of the path follows. `GET /readyz` answers 200.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from providers.http_client import ConnectionPool, RequestHeaders, Timeouts, endpoint

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_UPSTREAMS = {
    "/plain/": os.environ.get("FLOOR_PLAIN_UPSTREAM", ""),
    "/stream/": os.environ.get("FLOOR_STREAM_UPSTREAM", ""),
}
_HEADERS = RequestHeaders({"Content-Type": "application/json", "Authorization": "Bearer floor"})
_TIMEOUTS = Timeouts(total=60.0, connect=5.0, read=60.0)
_pool = ConnectionPool()


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/readyz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ready"})
        return
    upstream = _upstream_url(scope["path"])
    if upstream is None or scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = await _read_body(receive)
    response = await _pool.post(endpoint(upstream), body, _HEADERS, _TIMEOUTS)
    content_type = next(
        (value for name, value in response.raw_headers if name.lower() == b"content-type"),
        b"application/json",
    )
    if content_type.startswith(b"text/event-stream"):
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", content_type)],
            }
        )
        async for piece in response.iter_any():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        response.release()
        await send({"type": "http.response.body", "body": b""})
        return
    answer = await response.read()
    response.release()
    headers = [(b"content-type", content_type), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def _upstream_url(path: str) -> str | None:
    for prefix, base in _UPSTREAMS.items():
        if base and path.startswith(prefix):
            return base + path[len(prefix) - 1 :].removeprefix("/v1")
    return None


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
