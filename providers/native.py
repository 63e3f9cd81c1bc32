"""Pass-through: which inbound API a provider speaks itself, and what reading its answers means.

A request in an API the selected deployment speaks natively (Anthropic's Messages to an
Anthropic provider, OpenAI's Responses to OpenAI) goes upstream as the client wrote it, and the
provider's answer goes back byte for byte. The gateway still reads the answer, as the chat
completion it stands for (usage, finish reason, content): a `NativeFormat` is that reading.
"""

from __future__ import annotations

from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from providers.base import ChatResult
from providers.usage import Usage

MESSAGES: Final = "messages"
RESPONSES: Final = "responses"
OPENAI_HOST: Final = "api.openai.com"


def native_api(provider_type: str, base_url: str, passthrough: bool | None) -> str | None:
    """The inbound API a provider answers natively, or None.

    Anthropic providers speak the Messages API. OpenAI-type providers speak the Responses API
    when they are OpenAI itself; other OpenAI-compatible servers mostly do not, so they need
    `passthrough: true` in their config. `passthrough: false` turns it off for any provider.
    """
    if passthrough is False:
        return None
    if provider_type == "anthropic":
        return MESSAGES
    if provider_type == "openai" and (passthrough or urlsplit(base_url).hostname == OPENAI_HOST):
        return RESPONSES
    return None


class NativeStreamReader(Protocol):
    """Reads a native stream one `data:` payload at a time, as chat-completion chunks."""

    @property
    def finished(self) -> bool:
        """The stream's last event arrived."""
        ...

    @property
    def final(self) -> dict[str, Any] | None:
        """The whole answer object the stream ended with, when its API sends one."""
        ...

    def feed(self, data: bytes) -> list[bytes]:
        """The chat chunk events (`data: {...}`) this event stands for; an error event raises
        UpstreamFailure."""
        ...

    def reported_usage(self) -> Usage:
        """The usage reported so far (for a stream cut short)."""
        ...


class NativeFormat(Protocol):
    api: str

    def upstream_body(self, payload: dict[str, Any], provider_model: str) -> bytes:
        """The client's body for the provider: its model replaced, nothing else changed."""
        ...

    def forwarded_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """The client's request headers that belong to the API itself (betas, say)."""
        ...

    def read_whole(self, raw: bytes, public_model: str) -> ChatResult:
        """A whole native answer as the chat completion it stands for; `body` is that chat
        completion (for output guardrails and the cache), never what the client gets."""
        ...

    def stream_reader(self, public_model: str) -> NativeStreamReader: ...
