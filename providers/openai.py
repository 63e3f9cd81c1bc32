"""The OpenAI adapter: OpenAI itself and every OpenAI-compatible server (vLLM, Ollama, Groq ...).

The wire format is already the gateway's, so requests pass through with only the model name
rewritten, and answers are forwarded byte for byte; only usage and finish reasons are read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from providers.base import ChatResult, EmbeddingResult, ProviderStream
from providers.errors import UpstreamFailure, connection_reason, parse_error_body
from providers.http_client import (
    Endpoint,
    RequestHeaders,
    Timeouts,
    UnsendableRequest,
    UpstreamResponse,
    endpoint,
    header_line,
)
from providers.openai_format import SSESplitter
from providers.secret_scrubber import scrubber_for
from providers.upstream import UpstreamClient
from providers.usage import UNKNOWN_USAGE, OpenAIUsage

OPERATION_PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}
RESPONSES_PATH = "/responses"


class _Choice(msgspec.Struct):
    finish_reason: str | None = None
    message: Any = None


class _ChatResponse(msgspec.Struct):
    choices: list[_Choice] = []
    usage: OpenAIUsage | None = None
    model: str | None = None


class _EmbeddingResponse(msgspec.Struct):
    usage: OpenAIUsage | None = None


class HTTPAdapter:
    """What adapters over HTTP share: the client, timeouts, headers, errors and body reading."""

    type = "http"
    native_api: str | None = None
    """The inbound API this provider answers itself (`providers.native`), set from its config."""
    native_url: Endpoint | None = None
    """Where requests in `native_api` go."""

    def __init__(
        self,
        name: str,
        *,
        client: UpstreamClient,
        api_key: str | None,
        headers: dict[str, str],
        base_url: str,
        connect_timeout: float,
        first_byte_timeout: float,
        total_timeout: float,
    ) -> None:
        self.name = name
        self._client = client
        self._api_key = api_key
        self.scrub = scrubber_for(api_key=api_key, headers=headers, base_url=base_url)
        """Applied to every message a provider's failure carries (see `secret_scrubber`)."""
        self._configured_headers = {"Content-Type": "application/json", **headers}
        self._headers = RequestHeaders(self._configured_headers)
        """Encoded once; an adapter adds its authentication with `_set_headers`."""
        self._timeout = Timeouts(
            total=total_timeout, connect=connect_timeout, read=first_byte_timeout
        )

    def _set_headers(self, **headers: str) -> None:
        """Add headers sent with every request (authentication), encoded once."""
        self._configured_headers.update(headers)
        self._headers = RequestHeaders(self._configured_headers)

    def timeout(
        self,
        *,
        connect: float | None = None,
        first_byte: float | None = None,
        total: float | None = None,
    ) -> Timeouts:
        """This provider's timeouts with some replaced (a model's own overrides)."""
        return self._timeout.replace(total=total, connect=connect, read=first_byte)

    async def post(
        self,
        url: Endpoint,
        body: bytes,
        headers: RequestHeaders,
        traceparent: str | None,
        timeouts: Timeouts | None = None,
    ) -> UpstreamResponse:
        try:
            extra = header_line("traceparent", traceparent) if traceparent else b""
            response = await self._client.post(url, body, headers, timeouts or self._timeout, extra)
        except TimeoutError as error:
            raise UpstreamFailure("timeout", "no response in time") from error
        except (OSError, UnsendableRequest) as error:
            raise UpstreamFailure(
                "connect", f"cannot connect ({connection_reason(error)})"
            ) from error
        if response.status >= 400:
            await self._raise_for_status(response)
        return response

    async def send_native(
        self,
        body: bytes,
        *,
        headers: dict[str, str],
        traceparent: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> UpstreamResponse:
        """POST a client's body to the provider's own endpoint for `native_api`, with the
        client's API headers (see `NativeFormat.forwarded_headers`) added to the provider's."""
        if self.native_url is None:
            raise UpstreamFailure("connect", f"{self.name} has no native endpoint")
        try:
            sent = self._headers.with_headers(headers) if headers else self._headers
        except UnsendableRequest as error:
            raise UpstreamFailure(
                "connect", f"cannot connect ({connection_reason(error)})"
            ) from error
        return await self.post(self.native_url, body, sent, traceparent, timeouts)

    async def read_body(self, response: UpstreamResponse) -> bytes:
        try:
            return await response.read()
        except TimeoutError as error:
            raise UpstreamFailure("timeout", "the response body did not arrive in time") from error
        except OSError as error:
            raise UpstreamFailure(
                "disconnected", f"the answer was cut short ({connection_reason(error)})"
            ) from error
        finally:
            response.release()

    async def pieces(self, response: UpstreamResponse) -> AsyncIterator[bytes]:
        """The raw bytes of a streamed answer as they arrive."""
        try:
            async for piece in response.iter_any():
                yield piece
        except TimeoutError as error:
            raise UpstreamFailure("timeout", "the stream stalled") from error
        except OSError as error:
            raise UpstreamFailure("disconnected", "the provider closed the stream early") from error

    def scrubbed(self, failure: UpstreamFailure) -> UpstreamFailure:
        """The failure with its message scrubbed (for messages the provider wrote)."""
        failure.message = self.scrub(failure.message)
        failure.args = (failure.message,)
        return failure

    async def _raise_for_status(self, response: UpstreamResponse) -> None:
        try:
            raw = await response.read()
        except OSError:
            raw = b""
        finally:
            response.release()
        message, error_type, code, param = parse_error_body(raw)
        raise UpstreamFailure(
            "http",
            self.scrub(message),
            status=response.status,
            error_type=error_type,
            error_code=code,
            param=param,
            retry_after=response.headers.get("retry-after"),
            retry_after_ms=response.headers.get("retry-after-ms"),
        )


class OpenAIAdapter(HTTPAdapter):
    type = "openai"

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
            self._set_headers(Authorization=f"Bearer {api_key}")
        base = base_url.rstrip("/")
        self._urls = {op: endpoint(base + path) for op, path in OPERATION_PATHS.items()}
        self.native_url = endpoint(base + RESPONSES_PATH)

    def url(self, operation: str) -> str:
        return str(self._urls[operation])

    def encode_chat(self, payload: dict[str, Any], provider_model: str, *, stream: bool) -> bytes:
        """The client's fields untouched but the model, and the usage chunk asked for in streams."""
        body = dict(payload)
        body["model"] = provider_model
        if stream:
            options = body.get("stream_options")
            body["stream_options"] = (
                {**options, "include_usage": True}
                if isinstance(options, dict)
                else {"include_usage": True}
            )
        return msgspec.json.encode(body)

    def encode_embeddings(self, payload: dict[str, Any], provider_model: str) -> bytes:
        body = dict(payload)
        body["model"] = provider_model
        return msgspec.json.encode(body)

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
        return await self.post(self._urls[operation], body, self._headers, traceparent, timeouts)

    def parse_chat(self, raw: bytes, public_model: str) -> ChatResult:
        try:
            decoded = msgspec.json.decode(raw, type=_ChatResponse)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UpstreamFailure(
                "malformed", "the provider's answer is not a chat completion"
            ) from error
        return ChatResult(
            body=raw,
            usage=decoded.usage.normalise() if decoded.usage else UNKNOWN_USAGE,
            finish_reasons=[choice.finish_reason for choice in decoded.choices],
            messages=[choice.message for choice in decoded.choices],
            response_model=decoded.model,
        )

    def parse_embeddings(
        self, raw: bytes, public_model: str, *, encoding_format: str | None = None
    ) -> EmbeddingResult:
        try:
            decoded = msgspec.json.decode(raw, type=_EmbeddingResponse)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UpstreamFailure(
                "malformed", "the provider's answer is not an embedding list"
            ) from error
        return EmbeddingResult(
            body=raw, usage=decoded.usage.normalise() if decoded.usage else UNKNOWN_USAGE
        )

    def stream_events(self, response: UpstreamResponse, public_model: str) -> ProviderStream:
        """OpenAI reports usage in its last chunk only, where the gateway reads it."""
        return ProviderStream(self._events(response))

    async def _events(self, response: UpstreamResponse) -> AsyncIterator[list[bytes]]:
        splitter = SSESplitter()
        async for piece in self.pieces(response):
            events = splitter.feed(piece)
            if events:
                yield events
        rest = splitter.close()
        if rest:
            yield rest
