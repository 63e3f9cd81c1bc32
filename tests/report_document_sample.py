"""A realistic `ReportDocument` for the renderers' and recipients' tests: a week of a workspace
with every kind of section content (headline figures with and without a previous period, line
charts of several series, a bar chart, a table long enough to run over pages, notes).

Values are picked so that no two figures share digits: a test that finds "$1,482.0375" in the
PDF's text cannot have matched another number.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from telemetry.reports.document import (
    Chart,
    Column,
    Figure,
    Point,
    ReportDocument,
    Section,
    Series,
    Table,
)

START = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
"""Monday 2026-11-30 00:00 in Europe/Berlin."""
END = START + timedelta(days=7)
MADE_AT = datetime(2026, 12, 7, 6, 15, tzinfo=UTC)
TIME_ZONE = "Europe/Berlin"
MODELS = ("gpt-4o", "claude-sonnet-4", "gemini-2.5-flash")
LONG_TABLE_ROWS = 90
LONG_MODEL = "accounts/fireworks/models/llama-v3p1-405b-instruct-long-context"
"""Cut with an ellipsis on the chart, as on the console."""

SUMMARY_FIGURES = (
    Figure(
        name="cost",
        title="Cost",
        value=Decimal("1482.0375"),
        unit="USD",
        previous=Decimal("1236.5"),
        change_pct=19.855,
    ),
    Figure(
        name="requests",
        title="Requests",
        value=264_913,
        unit="requests",
        previous=281_774,
        change_pct=-5.98,
    ),
    Figure(
        name="error_rate",
        title="Error rate",
        value=0.0173,
        unit="ratio",
        previous=0.0121,
        change_pct=42.98,
    ),
    Figure(
        name="p95_latency_ms",
        title="p95 latency",
        value=2841.7,
        unit="ms",
        previous=2610.3,
        change_pct=8.865,
    ),
    Figure(
        name="tokens",
        title="Tokens",
        value=91_735_208,
        unit="tokens",
        previous=None,
        change_pct=None,
    ),
)


def _hourly(base: float, swing: float, phase: float) -> tuple[Point, ...]:
    points = []
    for hour in range(0, 7 * 24, 3):
        at = START + timedelta(hours=hour)
        value = base + swing * math.sin((hour + phase) / 24 * 2 * math.pi)
        points.append(Point(at, Decimal(str(round(value, 4)))))
    return tuple(points)


def _cost_chart() -> Chart:
    return Chart(
        name="cost_by_model",
        title="Cost by model",
        unit="USD",
        series=tuple(
            Series(name=model, points=_hourly(9.0 - 2.5 * i, 4.0 - i, phase=5.0 * i))
            for i, model in enumerate(MODELS)
        ),
    )


def _latency_chart() -> Chart:
    measured = tuple(
        Series(
            name=model,
            points=tuple(
                Point(p.at, float(p.value) * 120 + 400)
                for p in _hourly(10.0 + i, 3.0, phase=2.0 * i)
                if p.value is not None
            ),
        )
        for i, model in enumerate(MODELS)
    )
    silent = Series(name="mock-gpt", points=tuple(Point(p.at, None) for p in _hourly(1, 1, 0)))
    """A model without a measurement in the week: its legend reads "—"."""
    return Chart(
        name="p95_latency", title="p95 latency by model", unit="ms", series=(*measured, silent)
    )


def _bars_chart() -> Chart:
    spend = (Decimal("612.4410"), Decimal("487.1925"), Decimal("382.4040"), Decimal("0.0375"))
    names = (*MODELS, LONG_MODEL)
    return Chart(
        name="cost_by_model_total",
        title="Cost by model, whole week",
        unit="USD",
        kind="bars",
        series=tuple(
            Series(name=model, points=(Point(START, amount),))
            for model, amount in zip(names, spend, strict=True)
        ),
    )


def key_row(index: int) -> tuple[str, str, int, Decimal, float]:
    """Row `index` of the long table: a key, its model, requests, cost and p95 latency."""
    return (
        f"key-{index:03d}",
        MODELS[index % len(MODELS)],
        5_000 - index * 37,
        Decimal("97.3125") - Decimal(index) * Decimal("0.8125"),
        480.0 + index * 11.5,
    )


def _keys_table() -> Table:
    return Table(
        name="cost_by_key",
        title="Cost by key",
        columns=(
            Column(name="key", title="Key"),
            Column(name="model", title="Top model"),
            Column(name="requests", title="Requests", unit="requests"),
            Column(name="cost", title="Cost", unit="USD"),
            Column(name="p95_ms", title="p95 latency", unit="ms"),
        ),
        rows=tuple(key_row(i) for i in range(LONG_TABLE_ROWS)),
    )


def sample_document(*, workspace_name: str = "Acme Production") -> ReportDocument:
    return ReportDocument(
        title="Weekly summary",
        workspace_id="ws-acme-prod",
        workspace_name=workspace_name,
        start=START,
        end=END,
        time_zone=TIME_ZONE,
        made_at=MADE_AT,
        sections=(
            Section(
                name="summary",
                title="Summary",
                figures=SUMMARY_FIGURES,
                charts=(_cost_chart(),),
            ),
            Section(name="cost", title="Cost by model and key", charts=(_bars_chart(),)),
            Section(name="latency_errors", title="Latency and errors", charts=(_latency_chart(),)),
            Section(name="top_keys", title="Top keys", tables=(_keys_table(),)),
            Section(
                name="anomalies_alerts",
                title="Anomalies and alerts",
                notes=("No anomaly and no alert in this period.",),
            ),
        ),
    )
