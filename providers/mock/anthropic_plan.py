"""Turn an Anthropic Messages API request into a deterministic answer plan.

The reply follows the same rules as the OpenAI route (`Echo: <last user text>` cut to
`chunks * tokens_per_chunk` words, one word one output token); with tools it is `tool_use`
blocks whose input is built from each tool's `input_schema`. Prompt caching is simulated: the
prompt up to the last `cache_control` breakpoint is written to the cache the first time a
request carries it (`cache_creation_input_tokens`) and read from it afterwards
(`cache_read_input_tokens`). A request with `thinking` enabled gets a `thinking` block (with a
signature) before its answer.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import msgspec

from providers.mock.chat_plan import IMAGE_TOKENS, reply_words, split_evenly, split_words
from providers.mock.schema_example import example_from_schema
from providers.mock.settings import Behaviour

PARALLEL_WORD = "parallel"
"""A last user message containing this word gets several tool calls at once."""

KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "stream",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "mock",
    }
)
_BLOCK_TYPES = frozenset({"text", "image", "tool_use", "tool_result", "document", "thinking"})
_MAX_CACHE_KEYS = 10_000
THINKING_TEXT = "Considering what was asked."
THINKING_SIGNATURE = "mock-signature-0001"


class AnthropicRequestError(Exception):
    """A request the mock rejects, answered in Anthropic's error shape."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PlannedBlock(msgspec.Struct):
    type: str  # "text", "tool_use" or "thinking"
    pieces: list[str]
    name: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class MessagesPlan(msgspec.Struct):
    model: str
    stream: bool
    input_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    blocks: list[PlannedBlock]
    stop_reason: str
    stop_sequence: str | None = None

    @property
    def output_tokens(self) -> int:
        return sum(len(block.pieces) for block in self.blocks)


