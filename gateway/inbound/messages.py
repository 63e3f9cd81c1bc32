"""Anthropic's Messages API (`POST /v1/messages`) as an inbound format of the chat pipeline.

The request becomes a chat completion request (system prompt first, `tool_result` blocks as
`tool` messages, images as `image_url` parts, tools as functions); the chat answer becomes a
`message` object, or Anthropic's SSE events when streamed. Errors take Anthropic's shape:
`{"type": "error", "error": {"type": ..., "message": ...}}`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import invalid_request
from gateway.inbound.api import AnswerEncoder, json_arguments, sse
from providers.usage import estimated_prompt_tokens
from telemetry.ids import uuid7_hex

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class MessagesApi:
    operation = "messages"

    def decode(
        self, payload: dict[str, Any], *, counting: bool = False
    ) -> tuple[dict[str, Any], AnswerEncoder]:
        """The chat request for a Messages body; `counting` (count_tokens) needs no max_tokens."""
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise invalid_request("model: Field required", param="model")
        max_tokens = payload.get("max_tokens")
        if not counting and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            raise invalid_request(
                "max_tokens: Field required (a positive integer)", param="max_tokens"
            )
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid_request("messages: Field required (a non-empty list)", param="messages")
        chat: dict[str, Any] = {"model": model, "messages": _system(payload.get("system"))}
        for index, message in enumerate(messages):
            chat["messages"].extend(_message(message, index))
        if max_tokens is not None:
            chat["max_tokens"] = max_tokens
        for name in ("temperature", "top_p"):
            value = payload.get(name)
            if value is not None:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise invalid_request(f"{name}: Input should be a number", param=name)
                chat[name] = value
        stop = payload.get("stop_sequences")
        if stop is not None:
            if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
                raise invalid_request(
                    "stop_sequences: Input should be a list of strings", param="stop_sequences"
                )
            if stop:
                chat["stop"] = stop
        metadata = payload.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
            chat["user"] = metadata["user_id"]
        tools = payload.get("tools")
        if tools is not None:
            chat["tools"] = _tools(tools)
        choice = payload.get("tool_choice")
        if choice is not None:
            _tool_choice(choice, chat)
        stream = payload.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise invalid_request("stream: Input should be a valid boolean", param="stream")
        if stream:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}
        return chat, MessageEncoder(model)

    def error_body(self, status: int, error: dict[str, Any]) -> bytes:
        return msgspec.json.encode(_error(status, error))

    def error_event(self, error: dict[str, Any]) -> bytes:
        return sse("error", _error(500, error))


def estimated_input_tokens(chat: dict[str, Any]) -> int:
    """count_tokens' answer: the gateway's own estimate for the translated chat request (its
    JSON size over four characters a token, each image a flat 765), the figure its token
    limits and rules use; not a provider's tokenizer."""
    body = msgspec.json.encode(chat)
    return estimated_prompt_tokens(chat, len(body))


