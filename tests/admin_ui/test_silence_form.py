"""The silence form's pieces: its values as the API's body, the API's refusal placed on the
line it concerns, and the time left as people read it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from admin_ui.alert_silences_pages import form_error, silence_body, span_text
from gateway.errors import invalid_request


def _values(**changes: str) -> dict[str, str | list[str]]:
    values: dict[str, str | list[str]] = {
        "matchers": "model=gpt-4o\n\n  alertname=Error rate  \n",
        "duration": "2h",
        "starts_at": "",
        "ends_at": "",
        "comment": "deploy",
        "workspace": "",
    }
    values.update(changes)
    return values


def test_the_form_becomes_the_api_body() -> None:
    body, lines = silence_body(_values())
    assert body == {
        "matchers": ["model=gpt-4o", "alertname=Error rate"],
        "comment": "deploy",
        "starts_at": None,
        "ends_at": None,
        "duration": "2h",
    }
    assert lines == [1, 3]
    body, _ = silence_body(_values(ends_at="2026-12-08T09:00", workspace="team-a"))
    assert (body["ends_at"], body["duration"], body["workspace"]) == (
        "2026-12-08T09:00",
        None,
        "team-a",
    )


def test_a_refusal_is_placed_on_its_field_and_line() -> None:
    error = invalid_request(
        "The silence is not valid: matchers[1]: not a regular expression: missing )",
        param="matchers[1]",
    )
    assert form_error(error, [1, 3]) == (
        "matchers",
        "Line 3: not a regular expression: missing )",
    )
    error = invalid_request("The silence is not valid: comment: is required", param="comment")
    assert form_error(error, []) == ("comment", "Is required")
    error = invalid_request("Something else.", param="colour")
    assert form_error(error, []) == ("", "Something else.")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(42, "42 s"), (720, "12 min"), (5400, "1 h 30 min"), (7200, "2 h"), (273600, "3 d 4 h")],
)
def test_time_left_reads_as_people_say_it(seconds: int, text: str) -> None:
    assert span_text(timedelta(seconds=seconds)) == text
