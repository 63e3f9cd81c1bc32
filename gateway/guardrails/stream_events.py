"""What the output guardrails over a stream (`guardrail_stream`, `guardrail_moderation_stream`)
share: the texts of a delta they read, and the chunks they write in the provider's place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from gateway.guardrails.engine import CONTENT_FILTER
from gateway.guardrails.model import Verdict

TEXT_FIELDS: Final = ("content", "reasoning_content", "refusal")
"""The fields of a streamed delta that carry text the model wrote."""
DONE: Final = b"data: [DONE]"


def blocked_output(guardrail: str, kind: str, score: float) -> Verdict:
    """The verdict of the guardrail that ended a stream."""
    return Verdict(
        guardrail=guardrail,
        kind=kind,
        direction="output",
        action="block",
        triggered=True,
        score=round(score, 4),
    )


class ChunkWriter:
    """Writes chunks that carry the `id`, `created` and `model` of the stream's last chunk."""

    __slots__ = ("_meta",)

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}

    def read(self, data: bytes) -> tuple[dict[str, Any], list[Any]] | None:
        """An event's chunk and its choices, noted as the stream's last; None when the data is
        no chunk with choices (the event then passes as it is)."""
        try:
            chunk = msgspec.json.decode(data)
            choices = chunk["choices"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return None
        self._meta = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
        return chunk, choices if isinstance(choices, list) else []

    def delta_event(self, index: int, delta: dict[str, Any]) -> bytes:
        return self._event([{"index": index, "delta": delta}])

    def filter_event(self, indices: Iterable[int]) -> bytes:
        """The final chunk of a blocked stream: every choice seen (or choice 0) finished with
        `content_filter`."""
        choices = [
            {"index": index, "delta": {}, "finish_reason": CONTENT_FILTER}
            for index in list(indices) or [0]
        ]
        return self._event(choices)

    def _event(self, choices: list[dict[str, Any]]) -> bytes:
        chunk = {**self._meta, "object": "chat.completion.chunk", "choices": choices}
        return b"data: " + msgspec.json.encode(chunk)
