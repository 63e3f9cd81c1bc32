"""The OpenAI adapter: OpenAI itself and every OpenAI-compatible server (vLLM, Ollama, Groq ...).

The wire format is already the gateway's, so requests pass through with only the model name
rewritten, and answers are forwarded byte for byte; only usage and finish reasons are read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDict
from yarl import URL

from providers.errors import UpstreamFailure, parse_error_body, scrub_secrets
from providers.upstream import UpstreamClient
from providers.usage import UNKNOWN_USAGE, OpenAIUsage, Usage

OPERATION_PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}


class _Choice(msgspec.Struct):
    finish_reason: str | None = None
    message: Any = None


class _ChatResponse(msgspec.Struct):
    choices: list[_Choice] = []
    usage: OpenAIUsage | None = None
    model: str | None = None


class _EmbeddingResponse(msgspec.Struct):
    usage: OpenAIUsage | None = None
    model: str | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[Any] | None = None


class _ChunkChoice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_ChunkChoice] = []
    usage: OpenAIUsage | None = None


class ChatResult(msgspec.Struct):
    usage: Usage
    finish_reasons: list[str | None]
    messages: list[Any]
    response_model: str | None


class StreamChunk(msgspec.Struct):
    """What the gateway reads from one streamed event."""

    contents: list[tuple[int, str]]  # (choice index, text delta)
    has_output: bool  # carries content or a tool-call delta
    finish_reason: str | None
    usage: Usage | None
    usage_only: bool  # a final `choices: []` usage chunk


class OpenAIAdapter:
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
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
        # Built once: aiohttp takes a ready CIMultiDict and a parsed URL without converting them.
        self._headers = CIMultiDict({"Content-Type": "application/json", **(headers or {})})
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout, sock_connect=connect_timeout, sock_read=first_byte_timeout
        )
        self.first_byte_timeout = first_byte_timeout
        self._urls = {op: URL(self._base_url + path) for op, path in OPERATION_PATHS.items()}

    def url(self, operation: str) -> str:
        return str(self._urls[operation])

    def encode_request(
        self, payload: dict[str, Any], provider_model: str, *, add_usage: bool = False
    ) -> bytes:
        """The upstream body: the client's fields untouched except the model (and usage for streams)."""
        body = dict(payload)
        body["model"] = provider_model
        if add_usage:
            options = body.get("stream_options")
            body["stream_options"] = (
                {**options, "include_usage": True}
                if isinstance(options, dict)
                else {"include_usage": True}
            )
        return msgspec.json.encode(body)

    async def send(
        self, operation: str, body: bytes, *, traceparent: str | None = None
    ) -> aiohttp.ClientResponse:
        """POST to the provider; raises UpstreamFailure for transport errors and error statuses."""
        headers = self._headers
        if traceparent:
            headers = headers.copy()
            headers["traceparent"] = traceparent
        try:
            response = await self._client.session.post(
                self._urls[operation], data=body, headers=headers, timeout=self._timeout
            )
        except TimeoutError as error:
            raise UpstreamFailure("timeout", "no response in time") from error
        except aiohttp.ClientConnectorError as error:
            raise UpstreamFailure(
                "connect", f"cannot connect ({error.os_error.strerror})"
            ) from error
        except aiohttp.ClientError as error:
            raise UpstreamFailure("connect", self._describe(error)) from error
        if response.status >= 400:
            await self._raise_for_status(response)
        return response

    async def read_body(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except TimeoutError as error:
            raise UpstreamFailure("timeout", "the response body did not arrive in time") from error
        except aiohttp.ClientError as error:
            raise UpstreamFailure("disconnected", self._describe(error)) from error
        finally:
            response.release()

    async def stream_pieces(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The raw bytes of a streamed answer as they arrive; transport failures become UpstreamFailure."""
        try:
            async for piece in response.content.iter_any():
                yield piece
        except TimeoutError as error:
            raise UpstreamFailure("timeout", "the stream stalled") from error
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamFailure("disconnected", "the provider closed the stream early") from error

    def parse_chat(self, raw: bytes) -> ChatResult:
        try:
            decoded = msgspec.json.decode(raw, type=_ChatResponse)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UpstreamFailure(
                "malformed", "the provider's answer is not a chat completion"
            ) from error
        return ChatResult(
            usage=decoded.usage.normalise() if decoded.usage else UNKNOWN_USAGE,
            finish_reasons=[choice.finish_reason for choice in decoded.choices],
            messages=[choice.message for choice in decoded.choices],
            response_model=decoded.model,
        )

    def parse_embeddings(self, raw: bytes) -> Usage:
        try:
            decoded = msgspec.json.decode(raw, type=_EmbeddingResponse)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UpstreamFailure(
                "malformed", "the provider's answer is not an embedding list"
            ) from error
        return decoded.usage.normalise() if decoded.usage else UNKNOWN_USAGE

    def parse_stream_data(self, data: bytes) -> StreamChunk:
        """Read one `data:` payload of a chat stream (not `[DONE]`)."""
        try:
            chunk = msgspec.json.decode(data, type=_Chunk)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UpstreamFailure(
                "malformed", "the provider streamed an event that is not JSON"
            ) from error
        contents: list[tuple[int, str]] = []
        has_output = False
        finish = None
        for choice in chunk.choices:
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    contents.append((choice.index, delta.content))
                    has_output = True
                elif delta.tool_calls:
                    has_output = True
            if choice.finish_reason is not None:
                finish = choice.finish_reason
        usage = chunk.usage.normalise() if chunk.usage else None
        return StreamChunk(
            contents, has_output, finish, usage, usage_only=not chunk.choices and usage is not None
        )

    async def _raise_for_status(self, response: aiohttp.ClientResponse) -> None:
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError):
            raw = b""
        finally:
            response.release()
        message, error_type, code, param = parse_error_body(raw)
        raise UpstreamFailure(
            "http",
            scrub_secrets(message, self._api_key),
            status=response.status,
            error_type=error_type,
            error_code=code,
            param=param,
            retry_after=response.headers.get("retry-after"),
            retry_after_ms=response.headers.get("retry-after-ms"),
        )

    def _describe(self, error: BaseException) -> str:
        return scrub_secrets(f"{type(error).__name__}: {error}", self._api_key)
