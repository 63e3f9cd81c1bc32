"""The small parts channels share: signatures, Retry-After, fingerprints, numbers, masking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from telemetry.alerts import fingerprint_of
from telemetry.alerts.attempts import DeliverySettings, backoff_delay, parse_retry_after
from telemetry.alerts.notification import format_number
from telemetry.alerts.scrubbing import Scrubber
from telemetry.alerts.signing import sign, verify

BODY = b'{"version":"1"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # From openssl: printf '1765000000.{"version":"1"}' | openssl dgst -sha256 -hmac s3cret
    assert sign("s3cret", 1765000000, BODY) == (
        "sha256=0372d7599e9a1a3214c6d3246ae41bf4180716ada7703068eb2a7a92ee75cce3"
    )
    assert sign("s3cret", 1765000000, BODY) != sign("s3cret", 1765000001, BODY)


def test_verify() -> None:
    signature = sign("s3cret", "1765000000", BODY)
    assert verify("s3cret", "1765000000", BODY, signature, now=1765000100)
    assert not verify("other", "1765000000", BODY, signature, now=1765000100)
    assert not verify("s3cret", "1765000000", BODY + b" ", signature, now=1765000100)
    assert not verify("s3cret", "1765000000", BODY, signature, now=1765000000 + 301)
    assert not verify("s3cret", "17650e0000", BODY, signature, now=1765000000)


def test_parse_retry_after() -> None:
    now = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Sun, 06 Dec 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sun, 06 Dec 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    settings = DeliverySettings(backoff_s=1.0, backoff_max_s=5.0)
    for attempts_made, (low, high) in {
        1: (0.5, 1.0),
        2: (1.0, 2.0),
        3: (2.0, 4.0),
        6: (2.5, 5.0),
    }.items():
        delays = {backoff_delay(settings, attempts_made) for _ in range(50)}
        assert all(low <= delay <= high for delay in delays)
        assert len(delays) > 1


def test_fingerprint_is_stable_and_order_free() -> None:
    a = fingerprint_of("rule-1", {"model": "m", "provider": "p"})
    assert a == fingerprint_of("rule-1", {"provider": "p", "model": "m"})
    assert a != fingerprint_of("rule-2", {"model": "m", "provider": "p"})
    assert a != fingerprint_of("rule-1", {"model": "m2", "provider": "p"})
    assert len(a) == 32


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (7.5, "%", "7.5 %"),
        (5.0, "%", "5 %"),
        (0.123456789, "USD", "0.123457 USD"),
        (None, "ms", "n/a"),
        (1200.0, "", "1200"),
    ],
)
def test_format_number(value: float | None, unit: str, shown: str) -> None:
    assert format_number(value, unit) == shown


def test_scrubber_masks_values_their_encodings_and_url_tokens() -> None:
    scrub = Scrubber(["https://hooks.slack.com/services/T01/B02/abcdefghijkl", "p@ss word!", "ab"])
    assert scrub("POST /services/T01/B02/abcdefghijkl failed") == "POST *** failed"
    assert scrub("token abcdefghijkl leaked") == "token *** leaked"
    assert scrub("sent p%40ss%20word%21 and p@ss word!") == "sent *** and ***"
    assert scrub("ab stays: too short to mask") == "ab stays: too short to mask"
    assert Scrubber([])("nothing to mask") == "nothing to mask"
