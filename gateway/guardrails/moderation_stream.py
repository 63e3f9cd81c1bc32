"""Moderation guardrails over a streamed answer.

- `log`: the stream passes unchanged; each choice's texts are moderated once, whole, when the
  stream ends (the proxy asks once the response has ended), and the verdict is recorded.
- `block` and `mask`: each text of each choice is held back until `stream_chars` new
  characters have arrived (or the choice finishes); that segment is then moderated, together
  with up to `window_chars` of the text already sent before it (so a sentence cut by the segment
  edge is read whole), and released if clean. Flagged under `block`, the stream ends there with
  a `content_filter` chunk and `[DONE]`, the segment unsent; under `mask`, the segment goes out as
  a placeholder naming its categories and the stream goes on. A failed or timed-out call ends the
  stream as a block does (fail closed).

The price of holding back: the client sees text in segments, one moderation call late; a
segment costs one call, so an answer of 2,000 characters with `stream_chars: 400` costs five.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from gateway.guardrails.engine import Guardrail
from gateway.guardrails.model import Verdict
from gateway.guardrails.moderation import Moderation, ModerationCall
from gateway.guardrails.moderation_model import ModerationFailed, Rating, placeholder
from gateway.guardrails.stream_events import DONE, TEXT_FIELDS, ChunkWriter, blocked_output
from providers.openai_format import event_data


class _Text:
    __slots__ = ("pending", "sent")

    def __init__(self) -> None:
        self.sent = ""
        """What the client got of this text (placeholders included)."""
        self.pending = ""
        """What arrived and waits for its moderation."""


class _Tally:
    __slots__ = ("failure", "ratings", "seconds")

    def __init__(self) -> None:
        self.ratings: list[Rating] = []
        self.seconds = 0.0
        self.failure: ModerationFailed | None = None


class ModerationStream:
    """Rewrites one stream's events so that, under block or mask, only moderated text goes
    out; under log, keeps the texts to moderate when the stream ends."""

    def __init__(self, guardrails: Sequence[Guardrail], *, window_chars: int = 256) -> None:
        moderations = [g.moderation for g in guardrails if g.moderation is not None]
        self.holding = [m for m in moderations if m.guardrail.action != "log"]
        self.logging = [m for m in moderations if m.guardrail.action == "log"]
        self.window_chars = window_chars
        self.segment_chars = min((m.spec.stream_chars for m in self.holding), default=0)
        self.calls: list[ModerationCall] = []
        self.blocked: Verdict | None = None
        self._texts: dict[tuple[int, str], _Text] = {}
        self._whole: dict[tuple[int, str], list[str]] = {}
        self._tallies = {m.guardrail.name: _Tally() for m in self.holding}
        self._chunks = ChunkWriter()

    async def process(self, events: list[bytes]) -> tuple[list[bytes], bool]:
        """The events to send for one batch, and whether the stream ends here (blocked)."""
        out: list[bytes] = []
        for event in events:
            data = event_data(event)
            if data is None:
                out.append(event)
                continue
            if data == b"[DONE]":
                flushed = await self._flush_all()
                if flushed is None:
                    out.extend((self._chunks.filter_event(self._indices()), DONE))
                    return out, True
                out.extend(flushed)
                out.append(event)
                continue
            read = self._chunks.read(data)
            if read is None:
                out.append(event)
                continue
            chunk, choices = read
            changed = False
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if not isinstance(delta, dict):
                    continue
                index = choice.get("index", 0)
                finishing = choice.get("finish_reason") is not None
                for field in TEXT_FIELDS:
                    text = delta.get(field)
                    if isinstance(text, str) and text:
                        self._whole.setdefault((index, field), []).append(text)
                if not self.holding:
                    continue
                changed = True
                if not await self._hold(index, delta, finishing):
                    out.extend((self._chunks.filter_event(self._indices()), DONE))
                    return out, True
            out.append(b"data: " + msgspec.json.encode(chunk) if changed else event)
        return out, False

    async def _hold(self, index: int, delta: dict[str, Any], finishing: bool) -> bool:
        """Take a delta's texts into their segments and put back what may go; False when
        blocked."""
        keys = {(index, f) for f in TEXT_FIELDS if isinstance(delta.get(f), str) and delta[f]}
        if finishing:
            keys |= {key for key in self._texts if key[0] == index}
        for key in sorted(keys):
            text = self._texts.get(key)
            if text is None:
                text = self._texts[key] = _Text()
            text.pending += delta.get(key[1]) or ""
            delta[key[1]] = ""
            if finishing or len(text.pending) >= self.segment_chars:
                released = await self._release(text)
                if released is None:
                    return False
                delta[key[1]] = released
        return True

    async def _release(self, text: _Text) -> str | None:
        """Moderate a segment with its context; what goes out, or None when blocked."""
        if not text.pending:
            return ""
        context = text.sent[-self.window_chars :] if self.window_chars else ""
        segment = context + text.pending
        flagged: list[str] = []
        for moderation in self.holding:
            tally = self._tallies[moderation.guardrail.name]
            started = time.perf_counter()
            try:
                ratings = await moderation.rate([segment], "output", self.calls)
            except ModerationFailed as failure:
                tally.failure = failure
                tally.seconds += time.perf_counter() - started
                self._block(moderation, 0.0)
                return None
            tally.seconds += time.perf_counter() - started
            tally.ratings.extend(ratings)
            rating = ratings[0]
            if not rating.flagged:
                continue
            if moderation.guardrail.action == "block":
                self._block(moderation, rating.top)
                return None
            flagged.extend(c for c in rating.flagged if c not in flagged)
        released = placeholder(flagged) if flagged else text.pending
        text.sent += released
        text.pending = ""
        return released

    def _block(self, moderation: Moderation, score: float) -> None:
        spec = moderation.guardrail
        self.blocked = blocked_output(spec.name, spec.kind, score)

    async def _flush_all(self) -> list[bytes] | None:
        out = []
        for key in sorted(self._texts):
            piece = await self._release(self._texts[key])
            if piece is None:
                return None
            if piece:
                out.append(self._chunks.delta_event(key[0], {key[1]: piece}))
        return out

    async def verdicts(self) -> list[Verdict]:
        """The output verdicts once the stream has ended: the holding guardrails' from their
        segments, the logging ones' from one call over each whole text (made now)."""
        verdicts = []
        for moderation in self.holding:
            tally = self._tallies[moderation.guardrail.name]
            verdict = moderation.verdict("output", tally.ratings, time.perf_counter())
            if tally.failure is not None:
                verdict = moderation.verdict("output", [], time.perf_counter(), tally.failure)
            verdict.latency_us = tally.seconds * 1e6
            verdicts.append(verdict)
        texts = ["".join(parts) for _, parts in sorted(self._whole.items())]
        texts = [text for text in texts if text]
        for moderation in self.logging:
            started = time.perf_counter()
            try:
                ratings = await moderation.rate(texts, "output", self.calls)
            except ModerationFailed as failure:
                verdicts.append(moderation.verdict("output", [], started, failure))
                continue
            verdict = moderation.verdict("output", ratings, started)
            note = "checked when the stream ended: recorded, not enforced"
            verdict.reason = f"{verdict.reason}; {note}" if verdict.reason else note
            verdicts.append(verdict)
        return verdicts

    def _indices(self) -> list[int]:
        return sorted({index for index, _ in self._texts} | {index for index, _ in self._whole})
