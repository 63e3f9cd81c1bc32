"""Content redaction for `telemetry.store_content: redacted`: message text rewritten, structure kept.

Stored prompts and responses are OpenAI-shaped JSON: chat messages (whose `content` is a string
or a list of parts), streamed answers (`{"index", "content"}`), embedding inputs (a string, a
list of strings, or token arrays). Only strings that carry text someone wrote or a model
produced are passed to `redact`; roles, ids, types, tool names, image URLs and audio data are
kept as they are, so the stored record still shows what kind of exchange it was.

A string counts as text when it is the value itself (an embedding input), an item of a list of
text (`input: ["a", "b"]`, or `content` given as a list), or the value of one of `TEXT_KEYS` in
an object. Objects nested inside text (`content` parts, say) are read by their own keys again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from telemetry.records import InteractionRecord, TraceBundle

TEXT_KEYS = frozenset(
    {
        "content",  # a message's text, or its list of parts; a streamed answer's text
        "text",  # a text part
        "refusal",  # an assistant's refusal, as a field or as a part
        "arguments",  # a tool or function call's arguments: model-written, may quote the user
        "reasoning_content",
        "transcript",  # an audio answer's text
        "input",  # an embedding input, when it appears inside an object
    }
)

Redact = Callable[[str], str]


def redact_content(value: Any, redact: Redact) -> Any:
    """A copy of `value` with every text string replaced by `redact(string)`; the top level is
    text. Exceptions from `redact` propagate."""
    return _walk(value, redact, is_text=True)


def _walk(value: Any, redact: Redact, *, is_text: bool) -> Any:
    if isinstance(value, str):
        return redact(value) if is_text else value
    if isinstance(value, list):
        return [_walk(item, redact, is_text=is_text) for item in value]
    if isinstance(value, dict):
        return {key: _walk(item, redact, is_text=key in TEXT_KEYS) for key, item in value.items()}
    return value


def redact_bundles(
    bundles: Sequence[TraceBundle], redact: Redact
) -> tuple[list[TraceBundle], list[str]]:
    """The bundles with every interaction's prompt and response redacted (new records; the
    originals are left alone), and the type names of the errors `redact` raised. A value whose
    redaction fails is dropped (None), never kept as it was."""
    failures: list[str] = []
    redacted = []
    for bundle in bundles:
        if any(_has_content(i) for i in bundle.interactions):
            interactions = [_redact_interaction(i, redact, failures) for i in bundle.interactions]
            bundle = msgspec.structs.replace(bundle, interactions=interactions)
        redacted.append(bundle)
    return redacted, failures


def has_content(bundles: Sequence[TraceBundle]) -> bool:
    return any(_has_content(i) for bundle in bundles for i in bundle.interactions)


def _has_content(interaction: InteractionRecord) -> bool:
    return interaction.prompt is not None or interaction.response is not None


def _redact_interaction(
    interaction: InteractionRecord, redact: Redact, failures: list[str]
) -> InteractionRecord:
    if not _has_content(interaction):
        return interaction
    return msgspec.structs.replace(
        interaction,
        prompt=_redact_or_none(interaction.prompt, redact, failures),
        response=_redact_or_none(interaction.response, redact, failures),
    )


def _redact_or_none(value: Any, redact: Redact, failures: list[str]) -> Any:
    if value is None:
        return None
    try:
        return redact_content(value, redact)
    except Exception as error:
        failures.append(type(error).__name__)
        return None
