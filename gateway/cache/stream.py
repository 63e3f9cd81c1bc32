"""Cached chat answers and streams: replaying a stored completion as SSE, and turning a finished
stream back into the completion it stands for.

The cache stores non-streamed `chat.completion` bodies only. A streaming request that hits is
answered by `replay_events`; a streaming request that misses feeds every upstream event to a
`StreamAccumulator`, whose `result()` is the equivalent `chat.completion` body once the stream
finished properly (every choice has a finish reason).
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Final

import msgspec

from gateway.cache.response_cache import CachedResponse

PIECE_CHARS: Final = 20
"""About how many characters each replayed content chunk carries."""

DONE: Final = b"data: [DONE]\n\n"
_MESSAGE_FIELDS: Final = frozenset({"role", "content", "refusal", "tool_calls", "function_call"})
_ENVELOPE_EXTRAS: Final = ("system_fingerprint", "service_tier")
_WORDS: Final = re.compile(r"\s+|\S+\s*")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

Chunk = dict[str, Any]


# --- replay -----------------------------------------------------------------------------------


def replay_events(entry: CachedResponse, *, model: str, include_usage: bool) -> list[bytes]:
    """The SSE events (`data: {...}\\n\\n`, ending with `data: [DONE]`) that stream `entry`.

    Per choice: a role chunk, the content (or refusal, tool calls, function call) in small
    pieces, a finish chunk; choices interleave as OpenAI's do. When `include_usage`, every chunk
    carries `usage: null` and a last `choices: []` chunk carries the usage. Raises ValueError
    when the entry is not a chat completion.
    """
    body = _decode(entry.body)
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ValueError("the cached entry is not a chat completion")
    envelope: Chunk = {
        "id": body.get("id") or "chatcmpl-cached",
        "object": "chat.completion.chunk",
        "created": body.get("created") or int(entry.created_at),
        "model": model,
    }
    for name in _ENVELOPE_EXTRAS:
        if body.get(name) is not None:
            envelope[name] = body[name]
    per_choice = [
        _choice_chunks(choice, position)
        for position, choice in enumerate(body["choices"])
        if isinstance(choice, dict)
    ]
    events = []
    for row in itertools.zip_longest(*per_choice):
        for choice in row:
            if choice is not None:
                chunk = {**envelope, "choices": [choice]}
                if include_usage:
                    chunk["usage"] = None
                events.append(_event(chunk))
    if include_usage:
        usage = body.get("usage")
        if not isinstance(usage, dict):
            usage = _usage_of(entry)
        if usage is not None:
            events.append(_event({**envelope, "choices": [], "usage": usage}))
    events.append(DONE)
    return events


def split_text(text: str, size: int = PIECE_CHARS) -> list[str]:
    """Cut `text` into pieces of about `size` characters, at word ends where there are any.
    The pieces join back to `text` exactly."""
    pieces: list[str] = []
    current = ""
    for word in _WORDS.findall(text):
        if len(word) > size:
            if current:
                pieces.append(current)
                current = ""
            pieces.extend(word[start : start + size] for start in range(0, len(word), size))
            continue
        current += word
        if len(current) >= size:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _choice_chunks(choice: dict[str, Any], position: int) -> list[Chunk]:
    index = choice.get("index", position)
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    content = message.get("content")
    opening: Chunk = {
        "role": message.get("role") or "assistant",
        "content": "" if isinstance(content, str) else None,
    }
    for name, value in message.items():
        if name not in _MESSAGE_FIELDS and value is not None:
            opening[name] = value
    deltas: list[Chunk] = []
    if isinstance(content, str):
        deltas += ({"content": piece} for piece in split_text(content))
    elif content is not None:
        deltas.append({"content": content})
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        deltas += ({"refusal": piece} for piece in split_text(refusal))
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for number, call in enumerate(tool_calls):
            if isinstance(call, dict):
                deltas += ({"tool_calls": [delta]} for delta in _tool_call_deltas(call, number))
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        deltas += _function_call_deltas(function_call)

    chunks = [_choice(index, opening)]
    chunks += (_choice(index, delta) for delta in deltas)
    chunks.append(_choice(index, {}, choice.get("finish_reason")))
    logprobs = choice.get("logprobs")
    if logprobs is not None:
        # All of the answer's logprobs ride on its first content chunk (or the finish chunk).
        chunks[1]["logprobs"] = logprobs
    return chunks


def _choice(index: int, delta: Chunk, finish_reason: str | None = None) -> Chunk:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _tool_call_deltas(call: dict[str, Any], number: int) -> list[Chunk]:
    function = call.get("function")
    if call.get("type", "function") != "function" or not isinstance(function, dict):
        return [{"index": number, **{k: v for k, v in call.items() if k != "index"}}]
    arguments = function.get("arguments")
    head = {
        "index": number,
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": ""},
    }
    pieces = split_text(arguments) if isinstance(arguments, str) else []
    return [head, *({"index": number, "function": {"arguments": piece}} for piece in pieces)]


def _function_call_deltas(call: dict[str, Any]) -> list[Chunk]:
    arguments = call.get("arguments")
    pieces = split_text(arguments) if isinstance(arguments, str) else []
    head = {"function_call": {"name": call.get("name"), "arguments": ""}}
    return [head, *({"function_call": {"arguments": piece}} for piece in pieces)]


def _usage_of(entry: CachedResponse) -> dict[str, Any] | None:
    usage = entry.usage
    if usage.prompt_tokens is None:
        return None
    found: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens or 0,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens is not None:
        found["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return found


def _event(chunk: Chunk) -> bytes:
    return b"data: " + _encode(chunk) + b"\n\n"


# --- accumulate -------------------------------------------------------------------------------


class _ToolCall:
    __slots__ = ("arguments", "fields", "name")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.name: str | None = None
        self.arguments: list[str] = []

    def feed(self, delta: dict[str, Any]) -> None:
        for key, value in delta.items():
            if key == "index" or value is None:
                continue
            if key == "function" and isinstance(value, dict):
                name = value.get("name")
                if isinstance(name, str) and name and not self.name:
                    self.name = name
                arguments = value.get("arguments")
                if isinstance(arguments, str):
                    self.arguments.append(arguments)
            elif key not in self.fields or self.fields[key] in ("", None):
                self.fields[key] = value

    def document(self) -> dict[str, Any]:
        found = dict(self.fields)
        if self.name is not None or self.arguments:
            found.setdefault("type", "function")
            found["function"] = {"name": self.name, "arguments": "".join(self.arguments)}
        return found


class _ChoiceState:
    __slots__ = (
        "content",
        "extras",
        "finish_reason",
        "function_call",
        "logprobs",
        "refusal",
        "role",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, _ToolCall] = {}
        self.function_call: _ToolCall | None = None
        self.extras: dict[str, Any] = {}
        self.logprobs: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    def feed(self, delta: dict[str, Any]) -> None:
        for key, value in delta.items():
            if value is None:
                continue
            if key == "role":
                self.role = self.role or value
            elif key == "content" and isinstance(value, str):
                if self.content is None:
                    self.content = []
                self.content.append(value)
            elif key == "refusal" and isinstance(value, str):
                if self.refusal is None:
                    self.refusal = []
                self.refusal.append(value)
            elif key == "tool_calls" and isinstance(value, list):
                for position, call in enumerate(value):
                    if isinstance(call, dict):
                        number = call.get("index", position)
                        self.tool_calls.setdefault(number, _ToolCall()).feed(call)
            elif key == "function_call" and isinstance(value, dict):
                if self.function_call is None:
                    self.function_call = _ToolCall()
                self.function_call.feed({"function": value})
            elif isinstance(value, list) and isinstance(self.extras.get(key), list):
                self.extras[key] = self.extras[key] + value
            else:
                self.extras[key] = value

    def add_logprobs(self, logprobs: dict[str, Any]) -> None:
        if self.logprobs is None:
            self.logprobs = {}
        for key, value in logprobs.items():
            held = self.logprobs.get(key)
            if isinstance(value, list) and isinstance(held, list):
                self.logprobs[key] = held + value
            else:
                self.logprobs[key] = value

    def message(self) -> dict[str, Any]:
        content = "".join(self.content) if self.content is not None else None
        if content == "" and (self.tool_calls or self.function_call is not None):
            content = None
        message: dict[str, Any] = {
            "role": self.role or "assistant",
            "content": content,
            "refusal": "".join(self.refusal) if self.refusal is not None else None,
        }
        message.update(self.extras)
        if self.tool_calls:
            message["tool_calls"] = [
                self.tool_calls[number].document() for number in sorted(self.tool_calls)
            ]
        if self.function_call is not None:
            message["function_call"] = self.function_call.document()["function"]
        return message


class StreamAccumulator:
    """Builds the `chat.completion` body a chat stream stands for, event by event.

    Feed it every upstream `data:` payload except `[DONE]`. It never raises: a payload that is
    not a chunk, an error event, or more than `max_bytes` of payloads make `result()` None, as
    does a stream in which some choice never got its finish reason.
    """

    __slots__ = ("_broken", "_choices", "_envelope", "_max_bytes", "_size", "_usage")

    def __init__(self, *, max_bytes: int | None = None) -> None:
        self._max_bytes = max_bytes
        self._size = 0
        self._broken = False
        self._envelope: dict[str, Any] = {}
        self._choices: dict[int, _ChoiceState] = {}
        self._usage: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """True when every choice seen so far has its finish reason (and nothing broke)."""
        return (
            not self._broken
            and bool(self._choices)
            and all(choice.finish_reason is not None for choice in self._choices.values())
        )

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._usage

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        self._size += len(data)
        if self._max_bytes is not None and self._size > self._max_bytes:
            self._break()
            return
        try:
            chunk = _decode(data)
        except (msgspec.DecodeError, RecursionError):
            chunk = None
        if not isinstance(chunk, dict) or "error" in chunk:
            self._break()
            return
        for name in ("id", "created", "model", *_ENVELOPE_EXTRAS):
            value = chunk.get(name)
            # Some providers open with an empty envelope (id "", created 0): skip those.
            if value not in (None, "", 0) and name not in self._envelope:
                self._envelope[name] = value
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", position)
            if not isinstance(index, int):
                self._break()
                return
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState()
            delta = choice.get("delta")
            if isinstance(delta, dict):
                state.feed(delta)
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                state.add_logprobs(logprobs)
            finish_reason = choice.get("finish_reason")
            if finish_reason is not None:
                state.finish_reason = finish_reason

    def result(self) -> bytes | None:
        """The equivalent `chat.completion` JSON body, or None if the stream did not finish."""
        if not self.finished:
            return None
        envelope = self._envelope
        body: dict[str, Any] = {
            "id": envelope.get("id", "chatcmpl-cached"),
            "object": "chat.completion",
            "created": envelope.get("created", 0),
            "model": envelope.get("model", ""),
        }
        for name in _ENVELOPE_EXTRAS:
            if name in envelope:
                body[name] = envelope[name]
        body["choices"] = [
            {
                "index": index,
                "message": state.message(),
                "logprobs": state.logprobs,
                "finish_reason": state.finish_reason,
            }
            for index, state in sorted(self._choices.items())
        ]
        if self._usage is not None:
            body["usage"] = self._usage
        return _encode(body)

    def _break(self) -> None:
        self._broken = True
        self._choices.clear()
