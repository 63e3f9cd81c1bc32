"""Anthropic's Messages API passed through: the client's body goes upstream, and the answer
(whole or streamed) is read as a chat completion by the same translation the adapter uses."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from providers.anthropic_response import (
    StreamTranslator,
    completion_body,
    completion_message,
    decode_message,
    finish_reason,
)
from providers.base import ChatResult
from providers.native import MESSAGES
from providers.usage import UNKNOWN_USAGE, Usage

FORWARDED_HEADERS: Final = ("anthropic-beta",)
"""Client headers that choose API features; the version and the key stay the provider's."""

_encode = msgspec.json.Encoder().encode


class MessagesNative:
    api = MESSAGES

    def upstream_body(self, payload: dict[str, Any], provider_model: str) -> bytes:
        return _encode({**payload, "model": provider_model})

    def forwarded_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}

    def read_whole(self, raw: bytes, public_model: str) -> ChatResult:
        message = decode_message(raw)
        usage = message.usage.normalise() if message.usage is not None else UNKNOWN_USAGE
        assistant = completion_message(message)
        return ChatResult(
            body=completion_body(message, assistant, usage, public_model),
            usage=usage,
            finish_reasons=[finish_reason(message.stop_reason)],
            messages=[assistant],
            response_model=message.model,
        )

    def stream_reader(self, public_model: str) -> MessagesStreamReader:
        return MessagesStreamReader(public_model)


class MessagesStreamReader:
    __slots__ = ("_translator",)

    def __init__(self, public_model: str) -> None:
        self._translator = StreamTranslator(public_model)

    @property
    def finished(self) -> bool:
        return self._translator.finished

    @property
    def final(self) -> dict[str, Any] | None:
        return None

    def feed(self, data: bytes) -> list[bytes]:
        return self._translator.feed(data)

    def reported_usage(self) -> Usage:
        return self._translator.usage.normalise()
