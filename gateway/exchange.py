"""One request's state as it moves through the pipeline's stages, and what every stage shares
about the ASGI connection it came on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from telemetry.ids import uuid7_hex
from telemetry.trace import RequestTrace

if TYPE_CHECKING:
    from gateway.guardrails.engine import InputOutcome, Selection
    from gateway.guardrails.model import CheckContext, Verdict
    from gateway.inbound.api import InboundSend
    from gateway.inbound.passthrough import NativeRequest
    from gateway.keys.store import KeyInfo
    from gateway.limits.admission import Admitted
    from gateway.upstream.routing import Route
    from rules.engine import Evaluation

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before the gateway could answer."""


class Exchange:
    """The state of one request as it moves through the pipeline."""

    __slots__ = (
        "admitted",
        "attempts",
        "cache_key",
        "cache_status",
        "cache_ttl",
        "call",
        "end_user",
        "error_message",
        "error_type",
        "fallbacks",
        "features",
        "guard_context",
        "guard_input",
        "guard_pending",
        "guard_verdicts",
        "guarded",
        "headers",
        "http_status",
        "inbound",
        "key",
        "metadata",
        "method",
        "native",
        "operation",
        "overhead_ms",
        "payload",
        "provider",
        "provider_model",
        "rate_headers",
        "request_id",
        "requested_model",
        "responded_at",
        "response_started",
        "route",
        "routed_by",
        "rules",
        "status",
        "steered",
        "steering",
        "stream",
        "tags",
        "trace",
        "upstream_seconds",
    )

    def __init__(self, route: str, headers: dict[str, str], method: str = "POST") -> None:
        self.route = route
        self.method = method[:10]  # the width of traces.method
        self.headers = headers
        self.trace = RequestTrace(headers.get("traceparent"))
        self.request_id = _request_id(headers.get("x-request-id"))
        self.key: KeyInfo | None = None
        self.operation = "chat"
        """The API the client called, as recorded and as rules' `operation` reads it."""
        self.native: NativeRequest | None = None
        """An inbound request that may pass through untranslated (`gateway.inbound.passthrough`)."""
        self.attempts = 0
        self.requested_model: str | None = None
        self.provider: str | None = None
        self.provider_model: str | None = None
        self.stream = False
        self.end_user: str | None = None
        self.status = "ok"
        self.http_status = 200
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.upstream_seconds = 0.0
        self.overhead_ms: float | None = None
        self.response_started = False
        self.responded_at = 0.0
        self.tags: list[str] = []
        self.metadata: dict[str, Any] = {}
        self.features: dict[str, Any] = {}
        self.rules: list[str] = []
        self.cache_status: str | None = None
        self.cache_key: str | None = None
        """Set when the answer is to be stored in the cache (with `cache_ttl`)."""
        self.cache_ttl = 0
        self.admitted: Admitted | None = None
        self.rate_headers: dict[str, str] | None = None
        self.steering: Evaluation | None = None
        self.routed_by: str | None = None
        self.guarded: Selection | None = None
        self.guard_input: InputOutcome | None = None
        self.guard_context: CheckContext | None = None
        self.guard_verdicts: list[Verdict] = []
        self.guard_pending: tuple[str, ...] = ()
        """Output guardrails of a stream that are still checking when the headers go out."""
        self.call = "chat"
        """What the pipeline asks the provider for: `chat` or `embeddings` (an inbound API's
        request is a chat call)."""
        self.inbound: InboundSend | None = None
        """The inbound API the request came in (None: OpenAI's own shapes)."""
        self.payload: dict[str, Any] = {}
        """The request body as the provider is asked with it (rules and guardrails change it)."""
        self.steered: Route | None = None
        """The model the request goes to, once steered."""
        self.fallbacks: tuple[str, ...] | None = None
        """The fallback models a steering rule named (None: the route's own)."""

    def base_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", self.request_id.encode()),
            (b"x-steerway-trace-id", self.trace.trace_id.encode()),
        ]


class DisconnectWatch:
    """Cancels the running task if the client disconnects, until `close()`.

    ASGI servers report a vanished client only through `receive()`; without watching it, a
    provider call would run (and be paid for) to the end for nobody.
    """

    __slots__ = ("_closed", "_task", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self._closed = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        self._watcher.add_done_callback(self._on_done)

    def _on_done(self, watcher: asyncio.Future[None]) -> None:
        if not watcher.cancelled() and not self._closed:
            self.gone = True
            self._task.cancel()

    def absorb(self) -> None:
        """Called in `except CancelledError`: re-raises unless the cancel was ours."""
        if not self.take_cancel():
            raise

    def take_cancel(self) -> bool:
        """Whether the task's cancel was this watch's (the client left); if so it is taken
        back, and the task goes on."""
        if not self.gone:
            return False
        self._task.uncancel()
        return True

    def close(self) -> None:
        self._closed = True
        self._watcher.remove_done_callback(self._on_done)
        self._watcher.cancel()


def decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}


def _request_id(given: str | None) -> str:
    if given and len(given) <= 128 and given.isprintable() and given.isascii():
        return given
    return uuid7_hex()


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
