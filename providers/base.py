"""What every provider adapter offers the gateway: OpenAI's wire format in, OpenAI's out.

An adapter turns the client's OpenAI-shaped request into its provider's request, sends it over
the shared upstream client, and turns the answer back into OpenAI's shape: a chat completion,
an embedding list, or chat-completion chunks as SSE events. Failures are `UpstreamFailure`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import msgspec

from providers.http_client import Timeouts, UpstreamResponse
from providers.usage import UNKNOWN_USAGE, Usage


class ChatResult(msgspec.Struct):
    body: bytes  # an OpenAI `chat.completion` JSON document, ready for the client
    usage: Usage
    finish_reasons: list[str | None]
    messages: list[Any]
    response_model: str | None


class EmbeddingResult(msgspec.Struct):
    body: bytes  # an OpenAI embedding `list` JSON document
    usage: Usage


def _nothing_reported() -> Usage:
    return UNKNOWN_USAGE


class ProviderStream:
    """One streamed answer: its OpenAI chunk events in groups, and the usage its provider had
    reported so far. A stream cut short never reaches its usage chunk; counts some providers
    send early (Anthropic's input tokens, Gemini's running totals) keep its estimate honest."""

    __slots__ = ("_events", "_reported")

    def __init__(
        self,
        events: AsyncIterator[list[bytes]],
        reported: Callable[[], Usage] = _nothing_reported,
    ) -> None:
        self._events = events
        self._reported = reported

    def __aiter__(self) -> ProviderStream:
        return self

    async def __anext__(self) -> list[bytes]:
        return await self._events.__anext__()

    def reported_usage(self) -> Usage:
        return self._reported()


class ProviderAdapter(Protocol):
    name: str
    type: str
    native_api: str | None
    """The inbound API the provider answers itself (see `providers.native`), or None."""

    def encode_chat(self, payload: dict[str, Any], provider_model: str, *, stream: bool) -> bytes:
        """The provider's request body for an OpenAI chat request (usage always asked for)."""
        ...

    def encode_embeddings(self, payload: dict[str, Any], provider_model: str) -> bytes: ...

    async def send(
        self,
        operation: str,
        body: bytes,
        *,
        provider_model: str,
        stream: bool = False,
        traceparent: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> UpstreamResponse:
        """POST to the provider; an error status or transport error raises UpstreamFailure."""
        ...

    async def send_native(
        self,
        body: bytes,
        *,
        headers: dict[str, str],
        traceparent: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> UpstreamResponse:
        """POST a client's own body to the provider's endpoint for `native_api`."""
        ...

    async def read_body(self, response: UpstreamResponse) -> bytes: ...

    def timeout(
        self,
        *,
        connect: float | None = None,
        first_byte: float | None = None,
        total: float | None = None,
    ) -> Timeouts:
        """The provider's timeouts with the given ones replaced."""
        ...

    def parse_chat(self, raw: bytes, public_model: str) -> ChatResult: ...

    def parse_embeddings(
        self, raw: bytes, public_model: str, *, encoding_format: str | None = None
    ) -> EmbeddingResult:
        """`encoding_format` is the client's (`float` or `base64`), for providers that answer
        in another form."""
        ...

    def stream_events(self, response: UpstreamResponse, public_model: str) -> ProviderStream:
        """OpenAI chat-completion-chunk SSE events (`data: {...}` or `data: [DONE]`, no
        trailing blank line), in groups as they arrive from the provider."""
        ...
