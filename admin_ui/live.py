"""`GET /admin/api/live`: requests as they are recorded, as Server-Sent Events.

The stream starts with a `retry:` hint and a `hello` event, then sends:

- `trace` (id: the trace id): one request's summary (`telemetry.live_summary.LiveTrace`, with
  `key_name` filled in);
- `stats`, about once a second while its figures change: requests per second, error rate and
  p95 duration of the matching requests over the last minute (since the viewer connected, for
  its first minute), and how many of them were not sent because of the row rate;
- a `: keep-alive` comment after 15 s without anything else;
- `dropped` when the viewer fell behind and the gateway let go of it, and `end` when the stream
  ends by itself (`limit` or `seconds` reached, or the server stopping): the last event either way.

An admin of one workspace receives that workspace's requests only: the hub filters each trace
for each viewer before anything is queued for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
from litestar import Controller, Request, get
from litestar.response import Stream

from admin_ui.auth import workspace_scope
from admin_ui.live_names import KeyNames
from admin_ui.live_query import QUERY, LiveQuery, read_live_query
from admin_ui.openapi import described
from admin_ui.state import gateway_of, starting
from admin_ui.workspace_operations import key_store_of, visible_workspace
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.entry.server_connections import limit_send_buffer
from gateway.errors import GatewayError, invalid_request
from telemetry.live import LiveHub, TooManyViewers
from telemetry.live_filter import LiveFilter
from telemetry.live_summary import LiveTrace

AnyRequest = Request[Any, Any, Any]

RETRY_MS: Final = 3000
HEARTBEAT_SECONDS: Final = 15.0
STATS_SECONDS: Final = 1.0
SEND_BUFFER_BYTES: Final = 64 * 1024
"""The kernel's send buffer for a viewer's connection: a viewer that stops reading falls behind
after about this much (and its client's receive buffer), not after megabytes."""
EVENT_STREAM: Final = "text/event-stream"
_NAMES_STATE: Final = "steerway_live_key_names"

EVENTS_DESCRIPTION: Final = (
    "Server-Sent Events: `hello` (worker, whether other workers' requests are included: `shared`, "
    "and whether that is all of them: `complete`, the filters), `trace` (id: the trace id; one request's summary), `stats` (requests per second, "
    "error rate and p95 duration over the last minute), `: keep-alive` comments every 15 s, "
    "and last `dropped` (the viewer fell behind: reconnect) or `end` (`reason`: limit, seconds, "
    "shutdown)."
)


def too_many_viewers(hub: LiveHub) -> GatewayError:
    return GatewayError(
        503,
        f"The live feed already has {hub.max_viewers} viewers on this worker; retry shortly.",
        type="server_error",
        code="too_many_viewers",
        headers={"Retry-After": "5"},
    )


class LiveController(Controller):
    path = "/live"

    @get(
        "/",
        media_type=EVENT_STREAM,
        operation_class=described(
            query=QUERY,
            success=(EVENT_STREAM, EVENTS_DESCRIPTION),
            more_errors={"503": "The worker has as many live viewers as it takes; retry shortly."},
        ),
    )
    async def live(self, request: AnyRequest) -> Stream:
        """Requests as they are recorded, as Server-Sent Events."""
        hub = gateway_of(request).live
        if hub is None:
            raise starting()
        query = read_live_query(request)
        live_filter = await _live_filter(request, query)
        if hub.viewers >= hub.max_viewers:
            raise too_many_viewers(hub)
        limit_send_buffer(request.scope.get("client"), SEND_BUFFER_BYTES)
        hello = {
            "worker": hub.worker,
            "shared": hub.shared,
            "complete": hub.complete,
            "workspace": workspace_scope(request),
            "filters": query.echo(),
            "viewer_queue": hub.viewer_queue,
            "rows_per_second": hub.rows_per_second,
        }
        return Stream(
            _events(hub, live_filter, query, hello, _key_names(request)),
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


async def _live_filter(request: AnyRequest, query: LiveQuery) -> LiveFilter:
    workspace = workspace_scope(request)
    if query.workspace is not None:
        workspace = (await visible_workspace(request, query.workspace)).workspace_id
    key_ids = None
    if query.key is not None:
        keys = await key_store_of(request).list(workspace_id=workspace, include_revoked=True)
        key_ids = frozenset(key.key_id for key in keys if query.key in (key.key_id, key.name))
        if query.key in (MASTER_KEY_INFO.key_id, MASTER_KEY_INFO.name) and (
            workspace_scope(request) is None
        ):
            key_ids |= {MASTER_KEY_INFO.key_id}
        if not key_ids:
            raise invalid_request(
                f"No key with id or name '{query.key[:100]}'.", param="key", code="key_not_found"
            )
    texts = query.texts
    return LiveFilter(
        workspace_id=workspace,
        key_ids=key_ids,
        model=texts.get("model"),
        provider=texts.get("provider"),
        end_user=texts.get("end_user"),
        route=texts.get("route"),
        error_type=texts.get("error_type"),
        rule=texts.get("rule"),
        guardrail=texts.get("guardrail"),
        statuses=query.statuses,
        http_status=query.http_status,
        min_duration_ms=query.min_duration_ms,
        cache_hit=query.booleans.get("cache_hit"),
        stream=query.booleans.get("stream"),
    )


def _key_names(request: AnyRequest) -> KeyNames:
    state = request.app.state
    names = state.get(_NAMES_STATE)
    if names is None:
        names = KeyNames(gateway_of(request).engine)
        state[_NAMES_STATE] = names
    assert isinstance(names, KeyNames)
    return names


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


def _trace_event(trace: LiveTrace) -> bytes:
    return (
        b"id: "
        + trace.trace_id.encode()
        + b"\nevent: trace\ndata: "
        + msgspec.json.encode(trace)
        + b"\n\n"
    )


async def _events(
    hub: LiveHub,
    live_filter: LiveFilter,
    query: LiveQuery,
    hello: dict[str, Any],
    names: KeyNames,
) -> AsyncIterator[bytes]:
    """The stream of one viewer; it holds a place in the hub only while this runs."""
    try:
        viewer = hub.attach(live_filter)
    except TooManyViewers:
        yield _event("end", {"reason": "too_many_viewers"})
        return
    try:
        yield f"retry: {RETRY_MS}\n\n".encode() + _event("hello", hello)
        started = time.monotonic()
        ends_at = started + query.seconds if query.seconds is not None else math.inf
        limit = query.limit if query.limit is not None else math.inf
        sent = 0
        last_write = started
        next_stats = started + STATS_SECONDS
        last_stats: dict[str, Any] | None = None
        while True:
            now = time.monotonic()
            if now >= ends_at:
                yield _event("end", {"reason": "seconds"})
                return
            batch = await viewer.next_batch(max(0.0, min(next_stats, ends_at) - now))
            if viewer.ended == "dropped":
                yield _event(
                    "dropped",
                    {
                        "reason": "fell_behind",
                        "message": f"More than {viewer.capacity} traces waited to be sent to "
                        "this viewer; reconnect to continue.",
                    },
                )
                return
            if viewer.ended is not None:
                yield _event("end", {"reason": viewer.ended})
                return
            chunks = []
            if batch:
                known = await names.names(trace.api_key_id for trace in batch)
                for trace in batch[: int(min(len(batch), limit - sent))]:
                    if trace.api_key_id is not None:
                        trace.key_name = known.get(trace.api_key_id)
                    chunks.append(_trace_event(trace))
                    sent += 1
            now = time.monotonic()
            if now >= next_stats:
                stats = viewer.stats.snapshot(now)
                if stats != last_stats:
                    chunks.append(_event("stats", stats))
                    last_stats = stats
                next_stats = now + STATS_SECONDS
            if not chunks and now - last_write >= HEARTBEAT_SECONDS:
                chunks.append(b": keep-alive\n\n")
            if chunks:
                yield b"".join(chunks)
                last_write = now
            if sent >= limit:
                yield _event("end", {"reason": "limit"})
                return
    finally:
        hub.detach(viewer)
