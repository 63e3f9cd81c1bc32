"""Turn a chat completion request into a deterministic answer plan.

The answer is a list of *pieces*; each piece counts as one completion token, a stream sends
`tokens_per_chunk` pieces per content chunk, and joining the pieces gives the full text. The
generated reply is the words of `Echo: <last user message>`, repeated or cut to exactly
`chunks * tokens_per_chunk` words, so tests can predict both the text and the token counts.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from providers.mock.errors import MockRequestError
from providers.mock.schema_example import example_from_schema
from providers.mock.settings import Behaviour

IMAGE_TOKENS = 85
"""Prompt tokens counted for each image part, whatever its size."""

_MAX_N = 128
_WORD = re.compile(r"\s*\S+")
_ECHO_MARKER = "Echo:"


class ToolCallPlan(msgspec.Struct, frozen=True):
    name: str


class ChatPlan(msgspec.Struct):
    model: str
    n: int
    stream: bool
    include_usage: bool
    prompt_tokens: int
    pieces: list[str]
    finish_reason: str
    tool_call: ToolCallPlan | None = None

    @property
    def completion_tokens_per_choice(self) -> int:
        return len(self.pieces)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def reply_words(last_user_text: str, word_count: int) -> list[str]:
    """The generated reply's words: `Echo: <message words>` cycled to `word_count` words."""
    if word_count <= 0:
        return []
    source = [_ECHO_MARKER, *last_user_text.split()[:word_count]]
    repeats = -(-word_count // len(source))
    return (source * repeats)[:word_count]


def reply_text(last_user_text: str, word_count: int) -> str:
    """The content a request gets when it sets no `mock.content`, tools or response format."""
    return " ".join(reply_words(last_user_text, word_count))


def plan_chat(body: dict[str, Any], behaviour: Behaviour) -> ChatPlan:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise MockRequestError("you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MockRequestError(
            "'messages' must be a non-empty array of message objects", param="messages"
        )
    prompt_tokens, last_user_text = _read_messages(messages)
    n = _optional_int(body, "n", default=1, minimum=1, maximum=_MAX_N)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise MockRequestError("'stream' must be a boolean", param="stream")
    include_usage = _include_usage(body) if stream else False
    max_tokens = _max_tokens(body)

    tool_call = None if behaviour.content is not None else _tool_call(body)
    if tool_call is not None:
        arguments = _tool_arguments(body, tool_call.name)
        return ChatPlan(
            model=model,
            n=n,
            stream=stream,
            include_usage=include_usage,
            prompt_tokens=prompt_tokens,
            pieces=split_evenly(arguments, behaviour.word_count),
            finish_reason="tool_calls",
            tool_call=tool_call,
        )

    pieces = _content_pieces(body, behaviour, last_user_text)
    finish_reason = "stop"
    if max_tokens is not None and len(pieces) > max_tokens:
        pieces = pieces[:max_tokens]
        finish_reason = "length"
    return ChatPlan(
        model=model,
        n=n,
        stream=stream,
        include_usage=include_usage,
        prompt_tokens=prompt_tokens,
        pieces=pieces,
        finish_reason=finish_reason,
    )


def split_evenly(text: str, count: int) -> list[str]:
    """Cut `text` into `count` pieces of near-equal length (fewer if it is shorter)."""
    if not text:
        return []
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def split_words(text: str) -> list[str]:
    """Cut `text` into words that keep their leading whitespace; joining them gives `text`."""
    # Up to the trailing whitespace only: from each place in a run of it, `\s*\S+` would read to
    # the end before failing (time quadratic in the run). The run is added back below.
    pieces = _WORD.findall(text, 0, len(text.rstrip()))
    if not pieces:
        return [text] if text else []
    consumed = sum(len(piece) for piece in pieces)
    if consumed < len(text):
        pieces[-1] += text[consumed:]
    return pieces


def _content_pieces(body: dict[str, Any], behaviour: Behaviour, last_user_text: str) -> list[str]:
    if behaviour.content is not None:
        return split_words(behaviour.content)
    words = reply_words(last_user_text, behaviour.word_count)
    response_format = body.get("response_format")
    if response_format is not None:
        json_text = _structured_content(response_format, " ".join(words))
        if json_text is not None:
            return split_evenly(json_text, behaviour.word_count)
    return [word if index == 0 else " " + word for index, word in enumerate(words)]


def _structured_content(response_format: Any, text: str) -> str | None:
    if not isinstance(response_format, dict):
        raise MockRequestError("'response_format' must be an object", param="response_format")
    kind = response_format.get("type")
    if kind == "json_object":
        return msgspec.json.encode({"reply": text}).decode()
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise MockRequestError(
                "'response_format.json_schema' must be an object",
                param="response_format.json_schema",
            )
        return msgspec.json.encode(example_from_schema(spec.get("schema", {}))).decode()
    if kind in (None, "text"):
        return None
    raise MockRequestError(
        f"Invalid value for 'response_format.type': {kind!r}", param="response_format.type"
    )


def _read_messages(messages: list[Any]) -> tuple[int, str]:
    characters = 0
    images = 0
    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise MockRequestError(
                "each message must be an object with a string 'role'",
                param=f"messages[{index}]",
            )
        content = message.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text, part_images = _read_parts(content, index)
            images += part_images
        elif content is None:
            text = ""
        else:
            raise MockRequestError(
                "message content must be a string, an array of parts or null",
                param=f"messages[{index}].content",
            )
        characters += len(text)
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            characters += sum(len(str(call)) for call in tool_calls)
        if message["role"] == "user":
            last_user_text = text
    return max(1, math.ceil(characters / 4) + images * IMAGE_TOKENS), last_user_text


def _read_parts(parts: list[Any], message_index: int) -> tuple[str, int]:
    texts = []
    images = 0
    for part_index, part in enumerate(parts):
        if not isinstance(part, dict):
            raise MockRequestError(
                "each content part must be an object",
                param=f"messages[{message_index}].content[{part_index}]",
            )
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise MockRequestError(
                    "an image_url part needs an 'image_url.url'",
                    param=f"messages[{message_index}].content[{part_index}].image_url",
                )
            images += 1
    return " ".join(texts), images


def _optional_int(
    body: dict[str, Any], name: str, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    value = body.get(name)
    if value is None:
        return default
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise MockRequestError(
            f"'{name}' must be an integer of at least {minimum}{limit}", param=name
        )
    return value


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        if body.get(name) is not None:
            return _optional_int(body, name, default=0, minimum=1)
    return None


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise MockRequestError("'stream_options' must be an object", param="stream_options")
    return options.get("include_usage") is True


def _tool_call(body: dict[str, Any]) -> ToolCallPlan | None:
    tools = body.get("tools")
    if tools is None or tools == []:
        return None
    if not isinstance(tools, list):
        raise MockRequestError("'tools' must be an array", param="tools")
    names = [_tool_name(tool, index) for index, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    if choice is None or choice in ("auto", "required"):
        return ToolCallPlan(name=names[0])
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name in names:
            return ToolCallPlan(name=name)
        raise MockRequestError(
            "'tool_choice' names a function that is not in 'tools'", param="tool_choice"
        )
    raise MockRequestError(
        "'tool_choice' must be 'none', 'auto', 'required' or a function object",
        param="tool_choice",
    )


def _tool_name(tool: Any, index: int) -> str:
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise MockRequestError(
            "each tool needs a 'function' with a 'name'", param=f"tools[{index}].function.name"
        )
    return name


def _tool_arguments(body: dict[str, Any], name: str) -> str:
    for tool in body["tools"]:
        function = tool["function"]
        if function["name"] == name:
            arguments = example_from_schema(function.get("parameters", {}))
            return msgspec.json.encode(arguments if isinstance(arguments, dict) else {}).decode()
    return "{}"
