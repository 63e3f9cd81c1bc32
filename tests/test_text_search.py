"""The test helpers that look for leaked values: found in every spelling, never inside another token."""

from __future__ import annotations

import json

import pytest

from tests.text_search import contains_number

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    "text",
    [
        "my card 4111 1111 1111 1111, thanks",
        '{"prompt": "4111111111111111"}',
        "card: 4111-1111-1111-1111.",
        json.dumps([{"content": f"pay with {CARD}"}]),
    ],
)
def test_a_card_number_is_found_however_it_is_written(text: str) -> None:
    assert contains_number(text, CARD)


@pytest.mark.parametrize(
    "text",
    [
        # The row that made the bare `"4111" not in dump` check fail: a latency.
        json.dumps({"latency_ms": 141117.9, "trace_id": "0191c3a4111b7e2f8c5d6e7f80912345"}),
        json.dumps({"duration_ms": 0.4111111111111111}),
        "recorded at 2025-01-14 12:30:05.411111 on line 4111",
        "41111111111111112",
        "id a4111111111111111f",
    ],
)
def test_digits_inside_other_tokens_do_not_count(text: str) -> None:
    assert not contains_number(text, CARD)


def test_a_bare_substring_check_would_have_matched_them() -> None:
    dump = json.dumps({"latency_ms": 141117.9})
    assert "4111" in dump
    assert not contains_number(dump, CARD)
