"""Token usage, normalised across providers. `None` means unknown, never zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.prompt_tokens is not None


UNKNOWN_USAGE = Usage()

CHARS_PER_TOKEN = 4
"""The gateway's rule of thumb wherever it must guess a token count from text."""


MAX_OUTPUT_TOKENS = 2**31 - 1
"""The largest `max_tokens` / `max_completion_tokens` a request may ask for: above any model's
output, and the largest count a provider's 32-bit field holds."""

MAX_CHOICES = 128
"""The largest `n` a request may ask for (OpenAI's own limit)."""

COUNTED_PARAMETERS: dict[str, int] = {
    "max_tokens": MAX_OUTPUT_TOKENS,
    "max_completion_tokens": MAX_OUTPUT_TOKENS,
    "n": MAX_CHOICES,
}
"""Request parameters rate limits and budgets are reserved by, each a whole number from 1 to
the value given here. The gateway refuses anything else from clients and rules alike."""


def counted(value: Any, most: int) -> int | None:
    """`value` when it is a whole number from 1 to `most`, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most:
        return value
    return None


def requested_output(payload: Mapping[str, Any]) -> tuple[int | None, int]:
    """The output tokens a chat request may use per choice (None when it sets no cap) and its
    number of choices. Only whole numbers in range count, so nothing a body carries can make a
    token count smaller. On the request path: kept to a few dictionary reads."""
    cap = payload.get("max_completion_tokens") or payload.get("max_tokens")
    choices = payload.get("n")
    if type(cap) is not int or not 0 < cap <= MAX_OUTPUT_TOKENS:
        cap = None
    if type(choices) is not int or not 0 < choices <= MAX_CHOICES:
        choices = 1
    return cap, choices


MEDIA_PART_TOKENS = 765
"""What one image, audio or file part of a prompt is guessed to cost: a 1024x1024 image at
OpenAI's high detail. Inline media are base64 text many times larger than their token cost."""

_MEDIA_DATA = {"image_url": ("image_url", "url"), "input_audio": ("input_audio", "data")}


def estimated_prompt_tokens(payload: Mapping[str, Any], body_size: int) -> int:
    """A chat request's prompt tokens, guessed: the bytes of its body over `CHARS_PER_TOKEN`,
    except that each media part counts `MEDIA_PART_TOKENS` instead of its inline data's size
    (at least 1)."""
    media_bytes = parts = 0
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("image_url", "input_audio", "file"):
                continue
            parts += 1
            holder, field = _MEDIA_DATA.get(kind, ("file", "file_data"))
            inner = part.get(holder)
            data = inner.get(field) if isinstance(inner, dict) else inner
            if isinstance(data, str):
                media_bytes += len(data)
    text_tokens = max(body_size - media_bytes, 0) // CHARS_PER_TOKEN
    return max(text_tokens + parts * MEDIA_PART_TOKENS, 1)


def estimated_usage(
    prompt_tokens: int, output_chars: int, *, reported: Usage = UNKNOWN_USAGE
) -> Usage:
    """Usage for an answer cut short before its provider's usage chunk: what the provider had
    reported by then where it said anything (its prompt and cached tokens; its output count
    when that is more than the text shows), else the prompt's estimate and the streamed
    characters over `CHARS_PER_TOKEN`, rounded up."""
    completion = -(-output_chars // CHARS_PER_TOKEN)
    if reported.completion_tokens is not None:
        completion = max(completion, reported.completion_tokens)
    if reported.prompt_tokens is not None:
        prompt_tokens = reported.prompt_tokens
    return Usage(prompt_tokens, completion, reported.cached_tokens, prompt_tokens + completion)


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class OpenAIUsage(msgspec.Struct):
    """OpenAI's `usage` object; extra fields are ignored on decode."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None

    def normalise(self) -> Usage:
        cached = self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else None
        total = self.total_tokens
        if total is None and self.prompt_tokens is not None:
            total = self.prompt_tokens + (self.completion_tokens or 0)
        return Usage(self.prompt_tokens, self.completion_tokens, cached, total)


def usage_from_mapping(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return UNKNOWN_USAGE
    try:
        return msgspec.convert(raw, OpenAIUsage).normalise()
    except msgspec.ValidationError:
        return UNKNOWN_USAGE