class MessageEncoder:
    """A chat answer as a Messages `message`, whole or as Anthropic's stream events."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "msg_" + uuid7_hex()
        self._started = False
        self._finished = False
        self._block: int | None = None
        self._block_kind: str | None = None
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}
        self._stop_reason: str | None = None
        self._input_tokens = 0
        self._output_tokens = 0

    # --- whole ------------------------------------------------------------------------------

    def whole(self, answer: dict[str, Any]) -> bytes:
        choices = answer.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        content: list[dict[str, Any]] = []
        text = message.get("content")
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or "toolu_" + uuid7_hex(),
                    "name": function.get("name", ""),
                    "input": json_arguments(function.get("arguments")),
                }
            )
        usage = answer.get("usage") or {}
        finish = choice.get("finish_reason")
        stop_reason = None if finish is None else _STOP_REASONS.get(str(finish), "end_turn")
        return msgspec.json.encode(
            {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": usage.get("prompt_tokens") or 0,
                    "output_tokens": usage.get("completion_tokens") or 0,
                },
            }
        )

    # --- streamed ---------------------------------------------------------------------------

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = [] if self._started else [self._message_start()]
        self._started = True
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._input_tokens = usage.get("prompt_tokens") or self._input_tokens
            self._output_tokens = usage.get("completion_tokens") or self._output_tokens
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.append(self._text(text))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out.append(self._tool_call(call))
            if choice.get("finish_reason") is not None:
                self._stop_reason = _STOP_REASONS.get(str(choice["finish_reason"]), "end_turn")
        return b"".join(out)

    def done(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        out = [] if self._started else [self._message_start()]
        self._started = True
        out.append(self._close_block())
        out.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self._stop_reason or "end_turn",
                        "stop_sequence": None,
                    },
                    "usage": {
                        "input_tokens": self._input_tokens,
                        "output_tokens": self._output_tokens,
                    },
                },
            )
        )
        out.append(sse("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _message_start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message}) + sse(
            "ping", {"type": "ping"}
        )

    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        closing = self._close_block()
        self._block = self._blocks
        self._block_kind = kind
        self._blocks += 1
        return closing + sse(
            "content_block_start",
            {"type": "content_block_start", "index": self._block, "content_block": block},
        )

    def _close_block(self) -> bytes:
        if self._block is None:
            return b""
        index, self._block, self._block_kind = self._block, None, None
        return sse("content_block_stop", {"type": "content_block_stop", "index": index})

    def _text(self, text: str) -> bytes:
        out = b""
        if self._block_kind != "text":
            out = self._open_block("text", {"type": "text", "text": ""})
        return out + sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": self._block,
                "delta": {"type": "text_delta", "text": text},
            },
        )

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        position = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        if position not in self._tool_blocks:
            out = self._open_block(
                "tool_use",
                {
                    "type": "tool_use",
                    "id": call.get("id") or "toolu_" + uuid7_hex(),
                    "name": function.get("name") or "",
                    "input": {},
                },
            )
            assert self._block is not None
            self._tool_blocks[position] = self._block
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not arguments:
            return out
        if self._tool_blocks[position] != self._block:
            return out  # a late fragment of an earlier call: Anthropic's blocks do not interleave
        return out + sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": self._block,
                "delta": {"type": "input_json_delta", "partial_json": arguments},
            },
        )


# --- request translation ------------------------------------------------------------------------


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if isinstance(system, list):
        texts = []
        for index, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise invalid_request(
                    f"system.{index}: only text blocks are accepted", param="system"
                )
            texts.append(str(block.get("text", "")))
        return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []
    raise invalid_request("system: Input should be a string or a list of blocks", param="system")


def _message(message: Any, index: int) -> list[dict[str, Any]]:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise invalid_request(f"{where}: Input should be an object", param=where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise invalid_request(f"{where}.role: Input should be 'user' or 'assistant'", param=where)
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise invalid_request(
            f"{where}.content: Input should be a string or a list of blocks", param=where
        )
    parts: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    tool_results: list[dict[str, Any]] = []
    for position, block in enumerate(content):
        at = f"{where}.content.{position}"
        if not isinstance(block, dict):
            raise invalid_request(f"{at}: Input should be an object", param=where)
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image(block.get("source"), at))
        elif kind == "tool_use" and role == "assistant":
            tool_calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name", "")),
                        "arguments": msgspec.json.encode(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind == "tool_result" and role == "user":
            tool_results.append(
                {
                    "role": "tool",
                    "tool_call_id": str(block.get("tool_use_id", "")),
                    "content": _tool_result_text(block, at),
                }
            )
        elif kind in _IGNORED_BLOCKS:
            continue
        else:
            raise invalid_request(
                f"{at}: blocks of type '{kind}' are not accepted on the {role} role by this "
                "gateway",
                param=where,
            )
    chat: list[dict[str, Any]] = list(tool_results)
    if tool_calls:
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        chat.append({"role": "assistant", "content": text or None, "tool_calls": tool_calls})
    elif parts:
        if all(p["type"] == "text" for p in parts) and role == "assistant":
            chat.append({"role": role, "content": "".join(p["text"] for p in parts)})
        else:
            chat.append({"role": role, "content": parts})
    return chat


def _image(source: Any, at: str) -> dict[str, Any]:
    if isinstance(source, dict):
        kind = source.get("type")
        if kind == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type")
            if not isinstance(media, str) or not media.startswith("image/"):
                raise invalid_request(f"{at}.source.media_type: an image type is required")
            url = f"data:{media};base64,{source['data']}"
            return {"type": "image_url", "image_url": {"url": url}}
        if kind == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise invalid_request(f"{at}.source: a base64 or url image source is required")


def _tool_result_text(block: dict[str, Any], at: str) -> str:
    content = block.get("content")
    text = ""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        pieces = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise invalid_request(
                    f"{at}.content: only text is accepted in tool results by this gateway"
                )
            pieces.append(str(part.get("text", "")))
        text = "\n".join(pieces)
    elif content is not None:
        raise invalid_request(f"{at}.content: Input should be a string or a list of blocks")
    return f"Error: {text}" if block.get("is_error") is True else text


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise invalid_request("tools: Input should be a list", param="tools")
    functions = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise invalid_request(f"tools.{index}: a tool needs a name", param="tools")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise invalid_request(
                f"tools.{index}: server tools (type '{kind}') are not supported by this gateway",
                param="tools",
            )
        function: dict[str, Any] = {
            "name": tool["name"],
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        functions.append({"type": "function", "function": function})
    return functions


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise invalid_request(
            "tool_choice: Input should be auto, any, tool (with a name) or none",
            param="tool_choice",
        )
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def _error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    if status >= 500 and status != 529:
        kind = "api_error"
    message = error.get("message")
    return {
        "type": "error",
        "error": {
            "type": kind,
            "message": message if isinstance(message, str) else "The gateway could not answer.",
        },
    }
