"""What leaves the proxy for the client: the response's status line and headers (the gateway's
own, the provider's, rules, cache, guardrails, rate limits), a whole body, or an error."""

from __future__ import annotations

import time

from gateway.errors import GatewayError
from gateway.exchange import Exchange, Send
from gateway.guardrails import engine as guards

JSON = b"application/json"
SSE = b"text/event-stream"


async def start(
    exchange: Exchange,
    send: Send,
    status: int,
    content_type: bytes,
    *,
    content_length: int | None = None,
    provider_headers: bool = False,
    extra: dict[str, str] | None = None,
) -> None:
    headers = exchange.base_headers()
    headers.append((b"content-type", content_type))
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    if content_type == SSE:
        headers.append((b"cache-control", b"no-cache"))
        headers.append((b"x-accel-buffering", b"no"))
    if provider_headers and exchange.provider is not None:
        headers.append((b"x-steerway-provider", exchange.provider.encode()))
        headers.append((b"x-steerway-model", (exchange.provider_model or "").encode()))
        headers.append((b"x-steerway-attempts", str(exchange.attempts).encode()))
    if status < 400:
        elapsed = time.perf_counter() - exchange.trace.start
        overhead = max(elapsed - exchange.upstream_seconds, 0.0) * 1000.0
        exchange.overhead_ms = overhead
        headers.append((b"x-steerway-overhead-ms", f"{overhead:.3f}".encode()))
    if exchange.rules:
        headers.append((b"x-steerway-rules", ",".join(exchange.rules).encode()))
    if exchange.cache_status is not None:
        headers.append((b"x-steerway-cache", exchange.cache_status.encode()))
    if exchange.guard_verdicts or exchange.guard_pending:
        value = guards.header_value(exchange.guard_verdicts, exchange.guard_pending)
        headers.append((guards.HEADER.encode(), value.encode()))
    if exchange.rate_headers:
        extra = {**exchange.rate_headers, **(extra or {})}
    if extra:
        headers.extend((name.encode(), value.encode()) for name, value in extra.items())
    exchange.response_started = True
    exchange.responded_at = time.perf_counter()
    exchange.http_status = status
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def respond(
    exchange: Exchange,
    send: Send,
    status: int,
    body: bytes,
    *,
    provider_headers: bool = False,
    extra: dict[str, str] | None = None,
) -> None:
    await start(
        exchange,
        send,
        status,
        JSON,
        content_length=len(body),
        provider_headers=provider_headers,
        extra=extra,
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def fail(exchange: Exchange, send: Send, error: GatewayError) -> None:
    exchange.status = "error"
    exchange.error_type = error.code or error.type
    exchange.error_message = error.message
    if exchange.response_started:
        # The status line already went out as 200; the trace keeps what the client got.
        event = b"data: " + error.body() + b"\n\n"
        await send({"type": "http.response.body", "body": event, "more_body": False})
        return
    await respond(
        exchange, send, error.status, error.body(), provider_headers=True, extra=error.headers
    )
