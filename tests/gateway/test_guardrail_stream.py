"""Output guardrails over streamed answers: events in, the events the client gets out."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.guardrails.checks import build_check
from gateway.guardrails.engine import Guardrail
from gateway.guardrails.masking import Masker
from gateway.guardrails.model import CheckContext, CheckResult, Finding, GuardrailSpec
from gateway.guardrails.stream import HOLD_CHARS, StreamGuard

CONTEXT = CheckContext(direction="output")
_CODE = re.compile(r"\bcode-\d{4}\b")


def _codes(text: str, context: CheckContext) -> CheckResult:
    """A small real check: `code-1234` anywhere is a finding."""
    found = tuple(Finding("CODE", m.start(), m.end(), 1.0) for m in _CODE.finditer(text))
    return CheckResult(findings=found)


def _guardrail(action: str, check: Any = _codes, name: str = "codes") -> Guardrail:
    spec = GuardrailSpec(name=name, kind="custom", action=action, direction="output")
    return Guardrail(spec, check)


def _events(pieces: list[str], *, finish: str = "stop", index: int = 0) -> list[bytes]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = [
        b"data: "
        + msgspec.json.encode(
            {**base, "choices": [{"index": index, "delta": {"role": "assistant", "content": ""}}]}
        )
    ]
    for piece in pieces:
        events.append(
            b"data: "
            + msgspec.json.encode(
                {**base, "choices": [{"index": index, "delta": {"content": piece}}]}
            )
        )
    events.append(
        b"data: "
        + msgspec.json.encode(
            {**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]}
        )
    )
    events.append(b"data: [DONE]")
    return events


def _run(guard: StreamGuard, events: list[bytes], batch: int = 1) -> tuple[str, list[Any], bool]:
    """Feed the events in batches; the text the client reads, its finish reasons, blocked."""
    sent: list[bytes] = []
    blocked = False
    for start in range(0, len(events), batch):
        out, blocked = guard.process(events[start : start + batch])
        sent.extend(out)
        if blocked:
            break
    text, finishes = [], []
    for event in sent:
        data = event.removeprefix(b"data: ")
        if data == b"[DONE]":
            continue
        for choice in msgspec.json.decode(data)["choices"]:
            text.append(choice["delta"].get("content") or "")
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])
    assert sent[-1] == b"data: [DONE]"
    return "".join(text), finishes, blocked


def test_without_findings_the_text_passes_unchanged() -> None:
    guard = StreamGuard([_guardrail("block")], CONTEXT)
    pieces = ["Hello", " there,", " how", " are", " you?"]
    text, finishes, blocked = _run(guard, _events(pieces))
    assert (text, finishes, blocked) == ("Hello there, how are you?", ["stop"], False)
    (verdict,) = guard.verdicts()
    assert verdict.outcome == "pass"


def test_block_stops_before_the_violating_text_even_split_across_chunks() -> None:
    guard = StreamGuard([_guardrail("block")], CONTEXT, hold_chars=16)
    opening = [" word"] * 12
    pieces = ["The", *opening, " door", " code", " is", " co", "de-", "12", "34", " ok", " bye"]
    text, finishes, blocked = _run(guard, _events(pieces))
    assert blocked
    assert finishes == ["content_filter"]
    assert "code-" not in text and "12" not in text
    assert text.startswith("The word word")  # what came well before the value went out
    (verdict,) = guard.verdicts()
    assert verdict.triggered and verdict.outcome == "blocked"


def test_mask_holds_back_and_masks_a_value_split_across_chunks() -> None:
    def check(text: str, context: CheckContext) -> CheckResult:
        return _codes(text, context)

    guardrail = _guardrail("mask", check)
    guard = StreamGuard([guardrail], CONTEXT, masker=Masker("type", b"k"))
    pieces = ["Use", " co", "de", "-", "98", "76", " to", " enter", " and", " code-1111", "."]
    for batch in (1, 3, 20):
        guard = StreamGuard([guardrail], CONTEXT, masker=Masker("type", b"k"))
        text, finishes, blocked = _run(guard, _events(pieces), batch=batch)
        assert text == "Use <CODE> to enter and <CODE>."
        assert finishes == ["stop"] and not blocked
        (verdict,) = guard.verdicts()
        assert verdict.entities == {"CODE": 2}
        assert verdict.outcome == "masked"


def test_holding_back_releases_everything_by_the_end() -> None:
    guard = StreamGuard([_guardrail("mask")], CONTEXT, masker=Masker("type", b"k"))
    long_text = "word " * (HOLD_CHARS // 2)
    pieces = long_text.split(" ")
    text, _, _ = _run(guard, _events([p + " " for p in pieces if p]))
    assert text == "".join(p + " " for p in pieces if p)


def test_unmask_restores_tokens_split_across_chunks() -> None:
    masker = Masker("hash", b"secret")
    masked = masker.mask("write to code-4321 now", [Finding("CODE", 9, 18)])
    token = masked[9:-4]
    assert token.startswith("<CODE_")
    pieces = ["Sure, ", "I ", "wrote ", "to ", token[:5], token[5:11], token[11:], " today."]
    guard = StreamGuard([], CONTEXT, unmasker=masker)
    text, finishes, _ = _run(guard, _events(pieces))
    assert text == "Sure, I wrote to code-4321 today."
    assert finishes == ["stop"]


def test_log_changes_nothing_and_records_at_the_end() -> None:
    guard = StreamGuard([_guardrail("log")], CONTEXT)
    pieces = ["a ", "code-5555 ", "b"]
    text, _, blocked = _run(guard, _events(pieces))
    assert text == "a code-5555 b" and not blocked
    (verdict,) = guard.verdicts()
    assert verdict.triggered and verdict.outcome == "flagged"
    assert verdict.entities == {"CODE": 1}


def test_each_finding_is_counted_once_however_often_the_window_sees_it() -> None:
    guard = StreamGuard([_guardrail("log")], CONTEXT, window_chars=1000)
    pieces = ["code-1000"] + [" more"] * 30 + [" code-2000"]
    _run(guard, _events(pieces))
    (verdict,) = guard.verdicts()
    assert verdict.entities == {"CODE": 2}


def test_whole_answer_checks_run_at_the_end_and_are_recorded_only() -> None:
    spec = GuardrailSpec(name="schema", kind="json_schema", action="block", direction="output")
    guardrail = Guardrail(spec, build_check(spec))
    context = CheckContext(
        direction="output",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object", "required": ["a"]}},
        },
    )
    guard = StreamGuard([guardrail], context)
    text, finishes, blocked = _run(guard, _events(['{"b"', ": 1}"]))
    assert text == '{"b": 1}' and not blocked and finishes == ["stop"]
    (verdict,) = guard.verdicts()
    assert verdict.triggered
    assert verdict.action == "log"
    assert "recorded, not enforced" in verdict.reason


def test_a_provider_that_ends_without_a_finish_reason_still_gets_its_tail() -> None:
    guard = StreamGuard([_guardrail("mask")], CONTEXT, masker=Masker("type", b"k"))
    events = _events(["short ", "answer"])
    events = [e for e in events if b"finish_reason" not in e]
    text, _, _ = _run(guard, events)
    assert text == "short answer"


def test_two_choices_are_guarded_separately() -> None:
    guard = StreamGuard([_guardrail("mask")], CONTEXT, masker=Masker("type", b"k"))
    first = _events(["a code-", "1234"], index=0)[1:-1]
    second = _events(["b code-", "9999"], index=1)[1:-1]
    interleaved = [first[0], second[0], first[1], second[1], first[2], second[2], b"data: [DONE]"]
    sent: list[bytes] = []
    for event in interleaved:
        sent.extend(guard.process([event])[0])
    texts: dict[int, str] = {0: "", 1: ""}
    for event in sent[:-1]:
        for choice in msgspec.json.decode(event.removeprefix(b"data: "))["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts == {0: "a <CODE>", 1: "b <CODE>"}


def test_a_guardrail_with_nothing_to_read_is_not_active() -> None:
    assert not StreamGuard([], CONTEXT).active
    assert StreamGuard([_guardrail("log")], CONTEXT).active


def _call_events(pieces: list[str], *, content: str | None = None) -> list[bytes]:
    """A streamed tool call: its id and name first, then the arguments piece by piece."""
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return b"data: " + msgspec.json.encode({**base, "choices": [choice]})

    header = {"index": 0, "id": "call_1", "type": "function"}
    events = [event({"role": "assistant", "content": content})]
    events.append(
        event({"tool_calls": [{**header, "function": {"name": "send", "arguments": ""}}]})
    )
    events.extend(
        event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in pieces
    )
    events.append(event({}, "tool_calls"))
    events.append(b"data: [DONE]")
    return events


def _sent_choices(guard: StreamGuard, events: list[bytes]) -> list[dict[str, Any]]:
    """The choices of every event the guard lets out, fed one event at a time."""
    choices: list[dict[str, Any]] = []
    for event in events:
        out, blocked = guard.process([event])
        for sent in out:
            data = sent.removeprefix(b"data: ")
            if data != b"[DONE]":
                choices += msgspec.json.decode(data)["choices"]
        if blocked:
            break
    return choices


def _run_calls(guard: StreamGuard, events: list[bytes]) -> tuple[str, str, list[str], int]:
    """The events through the guard, read back as a client would: the call's name, its
    arguments joined up, the finish reasons, and how many events carried argument text."""
    name, arguments, finishes, carrying = "", "", [], 0
    for choice in _sent_choices(guard, events):
        for call in choice["delta"].get("tool_calls") or ():
            function = call.get("function") or {}
            name += function.get("name") or ""
            arguments += function.get("arguments") or ""
            carrying += bool(function.get("arguments"))
        if choice.get("finish_reason"):
            finishes.append(choice["finish_reason"])
    return name, arguments, finishes, carrying


ARGUMENT_PIECES = ['{"to": "co', "de-12", '34", "n": 1', "}"]


def test_tool_call_arguments_are_held_and_masked_whole() -> None:
    guard = StreamGuard([_guardrail("mask")], CONTEXT, masker=Masker("type", b"k"))
    name, arguments, finishes, carrying = _run_calls(guard, _call_events(ARGUMENT_PIECES))
    assert name == "send"
    assert msgspec.json.decode(arguments) == {"to": "<CODE>", "n": 1}
    assert (finishes, carrying) == (["tool_calls"], 1)
    assert guard.verdicts()[0].entities == {"CODE": 1}


def test_tool_call_arguments_that_violate_end_the_stream() -> None:
    guard = StreamGuard([_guardrail("block")], CONTEXT)
    _, arguments, finishes, _ = _run_calls(guard, _call_events(ARGUMENT_PIECES))
    assert "code" not in arguments
    assert finishes == ["content_filter"]
    assert guard.blocked is not None


def test_logged_tool_call_arguments_pass_as_they_come() -> None:
    guard = StreamGuard([_guardrail("log")], CONTEXT)
    _, arguments, finishes, carrying = _run_calls(guard, _call_events(ARGUMENT_PIECES))
    assert arguments == "".join(ARGUMENT_PIECES)
    assert (finishes, carrying) == (["tool_calls"], len(ARGUMENT_PIECES))
    (verdict,) = guard.verdicts()
    assert verdict.triggered and verdict.entities == {"CODE": 1}


def test_hash_tokens_in_tool_call_arguments_are_unmasked() -> None:
    masker = Masker("hash", b"k")
    token = masker.mask('code-1234 "quoted"', [Finding("CODE", 0, 18, 1.0)])
    pieces = ['{"to": "', token[:5], token[5:], '"}']
    guard = StreamGuard([], CONTEXT, unmasker=masker)
    _, arguments, finishes, _ = _run_calls(guard, _call_events(pieces))
    assert msgspec.json.decode(arguments) == {"to": 'code-1234 "quoted"'}
    assert finishes == ["tool_calls"]


def test_a_provider_that_ends_without_a_finish_reason_still_sends_the_arguments() -> None:
    guard = StreamGuard([_guardrail("mask")], CONTEXT, masker=Masker("type", b"k"))
    events = [e for e in _call_events(ARGUMENT_PIECES) if b'finish_reason":"tool_calls' not in e]
    _, arguments, finishes, _ = _run_calls(guard, events)
    assert msgspec.json.decode(arguments) == {"to": "<CODE>", "n": 1}
    assert finishes == []


def _reasoning_events(reasoning: list[str], content: list[str]) -> list[bytes]:
    base = {"id": "chatcmpl-3", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return b"data: " + msgspec.json.encode({**base, "choices": [choice]})

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"reasoning_content": piece}) for piece in reasoning]
    events += [event({"content": piece}) for piece in content]
    return [*events, event({}, "stop"), b"data: [DONE]"]


def _read_fields(guard: StreamGuard, events: list[bytes]) -> tuple[str, str, list[str]]:
    reasoning, content, finishes = "", "", []
    for choice in _sent_choices(guard, events):
        reasoning += choice["delta"].get("reasoning_content") or ""
        content += choice["delta"].get("content") or ""
        if choice.get("finish_reason"):
            finishes.append(choice["finish_reason"])
    return reasoning, content, finishes


def test_streamed_reasoning_is_masked_on_its_own() -> None:
    guard = StreamGuard([_guardrail("mask")], CONTEXT, masker=Masker("type", b"k"))
    events = _reasoning_events(["the user said co", "de-12", "34 so"], ["code", "-9999 ok"])
    reasoning, content, finishes = _read_fields(guard, events)
    assert (reasoning, content) == ("the user said <CODE> so", "<CODE> ok")
    assert finishes == ["stop"]
    assert guard.verdicts()[0].entities == {"CODE": 2}


def test_a_violation_in_streamed_reasoning_ends_the_stream() -> None:
    guard = StreamGuard([_guardrail("block")], CONTEXT)
    reasoning, content, finishes = _read_fields(
        guard, _reasoning_events(["think about code-", "1234 now"], ["never sent"])
    )
    assert "1234" not in reasoning and content == ""
    assert finishes == ["content_filter"]


def _raises(text: str, context: CheckContext) -> CheckResult:
    raise RuntimeError(f"cannot read {text}")


def test_a_check_that_fails_ends_the_stream_unless_it_only_logs() -> None:
    events = _events(["one two ", "three four"])
    guard = StreamGuard([_guardrail("mask", _raises)], CONTEXT, masker=Masker("type", b"k"))
    text, finishes, blocked = _run(guard, events)
    assert (text, finishes, blocked) == ("", ["content_filter"], True)
    (verdict,) = guard.verdicts()
    assert verdict.failed and verdict.outcome == "error"
    assert "RuntimeError" in verdict.reason and "one" not in verdict.reason

    guard = StreamGuard([_guardrail("log", _raises)], CONTEXT)
    text, finishes, blocked = _run(guard, events)
    assert (text, finishes, blocked) == ("one two three four", ["stop"], False)
    assert guard.verdicts()[0].failed


def test_a_whole_answer_check_that_fails_is_recorded() -> None:
    spec = GuardrailSpec(name="schema", kind="json_schema", action="block", direction="output")
    guard = StreamGuard([Guardrail(spec, _raises)], CONTEXT)
    text, finishes, _ = _run(guard, _events(["{}"]))
    assert (text, finishes) == ("{}", ["stop"])
    (verdict,) = guard.verdicts()
    assert verdict.failed and "RuntimeError" in verdict.reason
