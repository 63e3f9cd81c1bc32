from typing import Any

import pytest

from providers.openai_format import read_chunk
from providers.usage import (
    MEDIA_PART_TOKENS,
    Usage,
    estimated_prompt_tokens,
    estimated_usage,
    requested_output,
)


def test_an_estimate_rounds_the_streamed_characters_up_to_tokens() -> None:
    assert estimated_usage(12, 0) == Usage(12, 0, None, 12)
    assert estimated_usage(12, 1) == Usage(12, 1, None, 13)
    assert estimated_usage(12, 8) == Usage(12, 2, None, 14)
    assert estimated_usage(12, 9) == Usage(12, 3, None, 15)


def test_streamed_characters_count_content_and_tool_calls() -> None:
    text = read_chunk(
        b'{"choices": [{"index": 0, "delta": {"content": "hello"}},'
        b' {"index": 1, "delta": {"content": "hi"}}]}'
    )
    assert (text.output_chars, text.has_output) == (7, True)
    call = read_chunk(
        b'{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,'
        b' "function": {"name": "lookup", "arguments": "{\\"q\\": 1}"}}]}}]}'
    )
    assert (call.output_chars, call.has_output) == (len("lookup") + len('{"q": 1}'), True)
    odd = read_chunk(b'{"choices": [{"delta": {"tool_calls": [7, {"function": null}]}}]}')
    assert odd.output_chars == 0
    finish = read_chunk(b'{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}')
    assert (finish.output_chars, finish.has_output) == (0, False)


def test_a_prompt_estimate_counts_media_parts_not_their_inline_data() -> None:
    image = "data:image/png;base64," + "A" * 400_000
    audio = "B" * 80_000
    payload = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": image}},
                    {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                    {"type": "file", "file": {"file_data": "C" * 4_000}},
                    {"type": "image_url", "image_url": "https://example.com/cat.png"},
                ],
            },
            "junk",
        ]
    }
    body_size = 400_000 + 80_000 + 4_000 + 1_000
    other = body_size - len(image) - len(audio) - 4_000 - len("https://example.com/cat.png")
    assert estimated_prompt_tokens(payload, body_size) == other // 4 + 4 * MEDIA_PART_TOKENS
    assert estimated_prompt_tokens({"messages": [{"content": "hi"}]}, 400) == 100
    assert estimated_prompt_tokens({}, 0) == 1


def test_an_estimate_takes_what_the_provider_reported_before_the_cut() -> None:
    early = Usage(prompt_tokens=1_200, completion_tokens=1, cached_tokens=1_000)
    assert estimated_usage(50, 40, reported=early) == Usage(1_200, 10, 1_000, 1_210)
    running = Usage(prompt_tokens=30, completion_tokens=25)
    assert estimated_usage(50, 40, reported=running) == Usage(30, 25, None, 55)
    assert estimated_usage(50, 40, reported=Usage(completion_tokens=3)) == Usage(50, 10, None, 60)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, (None, 1)),
        ({"max_tokens": 100, "n": 3}, (100, 3)),
        ({"max_tokens": 100, "max_completion_tokens": 50}, (50, 1)),
        ({"max_tokens": -100_000}, (None, 1)),
        ({"max_completion_tokens": -5, "max_tokens": 7}, (None, 1)),
        ({"max_tokens": 0, "n": 0}, (None, 1)),
        ({"max_tokens": True, "n": True}, (None, 1)),
        ({"max_tokens": 1.5, "n": 2.0}, (None, 1)),
        ({"max_tokens": 2**31, "n": 129}, (None, 1)),
        ({"max_tokens": "512", "n": "2"}, (None, 1)),
    ],
)
def test_requested_output_counts_only_whole_numbers_in_range(
    payload: dict[str, Any], expected: tuple[int | None, int]
) -> None:
    assert requested_output(payload) == expected
