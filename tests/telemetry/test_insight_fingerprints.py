"""The pure parts of the insights: error messages reduced to templates, and the t quantile and
Welch interval that decide whether a cheaper model is of equal quality."""

from __future__ import annotations

import pytest

from telemetry.insights.fingerprint import fingerprint, message_template
from telemetry.insights.stats import Sample, difference, t_quantile


@pytest.mark.parametrize(
    ("message", "template"),
    [
        (
            "Rate limit reached for org-AbC123 on tokens: Limit 30000, Used 29876.",
            "Rate limit reached for <id> on tokens: Limit <n>, Used <n>.",
        ),
        ("The model 'gpt-5' does not exist", "The model <str> does not exist"),
        ('Unknown field "foo" at 3:14', "Unknown field <str> at <n>"),
        (
            "Request req_8f3a2b1c9d failed, see https://status.example.com/x?id=1",
            "Request <id> failed, see <url>",
        ),
        (
            "trace 0193f2a0-c1d2-7e5b-9a0c-4d2e8f6b1a37 timed out after 30.5 s",
            "trace <id> timed out after <n> s",
        ),
        ("contact ops@example.com   now", "contact <email> now"),
        ("Overloaded", "Overloaded"),
        ("", ""),
        (None, ""),
    ],
)
def test_what_varies_is_taken_out_of_a_message(message: str | None, template: str) -> None:
    assert message_template(message) == template


def test_two_occurrences_of_one_error_share_a_fingerprint() -> None:
    first = message_template("Timeout after 30000 ms calling deployment dep-1 (attempt 2)")
    second = message_template("Timeout after 12000 ms calling deployment dep-7 (attempt 3)")
    assert fingerprint("openai", "timeout", first) == fingerprint("openai", "timeout", second)
    assert fingerprint("openai", "timeout", first) != fingerprint("azure", "timeout", first)


def test_a_long_message_is_cut() -> None:
    assert len(message_template("word " * 500)) == 300


@pytest.mark.parametrize(("degrees", "exact"), [(5, 2.5706), (10, 2.2281), (30, 2.0423)])
def test_the_t_quantile_is_close_to_the_tables(degrees: int, exact: float) -> None:
    assert t_quantile(degrees) == pytest.approx(exact, abs=0.01)


def test_the_interval_of_a_mean_and_of_a_difference() -> None:
    scores = [70.0, 75.0, 80.0, 85.0, 90.0] * 8
    sample = Sample(len(scores), sum(scores), sum(s * s for s in scores))
    assert sample.mean == pytest.approx(80.0)
    low, high = sample.interval()
    assert low < 80 < high and high - low == pytest.approx(
        2 * 2.0227 * (7.1611 / 40**0.5), rel=1e-3
    )
    same = difference(sample, sample)
    assert same.mean == 0 and same.lower < 0 < same.upper
    flat = Sample(40, 40 * 60.0, 40 * 3600.0)
    gap = difference(flat, Sample(40, 40 * 62.0, 40 * 62.0**2))
    assert (gap.mean, gap.lower, gap.upper) == (-2.0, -2.0, -2.0)