class PromptCache:
    """Prompt prefixes seen so far, by digest; bounded so a long benchmark cannot grow it."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def hit(self, prefix: bytes) -> bool:
        key = hashlib.blake2b(prefix, digest_size=16).digest()
        if key in self._seen:
            return True
        if len(self._seen) >= _MAX_CACHE_KEYS:
            self._seen.clear()
        self._seen.add(key)
        return False


def plan_messages(body: dict[str, Any], behaviour: Behaviour, cache: PromptCache) -> MessagesPlan:
    plan = _plan_answer(body, behaviour, cache)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        plan.blocks.insert(0, PlannedBlock("thinking", split_words(THINKING_TEXT)))
    return plan


def _plan_answer(body: dict[str, Any], behaviour: Behaviour, cache: PromptCache) -> MessagesPlan:
    for name in body:
        if name not in KNOWN_FIELDS:
            raise AnthropicRequestError(f"{name}: Extra inputs are not permitted")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise AnthropicRequestError("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise AnthropicRequestError("max_tokens: Field required (a positive integer)")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise AnthropicRequestError("stream: Input should be a valid boolean")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AnthropicRequestError("messages: Field required (a non-empty array)")
    units, last_user_text = _prompt_units(body, messages)
    input_tokens, cache_read, cache_creation = _count_prompt(units, cache)

    tool_names = _tool_names(body.get("tools"))
    calls = _tool_calls(body.get("tool_choice"), tool_names, last_user_text)
    if calls and behaviour.content is None:
        schemas = {tool.get("name"): tool.get("input_schema", {}) for tool in body["tools"]}
        blocks = [
            PlannedBlock(
                "tool_use", split_evenly(_arguments(schemas[name]), behaviour.word_count), name
            )
            for name in calls
        ]
        return MessagesPlan(
            model, stream, input_tokens, cache_read, cache_creation, blocks, "tool_use"
        )

    if behaviour.content is not None:
        pieces = split_words(behaviour.content)
    else:
        words = reply_words(last_user_text, behaviour.word_count)
        pieces = [word if index == 0 else " " + word for index, word in enumerate(words)]
    stop_reason, stop_sequence = "end_turn", None
    hit = _first_stop("".join(pieces), _stop_sequences(body.get("stop_sequences")))
    if hit is not None:
        cut, stop_sequence = hit
        pieces = split_words(cut)
        stop_reason = "stop_sequence"
    if len(pieces) > max_tokens:
        pieces = pieces[:max_tokens]
        stop_reason, stop_sequence = "max_tokens", None
    blocks = [PlannedBlock("text", pieces)]
    return MessagesPlan(
        model, stream, input_tokens, cache_read, cache_creation, blocks, stop_reason, stop_sequence
    )


class _Unit(msgspec.Struct):
    """One piece of the prompt, in order: its size, and whether it ends a cached prefix."""

    characters: int
    images: int
    breakpoint: bool
    raw: bytes


def _prompt_units(body: dict[str, Any], messages: list[Any]) -> tuple[list[_Unit], str]:
    units: list[_Unit] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            raw = msgspec.json.encode(tool)
            units.append(_Unit(len(raw), 0, _marked(tool), raw))
    system = body.get("system")
    if isinstance(system, str):
        units.append(_Unit(len(system), 0, False, system.encode()))
    elif isinstance(system, list):
        for index, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise AnthropicRequestError(f"system.{index}: Input should be a text block")
            units.append(_text_unit(block))
    elif system is not None:
        raise AnthropicRequestError("system: Input should be a string or an array of blocks")

    last_user_text = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise AnthropicRequestError(
                f"messages.{index}.role: Input should be 'user' or 'assistant'"
            )
        content = message.get("content")
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}]
        elif isinstance(content, list) and content:
            blocks = content
        else:
            raise AnthropicRequestError(
                f"messages.{index}.content: Input should be a string or a non-empty array"
            )
        texts = []
        for block_index, block in enumerate(blocks):
            where = f"messages.{index}.content.{block_index}"
            unit, text = _block_unit(block, where)
            units.append(unit)
            if text:
                texts.append(text)
        if message["role"] == "user" and texts:
            last_user_text = " ".join(texts)
    return units, last_user_text


def _block_unit(block: Any, where: str) -> tuple[_Unit, str | None]:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        raise AnthropicRequestError(f"{where}: Input tag does not match any expected block type")
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise AnthropicRequestError(f"{where}: text content blocks must be non-empty")
        return _text_unit(block), block["text"]
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict) or source.get("type") not in ("base64", "url"):
            raise AnthropicRequestError(f"{where}.source: Input should be a base64 or url source")
        if source["type"] == "base64" and not isinstance(source.get("media_type"), str):
            raise AnthropicRequestError(f"{where}.source.media_type: Field required")
        return _Unit(0, 1, _marked(block), msgspec.json.encode(block)), None
    if kind == "tool_use" and not isinstance(block.get("input"), dict):
        raise AnthropicRequestError(f"{where}.input: Input should be an object")
    if kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
        raise AnthropicRequestError(f"{where}.tool_use_id: Field required")
    raw = msgspec.json.encode(block)
    return _Unit(len(raw), 0, _marked(block), raw), None


def _text_unit(block: dict[str, Any]) -> _Unit:
    text = str(block.get("text", ""))
    return _Unit(len(text), 0, _marked(block), text.encode())


def _marked(part: Any) -> bool:
    return isinstance(part, dict) and isinstance(part.get("cache_control"), dict)


def _count_prompt(units: list[_Unit], cache: PromptCache) -> tuple[int, int, int]:
    """(input_tokens, cache_read, cache_creation); input tokens exclude the cached prefix."""

    def tokens(part: list[_Unit]) -> int:
        characters = sum(unit.characters for unit in part)
        return math.ceil(characters / 4) + IMAGE_TOKENS * sum(unit.images for unit in part)

    total = max(1, tokens(units))
    last_breakpoint = max((i for i, unit in enumerate(units) if unit.breakpoint), default=None)
    if last_breakpoint is None:
        return total, 0, 0
    prefix = units[: last_breakpoint + 1]
    cached = min(tokens(prefix), total)
    uncached = max(total - cached, 0)
    if cache.hit(b"\x00".join(unit.raw for unit in prefix)):
        return uncached, cached, 0
    return uncached, 0, cached


def _tool_names(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise AnthropicRequestError("tools: Input should be a valid list")
    names = []
    for index, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") not in (None, "custom"):
            continue  # a server tool (web search, ...): accepted, never called by the mock
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not name:
            raise AnthropicRequestError(f"tools.{index}.name: Field required")
        if not isinstance(tool.get("input_schema"), dict):
            raise AnthropicRequestError(f"tools.{index}.input_schema: Field required")
        names.append(name)
    return names


def _tool_calls(choice: Any, names: list[str], last_user_text: str) -> list[str]:
    """The names of the tools the answer calls, in order (empty: answer with text)."""
    if choice is None:
        choice = {"type": "auto"}
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise AnthropicRequestError("tool_choice: Input should be auto, any, tool or none")
    if not names or choice["type"] == "none":
        return []
    if choice["type"] == "tool":
        if choice.get("name") not in names:
            raise AnthropicRequestError("tool_choice.name: Tool not found in tools")
        first = str(choice["name"])
    else:
        first = names[0]
    parallel = PARALLEL_WORD in last_user_text.lower() and not choice.get(
        "disable_parallel_tool_use"
    )
    if not parallel:
        return [first]
    others = [name for name in names if name != first]
    return [first, *others] if others else [first, first]


def _arguments(schema: Any) -> str:
    value = example_from_schema(schema)
    return msgspec.json.encode(value if isinstance(value, dict) else {}).decode()


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AnthropicRequestError("stop_sequences: Input should be a list of strings")
    return [item for item in value if item]


def _first_stop(text: str, sequences: list[str]) -> tuple[str, str] | None:
    """The text before the earliest stop sequence in it, and that sequence."""
    found = [(text.find(sequence), sequence) for sequence in sequences if sequence in text]
    if not found:
        return None
    position, sequence = min(found)
    return text[:position], sequence
