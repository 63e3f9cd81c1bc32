"""The Gemini adapter: Google's Generative Language REST API behind OpenAI's wire format.

Requests are translated by `providers.gemini_request`, answers by `providers.gemini_response`.
The API key travels in the `x-goog-api-key` header, never in the URL, so it cannot reach a
log line that prints URLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from providers import gemini_response
from providers.base import ChatResult, EmbeddingResult, ProviderStream
from providers.errors import UpstreamFailure, parse_error_body
from providers.gemini_request import chat_body, embeddings_body, model_path
from providers.http_client import Endpoint, Timeouts, UpstreamResponse, endpoint
from providers.openai import HTTPAdapter
from providers.openai_format import SSESplitter, event_data
from providers.upstream import UpstreamClient
from providers.usage import UNKNOWN_USAGE

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"

_encode = msgspec.json.Encoder().encode


class _GeminiError(msgspec.Struct):
    message: str | None = None
    status: str | None = None
    details: list[Any] = []

    def retry_delay(self) -> str | None:
        """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`), if any."""
        for detail in self.details:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    seconds = float(delay[:-1])
                except ValueError:
                    continue
                return f"{seconds:g}"
        return None


class _GeminiErrorEnvelope(msgspec.Struct):
    error: _GeminiError


class GeminiAdapter(HTTPAdapter):
    type = "gemini"

    def __init__(
        self,
        name: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None,
        client: UpstreamClient,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 5.0,
        first_byte_timeout: float = 60.0,
        total_timeout: float = 600.0,
    ) -> None:
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
        if api_key:
            self._set_headers(**{"x-goog-api-key": api_key})
        self._base = base_url.rstrip("/")
        self._urls: dict[tuple[str, str], Endpoint] = {}

    def url(self, operation: str, provider_model: str, *, stream: bool = False) -> Endpoint:
        """The endpoint of one call, built once per (model, method)."""
        if operation == "embeddings":
            method = "batchEmbedContents"
        elif operation == "chat":
            method = "streamGenerateContent" if stream else "generateContent"
        else:
            raise ValueError(f"unknown operation {operation!r}")
        key = (provider_model, method)
        url = self._urls.get(key)
        if url is None:
            url = endpoint(
                f"{self._base}/{model_path(provider_model)}:{method}{'?alt=sse' if stream else ''}"
            )
            self._urls[key] = url
        return url

    def encode_chat(self, payload: dict[str, Any], provider_model: str, *, stream: bool) -> bytes:
        return _encode(chat_body(payload))

    def encode_embeddings(self, payload: dict[str, Any], provider_model: str) -> bytes:
        return _encode(embeddings_body(payload, provider_model))

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
        url = self.url(operation, provider_model, stream=stream)
        return await self.post(url, body, self._headers, traceparent, timeouts)

    def parse_chat(self, raw: bytes, public_model: str) -> ChatResult:
        return gemini_response.parse_chat(raw, public_model)

    def parse_embeddings(
        self, raw: bytes, public_model: str, *, encoding_format: str | None = None
    ) -> EmbeddingResult:
        body = gemini_response.parse_embeddings(raw, public_model, encoding_format or "float")
        return EmbeddingResult(body=body, usage=UNKNOWN_USAGE)

    def stream_events(self, response: UpstreamResponse, public_model: str) -> ProviderStream:
        translator = gemini_response.StreamTranslator(public_model)
        return ProviderStream(self._events(response, translator), lambda: translator.usage)

    async def _events(
        self, response: UpstreamResponse, translator: gemini_response.StreamTranslator
    ) -> AsyncIterator[list[bytes]]:
        splitter = SSESplitter()
        try:
            async for piece in self.pieces(response):
                events = []
                for event in splitter.feed(piece):
                    data = event_data(event)
                    if data:
                        events += translator.feed(data)
                if events:
                    yield events
            events = []
            for event in splitter.close():
                data = event_data(event)
                if data:
                    events += translator.feed(data)
        except UpstreamFailure as failure:  # an error the provider streamed, in its own words
            raise self.scrubbed(failure) from None
        yield events + translator.finish()

    async def _raise_for_status(self, response: UpstreamResponse) -> None:
        """Gemini's `{"error": {"code", "message", "status"}}`; the status names the code."""
        try:
            raw = await response.read()
        except OSError:
            raw = b""
        finally:
            response.release()
        retry_after = response.headers.get("retry-after")
        try:
            error = msgspec.json.decode(raw, type=_GeminiErrorEnvelope).error
            message, code = error.message or "no error message", error.status
            retry_after = retry_after or error.retry_delay()
        except (msgspec.DecodeError, msgspec.ValidationError):
            message, _, code, _ = parse_error_body(raw)
        raise UpstreamFailure(
            "http",
            self.scrub(message),
            status=response.status,
            error_code=code,
            retry_after=retry_after,
            retry_after_ms=response.headers.get("retry-after-ms"),
        )
