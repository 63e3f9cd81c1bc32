"""Content redaction: which strings of a stored prompt or response count as text."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from telemetry.redaction import redact_bundles, redact_content
from tests.telemetry import make_bundle


def shout(text: str) -> str:
    return f"<{text.upper()}>"


def no_digits(text: str) -> str:
    return re.sub(r"\d", "#", text)


def test_chat_messages_with_string_content() -> None:
    prompt = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "alice", "content": "call me at 555"},
    ]
    assert redact_content(prompt, shout) == [
        {"role": "system", "content": "<YOU ARE TERSE.>"},
        {"role": "user", "name": "alice", "content": "<CALL ME AT 555>"},
    ]


def test_content_parts_redact_text_and_leave_images_and_audio_alone() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}}
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    prompt = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "what is this?"}, image, audio],
        }
    ]
    (message,) = redact_content(prompt, shout)
    assert message["role"] == "user"
    assert message["content"] == [{"type": "text", "text": "<WHAT IS THIS?>"}, image, audio]


def test_tool_calls_keep_ids_and_names_but_not_their_arguments() -> None:
    prompt = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"phone": "555"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "found 555"},
    ]
    call, reply = redact_content(prompt, shout)
    assert call["content"] is None
    assert call["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '<{"PHONE": "555"}>'},
        }
    ]
    assert reply == {"role": "tool", "tool_call_id": "call_1", "content": "<FOUND 555>"}


def test_responses_redact_answers_and_refusals() -> None:
    answers = [
        {"role": "assistant", "content": "it is 42", "refusal": None},
        {"role": "assistant", "content": None, "refusal": "cannot say 42"},
    ]
    assert redact_content(answers, no_digits) == [
        {"role": "assistant", "content": "it is ##", "refusal": None},
        {"role": "assistant", "content": None, "refusal": "cannot say ##"},
    ]
    streamed = [{"index": 0, "content": "call 555"}, {"index": 1, "content": "or 556"}]
    assert redact_content(streamed, no_digits) == [
        {"index": 0, "content": "call ###"},
        {"index": 1, "content": "or ###"},
    ]


@pytest.mark.parametrize(
    ("embedding_input", "expected"),
    [
        pytest.param("room 101", "room ###", id="string"),
        pytest.param(["room 101", "floor 2"], ["room ###", "floor #"], id="strings"),
        pytest.param([101, 2, 3], [101, 2, 3], id="tokens"),
        pytest.param([[101, 2], [3]], [[101, 2], [3]], id="token-arrays"),
    ],
)
def test_embedding_inputs(embedding_input: Any, expected: Any) -> None:
    assert redact_content(embedding_input, no_digits) == expected


def test_the_original_is_left_unchanged() -> None:
    prompt = [{"role": "user", "content": [{"type": "text", "text": "pin 1234"}]}]
    before = copy.deepcopy(prompt)
    redact_content(prompt, no_digits)
    assert prompt == before


def test_errors_from_redact_propagate() -> None:
    def broken(text: str) -> str:
        raise RuntimeError("scanner down")

    with pytest.raises(RuntimeError):
        redact_content([{"role": "user", "content": "x"}], broken)
    assert redact_content([{"role": "user", "content": None}], broken) == [
        {"role": "user", "content": None}
    ]


def test_bundles_get_new_interactions_and_failed_values_become_none() -> None:
    def picky(text: str) -> str:
        if "boom" in text:
            raise ValueError(f"cannot scan {text}")
        return no_digits(text)

    bundle = make_bundle()
    interaction = bundle.interactions[0]
    interaction.prompt = [{"role": "user", "content": "boom 1"}]
    interaction.response = [{"role": "assistant", "content": "ok 2"}]
    untouched = make_bundle()
    untouched.interactions[0].prompt = None

    (redacted, same), failures = redact_bundles([bundle, untouched], picky)
    assert failures == ["ValueError"]
    assert redacted.interactions[0].prompt is None
    assert redacted.interactions[0].response == [{"role": "assistant", "content": "ok #"}]
    assert redacted.trace is bundle.trace
    assert interaction.prompt == [{"role": "user", "content": "boom 1"}]  # original kept
    assert same is untouched
