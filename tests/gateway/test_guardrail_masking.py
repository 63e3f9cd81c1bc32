"""Masking: type and hash tokens, unmasking, overlaps, what a streaming caller holds back, and
redaction with the real PII scanner."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re

import pytest

from gateway.guardrails.masking import Masker, redact
from gateway.guardrails.model import Finding
from gateway.guardrails.pii import PiiScanner

SECRET = b"test-secret"
TEXT = "Mail jane@example.com or bob@example.org, then jane@example.com again."
JANE_1 = Finding("EMAIL_ADDRESS", 5, 21, 1.0)
BOB = Finding("EMAIL_ADDRESS", 25, 40, 1.0)
JANE_2 = Finding("EMAIL_ADDRESS", 47, 63, 1.0)
FINDINGS = (JANE_1, BOB, JANE_2)
HASH_TOKEN = re.compile(r"<EMAIL_ADDRESS_[0-9a-f]{8}>")


def expected_token(kind: str, value: str, secret: bytes = SECRET) -> str:
    digest = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
    return f"<{kind}_{digest[:8]}>"


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


# --- type -------------------------------------------------------------------------------------


def test_type_tokens_name_the_kind() -> None:
    masked = Masker("type").mask(TEXT, FINDINGS)
    assert masked == "Mail <EMAIL_ADDRESS> or <EMAIL_ADDRESS>, then <EMAIL_ADDRESS> again."


def test_type_tokens_cannot_be_unmasked() -> None:
    masker = Masker()
    masked = masker.mask(TEXT, FINDINGS)
    assert masker.unmask(masked) == masked


def test_no_findings_leave_the_text_alone() -> None:
    assert Masker().mask(TEXT, []) == TEXT
    assert Masker("hash").mask(TEXT, [Finding("role_override", 0, 0, 0.9)]) == TEXT


# --- hash -------------------------------------------------------------------------------------


def test_hash_tokens_carry_an_hmac_of_the_value() -> None:
    masked = Masker("hash", SECRET).mask(TEXT, FINDINGS)
    jane = expected_token("EMAIL_ADDRESS", "jane@example.com")
    bob = expected_token("EMAIL_ADDRESS", "bob@example.org")
    assert masked == f"Mail {jane} or {bob}, then {jane} again."
    assert jane != bob
    assert len(HASH_TOKEN.findall(masked)) == 3
    assert "example" not in masked


def test_the_same_value_gives_the_same_token_across_maskers() -> None:
    first = Masker("hash", SECRET).mask(TEXT, FINDINGS)
    second = Masker("hash", SECRET).mask(TEXT, FINDINGS)
    other_secret = Masker("hash", b"another").mask(TEXT, FINDINGS)
    assert first == second
    assert first != other_secret


def test_unmask_restores_every_value() -> None:
    masker = Masker("hash", SECRET)
    masked = masker.mask(TEXT, FINDINGS)
    assert masker.unmask(masked) == TEXT
    jane, bob = HASH_TOKEN.findall(masked)[:2]
    answer = f"I wrote to {bob} first and cc'd {jane}."
    assert masker.unmask(answer) == "I wrote to bob@example.org first and cc'd jane@example.com."


def test_unmask_leaves_tokens_it_did_not_issue() -> None:
    masker = Masker("hash", SECRET)
    masker.mask(TEXT, FINDINGS)
    foreign = Masker("hash", b"another").mask("x jane@example.com", [Finding("EMAIL", 2, 18)])
    answer = f"{foreign} <EMAIL_ADDRESS> <EMAIL_ADDRESS_00000000> a < b > c"
    assert masker.unmask(answer) == answer


def test_each_masker_unmasks_only_its_own_values() -> None:
    first, second = Masker("hash", SECRET), Masker("hash", SECRET)
    masked = first.mask(TEXT, FINDINGS)
    assert second.unmask(masked) == masked


def test_values_sharing_the_first_digits_still_get_different_tokens() -> None:
    seen: dict[str, str] = {}
    for number in itertools.count():
        value = f"user{number}@example.com"
        digits = hmac.new(SECRET, value.encode(), hashlib.sha256).hexdigest()[:8]
        if digits in seen:
            clash = (seen[digits], value)
            break
        seen[digits] = value
    text = f"{clash[0]} and {clash[1]}"
    second_start = len(clash[0]) + 5
    findings = [
        Finding("EMAIL_ADDRESS", 0, len(clash[0])),
        Finding("EMAIL_ADDRESS", second_start, second_start + len(clash[1])),
    ]
    masker = Masker("hash", SECRET)
    masked = masker.mask(text, findings)
    first_token, second_token = re.findall(r"<EMAIL_ADDRESS_[0-9a-f]+>", masked)
    assert first_token != second_token
    assert masker.unmask(masked) == text


# --- overlaps and bad spans -------------------------------------------------------------------


def test_overlapping_findings_mask_the_winner_only() -> None:
    text = "Write to m.okafor@northwind.co.uk now."
    findings = [
        Finding("URL", 18, 33, 0.5),
        Finding("EMAIL_ADDRESS", 9, 33, 1.0),
        Finding("PHONE_NUMBER", 10, 14, 0.4),
    ]
    assert Masker().mask(text, findings) == "Write to <EMAIL_ADDRESS> now."


def test_adjacent_findings_of_one_kind_stay_separate() -> None:
    text = "a@example.com b@example.com"
    findings = [Finding("EMAIL_ADDRESS", 0, 13), Finding("EMAIL_ADDRESS", 14, 27)]
    masker = Masker("hash", SECRET)
    masked = masker.mask(text, findings)
    assert len(HASH_TOKEN.findall(masked)) == 2
    assert masker.unmask(masked) == text


def test_a_span_outside_the_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside the text"):
        Masker().mask("short", [Finding("EMAIL_ADDRESS", 2, 40)])


def test_an_unknown_style_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mask style 'stars'"):
        Masker("stars")


# --- held back --------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["type", "hash"])
def test_every_proper_prefix_of_an_issued_token_is_held_back(style: str) -> None:
    masker = Masker(style, SECRET)
    masked = masker.mask(
        "Call +1 415 555 2671 or jane@example.com",
        [
            Finding("PHONE_NUMBER", 5, 20, 0.4),
            Finding("EMAIL_ADDRESS", 24, 40, 1.0),
        ],
    )
    tokens = re.findall(r"<[^<>]+>", masked)
    assert len(tokens) == 2
    for token in tokens:
        for end in range(1, len(token)):
            assert masker.held_back("The answer is " + token[:end]) == end, token[:end]
        assert masker.held_back("The answer is " + token) == 0


def test_nothing_is_held_back_that_cannot_begin_a_token() -> None:
    fresh = Masker("hash", SECRET)
    assert fresh.held_back("a <EMAIL_ADD") == 0
    masker = Masker("hash", SECRET)
    masker.mask(TEXT, FINDINGS)
    assert masker.held_back("") == 0
    assert masker.held_back("plain text") == 0
    assert masker.held_back("x < y") == 0
    assert masker.held_back("<PHONE_NU") == 0
    assert masker.held_back("<EMAIL_ADDRESS_zz") == 0
    assert masker.held_back("a <EMAIL_ADDRESS> <EMAIL_A") == len("<EMAIL_A")
    assert masker.held_back("if a <") == 1


def test_a_streamed_answer_unmasks_across_chunk_boundaries() -> None:
    masker = Masker("hash", SECRET)
    masked = masker.mask(TEXT, FINDINGS)
    answer = f"Sure. I will reply to {masked} Done."
    for size in (1, 3, 7, 16):
        chunks = [answer[i : i + size] for i in range(0, len(answer), size)]
        out, pending = [], ""
        for chunk in chunks:
            pending += chunk
            keep = masker.held_back(pending)
            ready, pending = pending[: len(pending) - keep], pending[len(pending) - keep :]
            out.append(masker.unmask(ready))
        out.append(masker.unmask(pending))
        assert "".join(out) == f"Sure. I will reply to {TEXT} Done."


# --- redact -----------------------------------------------------------------------------------


def test_redact_removes_what_the_scanner_finds(scanner: PiiScanner) -> None:
    text = "I'm jane.doe@example.com, card 4111 1111 1111 1111, from 203.0.113.9. Thanks!"
    assert redact(text, scanner) == (
        "I'm <EMAIL_ADDRESS>, card <CREDIT_CARD>, from <IP_ADDRESS>. Thanks!"
    )


def test_redact_keeps_a_clean_text(scanner: PiiScanner) -> None:
    text = "Summarise the attached meeting notes in five bullets."
    assert redact(text, scanner) == text


def test_masking_what_the_scanner_found_round_trips(scanner: PiiScanner) -> None:
    text = (
        "Hi, I'm alex.kim@example.com or +1 415 555 0199; IBAN GB82 WEST 1234 5698 7654 32, "
        "wallet 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa, see https://www.example.com/me."
    )
    findings = scanner.scan(text).findings
    assert len(findings) == 5
    masker = Masker("hash", SECRET)
    masked = masker.mask(text, findings)
    assert scanner.scan(masked).findings == ()
    assert masker.unmask(masked) == text
