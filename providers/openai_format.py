"""Reading OpenAI-format chat chunks: what the gateway needs from each streamed event."""

from __future__ import annotations

from typing import Any

import msgspec

from providers.errors import UpstreamFailure
from providers.usage import OpenAIUsage, Usage


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


class StreamChunk(msgspec.Struct):
    """What the gateway reads from one streamed event."""

    contents: list[tuple[int, str]]  # (choice index, text delta)
    has_output: bool  # carries content or a tool-call delta
    output_chars: int  # characters of content, tool names and arguments, for estimating usage
    finish_reason: str | None
    usage: Usage | None
    usage_only: bool  # a final `choices: []` usage chunk


def read_chunk(data: bytes) -> StreamChunk:
    """Read one `data:` payload of a chat stream (not `[DONE]`)."""
    try:
        chunk = msgspec.json.decode(data, type=_Chunk)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise UpstreamFailure(
            "malformed", "the provider streamed an event that is not a chat chunk"
        ) from error
    contents: list[tuple[int, str]] = []
    has_output = False
    output_chars = 0
    finish = None
    for choice in chunk.choices:
        delta = choice.delta
        if delta is not None:
            if delta.content:
                contents.append((choice.index, delta.content))
                has_output = True
                output_chars += len(delta.content)
            if delta.tool_calls:
                has_output = True
                output_chars += _tool_call_chars(delta.tool_calls)
        if choice.finish_reason is not None:
            finish = choice.finish_reason
    usage = chunk.usage.normalise() if chunk.usage else None
    return StreamChunk(
        contents,
        has_output,
        output_chars,
        finish,
        usage,
        usage_only=not chunk.choices and usage is not None,
    )


def _tool_call_chars(calls: list[Any]) -> int:
    count = 0
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for part in (function.get("name"), function.get("arguments")):
                if isinstance(part, str):
                    count += len(part)
    return count


def event_data(event: bytes) -> bytes | None:
    """The `data:` payload of one SSE event, or None for a comment or keep-alive."""
    data = None
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:].strip()
            data = value if data is None else data + value
    return data


class SSESplitter:
    """Cuts a byte stream into complete SSE events, whatever the chunking of the transport."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, piece: bytes) -> list[bytes]:
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n")
        pending = self._pending + piece
        if b"\n\n" not in pending:
            self._pending = pending
            return []
        *events, self._pending = pending.split(b"\n\n")
        return [event for event in events if event]

    def close(self) -> list[bytes]:
        rest, self._pending = self._pending.strip(), b""
        return [rest] if rest else []
