"""Token usage, normalised across providers. `None` means unknown, never zero."""

from __future__ import annotations

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


def estimated_usage(prompt_tokens: int, output_chars: int) -> Usage:
    """Usage guessed for an answer the provider streamed without reporting any: the prompt's
    estimate and the streamed characters over `CHARS_PER_TOKEN`, rounded up."""
    completion = -(-output_chars // CHARS_PER_TOKEN)
    return Usage(prompt_tokens, completion, None, prompt_tokens + completion)


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
