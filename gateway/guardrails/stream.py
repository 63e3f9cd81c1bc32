"""Output guardrails over a streamed answer, chunk by chunk.

Each text of each choice (its `content`, and the `reasoning_content` and `refusal` some servers
stream) is kept as it arrives, on its own. After every batch of events the output checks re-read
a sliding window: the text not yet sent plus up to `window_chars` already sent before it, so a
value split across chunks is still seen whole. What happens next depends on the actions:

- `block` and `mask` hold back the last `hold_chars` characters (`HOLD_CHARS` by default) until
  more text arrives or the choice finishes, so a value still arriving is not sent in part before
  it can be recognised (a value longer than the hold can be).
- `block`: a finding that reaches into text not yet sent ends the stream there: no more text, a
  final chunk with `finish_reason: content_filter`, then `[DONE]`. The violating text is never
  sent (earlier text, checked clean at the time, was).
- `mask` (and `unmask` of the input's hash tokens): the release point never cuts through a
  finding or a token, so values are masked (or unmasked) whole.
- `log`: nothing changes in the stream; the verdicts are recorded when it ends.

Tool-call arguments are checked whole, when their choice finishes: arguments are JSON, and a
value in them is only readable (and maskable without breaking the JSON) once the call is complete.
With `block`, `mask` or `unmask` the argument text is held back until then and sent as one delta
(the calls' ids and names go out as they come); with `log` only, it passes as it arrives.

Checks that read the whole answer (`json_schema`) run when the stream ends; by then everything has
been sent, so they are recorded, never enforced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from gateway.guardrails.arguments import ToolArguments
from gateway.guardrails.engine import Guardrail
from gateway.guardrails.model import CheckContext, CheckResult, Finding, Verdict, count_kinds
from gateway.guardrails.stream_events import DONE, TEXT_FIELDS, ChunkWriter, blocked_output
from providers.openai_format import event_data

logger = logging.getLogger("steerway.guardrails")

HOLD_CHARS: Final = 64


class _ChoiceText:
    __slots__ = ("sent", "text")

    def __init__(self) -> None:
        self.text = ""
        self.sent = 0
        """How much of `text` (the provider's text) has been released to the client."""


class _CallArguments:
    __slots__ = ("done", "text")

    def __init__(self) -> None:
        self.text = ""
        self.done = False


class _Tally:
    """What one guardrail found over the whole stream, each finding counted once."""

    __slots__ = ("best", "failure", "findings", "reasons", "seconds")

    def __init__(self) -> None:
        self.best = 0.0
        self.findings: dict[tuple[object, int, int, str], Finding] = {}
        """By where (a choice's text, or one string in a tool call's arguments) and position."""
        self.reasons: list[str] = []
        self.seconds = 0.0
        self.failure: str | None = None
        """The type of the first exception the check raised, if it ever did."""

    def check(self, guardrail: Guardrail, text: str, context: CheckContext) -> CheckResult | None:
        """Run the guardrail's check over `text`, timed; its result when it triggers (with its
        reason noted), else None. An exception is noted in `failure`, never raised: the stream
        is already going out."""
        started = time.perf_counter()
        try:
            result = guardrail.check(text, context)
        except Exception as error:  # a custom check may raise anything
            self.seconds += time.perf_counter() - started
            if self.failure is None:
                self.failure = type(error).__name__
                logger.warning(
                    "guardrail %r failed on a streamed answer: %s", guardrail.name, self.failure
                )
            return None
        self.seconds += time.perf_counter() - started
        score = result.overall
        if not (score > 0 and score >= guardrail.spec.threshold):
            return None
        if result.reason and result.reason not in self.reasons:
            self.reasons.append(result.reason)
        return result


class StreamGuard:
    """Rewrites one stream's events so that what reaches the client has passed the checks."""

    def __init__(
        self,
        guardrails: Sequence[Guardrail],
        context: CheckContext,
        *,
        unmasker: Any | None = None,
        masker: Any | None = None,
        window_chars: int = 256,
        hold_chars: int = HOLD_CHARS,
    ) -> None:
        self.text_checks = [g for g in guardrails if g.reads_text]
        self.end_checks = [g for g in guardrails if not g.reads_text]
        self.context = context
        self.unmasker = unmasker
        self.masker = masker
        self.window_chars = window_chars
        self.hold_chars = hold_chars
        self.holds = unmasker is not None or any(g.spec.action != "log" for g in self.text_checks)
        self.blocked: Verdict | None = None
        self._choices: dict[tuple[int, str], _ChoiceText] = {}
        """Each text of each choice so far, by (choice index, field)."""
        self._calls: dict[tuple[int, int], _CallArguments] = {}
        """Each tool call's arguments so far, by (choice index, tool-call index)."""
        self._tallies = {g.name: _Tally() for g in self.text_checks}
        self._chunks = ChunkWriter()

    @property
    def active(self) -> bool:
        return bool(self.text_checks or self.end_checks or self.unmasker is not None)

    def process(self, events: list[bytes]) -> tuple[list[bytes], bool]:
        """The events to send for one batch, and whether the stream is to end here (blocked)."""
        out: list[bytes] = []
        for event in events:
            data = event_data(event)
            if data is None:
                out.append(event)
                continue
            if data == b"[DONE]":
                flushed = self._flush_all()
                if flushed is None:
                    out.append(self._chunks.filter_event(self._indices()))
                    out.append(DONE)
                    return out, True
                out.extend(flushed)
                out.append(event)
                continue
            read = self._chunks.read(data)
            if read is None:
                out.append(event)
                continue
            chunk, choices = read
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", 0)
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    continue
                passed = self._pass_texts(index, delta)
                if passed:
                    self._take_arguments(index, delta.get("tool_calls"))
                if passed and choice.get("finish_reason") is not None:
                    passed = self._finish_texts(index, delta)
                    calls = self._release_calls(index) if passed else None
                    if calls is None:
                        passed = False
                    elif calls:
                        out.append(self._chunks.delta_event(index, {"tool_calls": calls}))
                if not passed:
                    out.append(self._chunks.filter_event(self._indices()))
                    out.append(DONE)
                    return out, True
            out.append(b"data: " + msgspec.json.encode(chunk))
        return out, False

    def _pass_texts(self, index: int, delta: dict[str, Any]) -> bool:
        """Replace each text of a delta by what may be released of it; False when blocked."""
        for field in TEXT_FIELDS:
            text = delta.get(field)
            if isinstance(text, str) and text:
                released = self._feed((index, field), text)
                if released is None:
                    return False
                delta[field] = released
        return True

    def _finish_texts(self, index: int, delta: dict[str, Any]) -> bool:
        """Add what was still held of a finishing choice's texts; False when blocked."""
        for key in sorted(k for k in self._choices if k[0] == index):
            tail = self._release(key, final=True)
            if tail is None:
                return False
            if tail:
                delta[key[1]] = (delta.get(key[1]) or "") + tail
        return True

    def verdicts(self) -> list[Verdict]:
        """The output verdicts, once the stream has ended (or been blocked)."""
        verdicts = []
        for guardrail in self.text_checks:
            tally = self._tallies[guardrail.name]
            spec = guardrail.spec
            triggered = tally.best > 0 and tally.best >= spec.threshold
            blocked = self.blocked is not None and self.blocked.guardrail == spec.name
            noted = tally.reasons
            if tally.failure is not None:
                noted = [*noted, f"the check failed ({tally.failure})"]
            verdicts.append(
                Verdict(
                    guardrail=spec.name,
                    kind=spec.kind,
                    direction="output",
                    action=spec.action,
                    triggered=triggered or (blocked and tally.failure is None),
                    score=round(tally.best, 4),
                    entities=count_kinds(list(tally.findings.values())),
                    latency_us=tally.seconds * 1e6,
                    reason="; ".join(noted),
                    failed=tally.failure is not None,
                )
            )
        for guardrail in self.end_checks:
            spec = guardrail.spec
            started = time.perf_counter()
            texts = [
                text.text for key, text in sorted(self._choices.items()) if key[1] == "content"
            ] or [""]
            best = 0.0
            findings: list[Finding] = []
            reasons: list[str] = []
            failure = None
            for text in texts:
                try:
                    result = guardrail.check(text, self.context)
                except Exception as error:  # recorded as the check's failure, like any other
                    failure = type(error).__name__
                    logger.warning(
                        "guardrail %r failed on a streamed answer: %s", guardrail.name, failure
                    )
                    break
                best = max(best, result.overall)
                findings.extend(result.findings)
                if result.reason:
                    reasons.append(result.reason)
            if failure is not None:
                reasons.append(f"the check failed ({failure})")
            reasons.append("checked when the stream ended: recorded, not enforced")
            verdicts.append(
                Verdict(
                    guardrail=spec.name,
                    kind=spec.kind,
                    direction="output",
                    action="log",
                    triggered=best > 0 and best >= spec.threshold,
                    score=round(best, 4),
                    entities=count_kinds(findings),
                    latency_us=(time.perf_counter() - started) * 1e6,
                    reason="; ".join(reasons),
                    failed=failure is not None,
                )
            )
        return verdicts

    def _feed(self, key: tuple[int, str], text: str) -> str | None:
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = _ChoiceText()
        choice.text += text
        return self._release(key, final=False)

    def _release(self, key: tuple[int, str], *, final: bool) -> str | None:
        """Check the window of one text of one choice and release what may go; None when
        blocked."""
        choice = self._choices.get(key)
        if choice is None:
            return ""
        base = max(0, choice.sent - self.window_chars)
        window = choice.text[base:]
        masks: list[Finding] = []
        for guardrail in self.text_checks:
            spec = guardrail.spec
            tally = self._tallies[spec.name]
            result = tally.check(guardrail, window, self.context)
            if tally.failure is not None and spec.action != "log":
                self._block(spec.name, spec.kind, 0.0)  # fail closed, as on a whole answer
                return None
            if result is None:
                continue
            score = result.overall
            fresh = []
            for found in result.findings:
                if found.score < spec.threshold:
                    continue
                placed = Finding(found.kind, found.start + base, found.end + base, found.score)
                tally.findings.setdefault((key, placed.start, placed.end, placed.kind), placed)
                if placed.end > choice.sent:
                    fresh.append(placed)
            if not fresh and result.findings:
                continue  # all of it was found (and handled) before
            tally.best = max(tally.best, score)
            if spec.action == "block":
                self._block(spec.name, spec.kind, score)
                return None
            if spec.action == "mask":
                masks.extend(fresh)
        cut = len(choice.text)
        if self.holds and not final:
            cut = max(choice.sent, cut - self.hold_chars)
            for found in masks:
                if found.start < cut < found.end:
                    cut = max(choice.sent, found.start)
            if self.unmasker is not None:
                cut -= self.unmasker.held_back(choice.text[choice.sent : cut])
        if cut <= choice.sent:
            return ""
        piece = choice.text[choice.sent : cut]
        inside = [
            Finding(f.kind, f.start - choice.sent, f.end - choice.sent, f.score)
            for f in masks
            if f.start >= choice.sent and f.end <= cut
        ]
        if inside and self.masker is not None:
            piece = self.masker.mask(piece, inside)
        if self.unmasker is not None:
            piece = self.unmasker.unmask(piece)
        choice.sent = cut
        return piece

    def _take_arguments(self, index: int, calls: Any) -> None:
        """Keep the argument text of a delta's tool calls; hold it back when the checks may
        change or stop it."""
        if not isinstance(calls, list) or not (self.text_checks or self.unmasker is not None):
            return
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                continue
            tool = call.get("index", 0)
            key = (index, tool if isinstance(tool, int) else 0)
            arguments = self._calls.get(key)
            if arguments is None:
                arguments = self._calls[key] = _CallArguments()
            arguments.text += function["arguments"]
            if self.holds:
                function["arguments"] = ""

    def _release_calls(self, index: int) -> list[dict[str, Any]] | None:
        """Check the tool calls of a finished choice whole: the argument deltas to send now
        (when they were held back), or None when a guardrail blocks them."""
        pieces = []
        for (choice, tool), call in sorted(self._calls.items()):
            if choice != index or call.done:
                continue
            call.done = True
            function = {"arguments": call.text}
            arguments = ToolArguments(function)
            for guardrail in self.text_checks:
                if not self._check_arguments(guardrail, arguments, (index, tool)):
                    return None
            if self.unmasker is not None:
                arguments.rewrite(self.unmasker.unmask)  # commits the masks too
            else:
                arguments.commit()
            if self.holds:
                pieces.append({"index": tool, "function": {"arguments": function["arguments"]}})
        return pieces

    def _check_arguments(
        self, guardrail: Guardrail, arguments: ToolArguments, call: tuple[int, int]
    ) -> bool:
        """One guardrail over one tool call's texts, masking in place; False when it blocks."""
        spec = guardrail.spec
        tally = self._tallies[spec.name]
        for number, (container, key) in enumerate(arguments.places):
            text = container[key]
            result = tally.check(guardrail, text, self.context)
            if tally.failure is not None and spec.action != "log":
                self._block(spec.name, spec.kind, 0.0)
                return False
            if result is None:
                continue
            score = result.overall
            tally.best = max(tally.best, score)
            kept = [f for f in result.findings if f.score >= spec.threshold]
            kept = kept or list(result.findings)
            for found in kept:
                tally.findings.setdefault(
                    ((*call, number), found.start, found.end, found.kind), found
                )
            if spec.action == "block":
                self._block(spec.name, spec.kind, score)
                return False
            if spec.action == "mask" and kept and self.masker is not None:
                container[key] = self.masker.mask(text, kept)
        return True

    def _block(self, name: str, kind: str, score: float) -> None:
        self.blocked = blocked_output(name, kind, score)

    def _flush_all(self) -> list[bytes] | None:
        """What is still held when the provider ends without a finish reason on every choice;
        None when a guardrail blocks it."""
        out = []
        for key in sorted(self._choices):
            piece = self._release(key, final=True)
            if piece is None:
                return None
            if piece:
                out.append(self._chunks.delta_event(key[0], {key[1]: piece}))
        for index in self._indices():
            calls = self._release_calls(index)
            if calls is None:
                return None
            if calls:
                out.append(self._chunks.delta_event(index, {"tool_calls": calls}))
        return out

    def _indices(self) -> list[int]:
        return sorted({index for index, _ in self._choices} | {index for index, _ in self._calls})
