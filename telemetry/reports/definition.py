"""A report definition: what a report holds, over which range, when it runs and for whom; read
from an API body (`parse_definition`) and checked before it is stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import msgspec

from telemetry.reports.cron import CronError, next_run, parse_cron, time_zone
from telemetry.reports.document import SECTION_NAMES
from telemetry.reports.ranges import RANGES

FORMATS: Final = ("csv", "json", "pdf")
RECIPIENT_KINDS: Final = ("email", "webhook", "slack")
"""The kinds of notification channel a report is sent to."""
MAX_NAME: Final = 200
FIELDS: Final = (
    "name",
    "sections",
    "range",
    "schedule",
    "time_zone",
    "recipients",
    "formats",
    "enabled",
)
WEEKLY_SUMMARY: Final = "weekly_summary"
"""The `built_in` name of the definition every workspace has."""


class DefinitionError(ValueError):
    """A definition that cannot be used; `field` names what to change as the API writes it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ReportDefinition(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    workspace_id: str
    name: str
    sections: tuple[str, ...]
    range: str
    schedule: str
    time_zone: str = "UTC"
    recipient_ids: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("csv",)
    enabled: bool = True
    built_in: str | None = None
    next_run_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        """When the schedule runs next after `moment`; None when disabled."""
        if not self.enabled:
            return None
        return next_run(parse_cron(self.schedule), moment, time_zone(self.time_zone))


def weekly_summary(workspace_id: str, definition_id: str) -> ReportDefinition:
    """The weekly summary every workspace has until someone changes it."""
    return ReportDefinition(
        id=definition_id,
        workspace_id=workspace_id,
        name="Weekly summary",
        sections=(
            "summary",
            "cost",
            "top_keys",
            "latency_errors",
            "cache_roi",
            "guardrails",
            "anomalies_alerts",
            "insights",
        ),
        range="previous_week",
        schedule="0 8 * * mon",
        time_zone="UTC",
        formats=("csv", "pdf"),
        built_in=WEEKLY_SUMMARY,
    )


def _strings(
    body: Mapping[str, Any], field: str, allowed: tuple[str, ...] | None
) -> tuple[str, ...]:
    value = body.get(field)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DefinitionError(field, "must be a list of strings")
    for position, item in enumerate(value):
        if allowed is not None and item not in allowed:
            raise DefinitionError(
                f"{field}[{position}]", f"{item[:64]!r} is not one of {', '.join(allowed)}"
            )
    return tuple(dict.fromkeys(value))


def _text(body: Mapping[str, Any], field: str, default: str | None = None) -> str:
    value = body.get(field, default)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(field, "must be a non-empty string")
    return value.strip()


def parse_definition(
    body: Mapping[str, Any],
    *,
    definition_id: str,
    workspace_id: str,
    built_in: str | None = None,
) -> ReportDefinition:
    """The definition an API body describes; `DefinitionError` names the first bad field.
    Recipients are checked against the workspace's channels by the store."""
    name = _text(body, "name")
    if len(name) > MAX_NAME:
        raise DefinitionError("name", f"must be at most {MAX_NAME} characters")
    sections = _strings(body, "sections", SECTION_NAMES)
    if not sections:
        raise DefinitionError("sections", "must name at least one section")
    range_ = _text(body, "range")
    if range_ not in RANGES:
        raise DefinitionError("range", f"{range_[:64]!r} is not one of {', '.join(RANGES)}")
    schedule = _text(body, "schedule")
    try:
        schedule = parse_cron(schedule).expression
    except CronError as error:
        raise DefinitionError("schedule", str(error)) from None
    zone = _text(body, "time_zone", "UTC")
    try:
        time_zone(zone)
    except CronError as error:
        raise DefinitionError("time_zone", str(error)) from None
    body = {"recipients": [], "formats": ["csv"], **body}
    recipients = _strings(body, "recipients", None)
    formats = _strings(body, "formats", FORMATS)
    if not formats:
        raise DefinitionError("formats", "must name at least one format")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise DefinitionError("enabled", "must be true or false")
    return ReportDefinition(
        id=definition_id,
        workspace_id=workspace_id,
        name=name,
        sections=tuple(name for name in SECTION_NAMES if name in sections),
        range=range_,
        schedule=schedule,
        time_zone=zone,
        recipient_ids=recipients,
        formats=tuple(format_ for format_ in FORMATS if format_ in formats),
        enabled=enabled,
        built_in=built_in,
    )


def definition_data(definition: ReportDefinition) -> dict[str, Any]:
    """The definition's fields as an API body writes them."""
    return {
        "name": definition.name,
        "sections": list(definition.sections),
        "range": definition.range,
        "schedule": definition.schedule,
        "time_zone": definition.time_zone,
        "recipients": list(definition.recipient_ids),
        "formats": list(definition.formats),
        "enabled": definition.enabled,
    }
