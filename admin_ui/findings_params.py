"""Query parameters of `/admin/api/insights` (`admin_ui.findings_api`): the range (`from`/`to`
or `last`, default the last 7 days, at most `MAX_RANGE`), `workspace`, and for the cheaper-model
insight `margin` (score points) and `min_samples`. Every problem is a 400 in OpenAI's error
shape naming the parameter."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from admin_ui.analytics_params import first_value, grouped_parameters, read_range
from admin_ui.openapi import Query, text
from admin_ui.search_params import MAX_TEXT, bad, read_integer, read_text
from telemetry.insights.cheaper_models import DEFAULT_MARGIN, DEFAULT_MIN_SAMPLES

SCOPE: Final = "workspace"
DEFAULT_RANGE: Final = timedelta(days=7)
MAX_RANGE: Final = timedelta(days=92)
"""The longest range read: every insight scans raw rows of its range."""
MIN_MARGIN, MAX_MARGIN = 0.0, 50.0
MIN_SAMPLES, MAX_SAMPLES = 5, 100_000
_SINGLE: Final = ("from", "to", "last", SCOPE, "margin", "min_samples")


@dataclass(frozen=True, slots=True)
class FindingsRequest:
    start: datetime
    end: datetime
    workspace: str | None
    margin: float = DEFAULT_MARGIN
    min_samples: int = DEFAULT_MIN_SAMPLES


def _margin(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_MARGIN
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not MIN_MARGIN <= value <= MAX_MARGIN:
        raise bad(
            "margin", f"must be a number of score points from {MIN_MARGIN:g} to {MAX_MARGIN:g}"
        )
    return value


def parse_findings_request(items: Iterable[tuple[str, str]], *, now: datetime) -> FindingsRequest:
    grouped = grouped_parameters(
        items, single=_SINGLE, repeatable=(), filters=(), taker="insights take"
    )
    if any(name in grouped for name in ("from", "to", "last")):
        start, end = read_range(grouped, now)
    else:
        start, end = now - DEFAULT_RANGE, now
    if end - start > MAX_RANGE:
        raise bad(
            "last" if "last" in grouped else "from", f"may span at most {MAX_RANGE.days} days"
        )
    workspace = first_value(grouped, SCOPE)
    if workspace is not None:
        read_text(SCOPE, workspace)
    samples = first_value(grouped, "min_samples")
    return FindingsRequest(
        start=start,
        end=end,
        workspace=workspace,
        margin=_margin(first_value(grouped, "margin")),
        min_samples=DEFAULT_MIN_SAMPLES
        if samples is None
        else int(read_integer(MIN_SAMPLES, MAX_SAMPLES)("min_samples", samples)),
    )


FINDINGS_QUERY: Final = (
    Query("from", "From this time on: ISO 8601 or epoch seconds.", text(64)),
    Query("to", "Before this time: ISO 8601 or epoch seconds (default: now).", text(64)),
    Query(
        "last",
        "A range up to now instead: 24h, 7d or 4w (default 7d; at most 92 days).",
        text(8, pattern=r"^[0-9]+[smhdw]$"),
    ),
    Query(SCOPE, "Only this workspace (id or slug).", text(MAX_TEXT)),
    Query(
        "margin",
        f"Score points (0-100 scale) a cheaper model may lose and still count as equal "
        f"(default {DEFAULT_MARGIN:g}).",
        {"type": "number", "minimum": MIN_MARGIN, "maximum": MAX_MARGIN},
    ),
    Query(
        "min_samples",
        f"Scores each model needs before it is compared (default {DEFAULT_MIN_SAMPLES}).",
        {"type": "integer", "minimum": MIN_SAMPLES, "maximum": MAX_SAMPLES},
    ),
)
