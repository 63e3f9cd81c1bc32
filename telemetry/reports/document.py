"""A report as made: the one shape every format (CSV, JSON, PDF) and every recipient is given.

A document holds values, not presentation: money stays `Decimal` (exact, in US dollars), rates
are ratios from 0 to 1, durations milliseconds, and each value carries its unit so that every
format shows it the same way. Times are aware datetimes in UTC; `time_zone` is the zone the
report's range and schedule were chosen in, for display.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

Unit = Literal["", "USD", "ms", "ratio", "tokens", "requests", "pct"]
"""How a value reads: `ratio` is a rate from 0 to 1 shown in percent, `pct` already a percent
(a change), `""` a plain count or a name."""

Value = Decimal | float | int | str | None


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    """One headline number, with the same number over the period before when it was measured."""

    name: str
    title: str
    value: Value
    unit: Unit = ""
    previous: Value = None
    change_pct: float | None = None
    """The change from `previous` in percent; None when there was nothing to compare with."""


class Column(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    unit: Unit = ""


class Table(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]
    """Each row has one value per column, in the columns' order."""


class Point(msgspec.Struct, frozen=True, array_like=True):
    at: datetime
    value: Decimal | float | None


class Series(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    points: tuple[Point, ...]


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """A chart as the console draws it: series over time (`line`) or one bar per series (`bars`,
    each series' first point)."""

    name: str
    title: str
    unit: Unit = ""
    kind: Literal["line", "bars"] = "line"
    series: tuple[Series, ...] = ()


class Section(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """One of `SECTION_NAMES`."""
    title: str
    figures: tuple[Figure, ...] = ()
    charts: tuple[Chart, ...] = ()
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()
    """Sentences for a reader, such as why a section is empty."""


class ReportDocument(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    workspace_id: str | None
    """None: every workspace (a report an operator asked for)."""
    workspace_name: str
    start: datetime
    end: datetime
    """The range, `end` excluded."""
    time_zone: str
    made_at: datetime
    sections: tuple[Section, ...]


SECTION_NAMES: tuple[str, ...] = (
    "summary",
    "cost",
    "top_keys",
    "top_end_users",
    "latency_errors",
    "cache_roi",
    "guardrails",
    "anomalies_alerts",
    "forecast",
    "insights",
)
"""Every section a report definition may list, in the order a report shows them: the summary
with the change against the previous period; cost by workspace, model and key; the top keys and
end users; latency and errors; cache ROI; guardrail activity; the anomalies and alerts of the
period; the forecast; the insights (cheaper models of equal quality, uncached repeats, max_tokens
far above answers, errors grouped by message)."""
