"""A new silence from its written form (the API's body, the console's form): matchers, a start
(default now), an end from a `duration` or an `ends_at` time, a comment and who made it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from telemetry import times
from telemetry.alerts.rule import RuleError
from telemetry.alerts.rule_parsing import parse_duration
from telemetry.alerts.silence import Silence, SilenceError, parse_matchers
from telemetry.ids import uuid7_hex

FIELDS: Final = ("matchers", "starts_at", "ends_at", "duration", "comment")
MAX_LENGTH: Final = timedelta(days=90)
MAX_LEAD: Final = timedelta(days=365)
"""How far ahead a silence may start."""
MAX_COMMENT: Final = 2000


def parse_silence(
    data: dict[str, Any], *, workspace_id: str, created_by: str, now: datetime
) -> Silence:
    """A silence checked field by field; `SilenceError` names the first field to change. A start
    in the past is now, as in Alertmanager."""
    matchers = parse_matchers(data.get("matchers"))
    starts_at = max(now, _time(data.get("starts_at"), "starts_at") or now)
    if starts_at > now + MAX_LEAD:
        raise SilenceError("starts_at", "must be within a year from now")
    ends_at = _end(data, starts_at)
    comment = data.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        raise SilenceError("comment", "is required: say why the alerts are silenced")
    if len(comment) > MAX_COMMENT:
        raise SilenceError("comment", f"is longer than {MAX_COMMENT} characters")
    return Silence(
        silence_id=uuid7_hex(),
        workspace_id=workspace_id,
        matchers=matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=comment.strip(),
        created_by=created_by[:320],
        created_at=now,
    )


def _end(data: dict[str, Any], starts_at: datetime) -> datetime:
    duration, ends = data.get("duration"), data.get("ends_at")
    if duration is not None and ends is not None:
        raise SilenceError("duration", "give a duration or ends_at, not both")
    if duration is None and ends is None:
        raise SilenceError("ends_at", "is required: give ends_at or a duration (2h, 1d)")
    if duration is not None:
        try:
            seconds = parse_duration(duration, "duration")
        except RuleError as error:
            raise SilenceError("duration", error.reason) from None
        if seconds <= 0:
            raise SilenceError("duration", "must be longer than zero")
        if timedelta(seconds=seconds) > MAX_LENGTH:
            raise SilenceError("duration", f"is longer than {MAX_LENGTH.days} days")
        return starts_at + timedelta(seconds=seconds)
    ends_at = _time(ends, "ends_at")
    assert ends_at is not None
    if ends_at <= starts_at:
        raise SilenceError("ends_at", "must be after starts_at (and after now)")
    if ends_at - starts_at > MAX_LENGTH:
        raise SilenceError("ends_at", f"is more than {MAX_LENGTH.days} days after starts_at")
    return ends_at


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SilenceError(field, "must be an ISO 8601 time (2026-12-07T18:00:00Z)")
    try:
        return times.parse_iso_time(value)
    except times.InvalidTime as error:
        raise SilenceError(field, str(error)) from None
