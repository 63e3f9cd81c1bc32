"""The Anthropic adapter: OpenAI chat requests through the Messages API, answers back in OpenAI's shape.

Translation lives in `anthropic_request` (OpenAI → Anthropic) and `anthropic_response`
(Anthropic → OpenAI); this module is the transport. Anthropic has no embeddings endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any, NoReturn

import msgspec

from providers.anthropic_request import messages_request
from providers.anthropic_response import (
    StreamTranslator,
    completion_body,
    completion_message,
    decode_message,
    finish_reason,
)
from providers.base import ChatResult, EmbeddingResult, ProviderStream
from providers.errors import UpstreamFailure
from providers.http_client import Timeouts, UpstreamResponse, endpoint
from providers.openai import HTTPAdapter
from providers.openai_format import SSESplitter, event_data
from providers.upstream import UpstreamClient
from providers.usage import UNKNOWN_USAGE

DEFAULT_VERSION = "2023-06-01"

_encode = msgspec.json.Encoder().encode


class AnthropicAdapter(HTTPAdapter):
    type = "anthropic"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        client: UpstreamClient,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 5.0,
        first_byte_timeout: float = 60.0,
        total_timeout: float = 600.0,
        anthropic_version: str = DEFAULT_VERSION,
        forward_fields: Collection[str] = (),
    ) -> None:
        """`base_url` is the API root with its version, like `https://api.anthropic.com/v1`.

        `forward_fields` names request fields passed through untranslated, for Anthropic-only
        options such as `top_k` or the mock provider's `mock` control; all other fields without
        an Anthropic meaning are dropped, since Anthropic rejects unknown fields.
        """
        super().__init__(
            name,
            client=client,
            api_key=api_key,
            headers=headers or {},
            base_url=base_url,
            connect_timeout=connect_timeout,
            first_byte_timeout=first_byte_timeout,
            total_timeout=total_timeout,
        )
        self._configured_headers.setdefault("anthropic-version", anthropic_version)
        if api_key:
            self._configured_headers["x-api-key"] = api_key
        self._set_headers()
        self._url = endpoint(base_url.rstrip("/") + "/messages")
        self.native_url = self._url
        self._forward_fields = tuple(forward_fields)

    def url(self, operation: str) -> str:
        if operation != "chat":
            self._no_embeddings()
        return str(self._url)

    def encode_chat(self, payload: dict[str, Any], provider_model: str, *, stream: bool) -> bytes:
        """The Messages API body; raises a 400 `UpstreamFailure` for untranslatable requests."""
        body = messages_request(
            payload, provider_model, stream=stream, forward_fields=self._forward_fields
        )
        return _encode(body)

    def encode_embeddings(self, payload: dict[str, Any], provider_model: str) -> bytes:
        self._no_embeddings()

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
        if operation != "chat":
            self._no_embeddings()
        return await self.post(self._url, body, self._headers, traceparent, timeouts)

    def parse_chat(self, raw: bytes, public_model: str) -> ChatResult:
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

    def parse_embeddings(
        self, raw: bytes, public_model: str, *, encoding_format: str | None = None
    ) -> EmbeddingResult:
        self._no_embeddings()

    def stream_events(self, response: UpstreamResponse, public_model: str) -> ProviderStream:
        translator = StreamTranslator(public_model)
        return ProviderStream(
            self._events(response, translator), lambda: translator.usage.normalise()
        )

    async def _events(
        self, response: UpstreamResponse, translator: StreamTranslator
    ) -> AsyncIterator[list[bytes]]:
        splitter = SSESplitter()
        try:
            async for piece in self.pieces(response):
                events, failure = self._translate(translator, splitter.feed(piece))
                if events:
                    yield events
                if failure is not None:
                    raise failure
            events, failure = self._translate(translator, splitter.close())
            if events:
                yield events
            if failure is not None:
                raise failure
        finally:
            response.release()
        if not translator.finished:
            raise UpstreamFailure("disconnected", "the provider's stream ended before message_stop")

    def _translate(
        self, translator: StreamTranslator, events: list[bytes]
    ) -> tuple[list[bytes], UpstreamFailure | None]:
        """The chunks of these events, and the failure one of them reported (after the chunks
        that came before it)."""
        out: list[bytes] = []
        for event in events:
            data = event_data(event)
            if data is None:
                continue
            try:
                out += translator.feed(data)
            except UpstreamFailure as failure:
                return out, self.scrubbed(failure)
        return out, None

    def _no_embeddings(self) -> NoReturn:
        raise UpstreamFailure(
            "http",
            f"{self.name}: Anthropic does not offer embeddings",
            status=400,
            error_type="invalid_request_error",
        )
