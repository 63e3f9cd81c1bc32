"""The CSV and JSON of a document: every value once, money exact and in plain notation, units
kept, formulas never run by a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
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
from telemetry.reports.render_csv import HEADER, render_csv
from telemetry.reports.render_json import render_json

START = datetime(2026, 11, 23, tzinfo=UTC)
DOCUMENT = ReportDocument(
    title="Finance weekly",
    workspace_id="0190a1b2c3d4e5f60718293a4b5c6d7e",
    workspace_name="Acme Corp",
    start=START,
    end=datetime(2026, 11, 30, tzinfo=UTC),
    time_zone="Europe/Paris",
    made_at=datetime(2026, 11, 30, 7, 0, 3, tzinfo=UTC),
    sections=(
        Section(
            name="summary",
            title="Summary",
            figures=(
                Figure(
                    name="cost",
                    title="Cost",
                    value=Decimal("1234.5600000000"),
                    unit="USD",
                    previous=Decimal("0E-10"),
                ),
                Figure(
                    name="requests",
                    title="Requests",
                    value=8817,
                    unit="requests",
                    previous=7901,
                    change_pct=11.59,
                ),
            ),
            charts=(
                Chart(
                    name="cost",
                    title="Cost",
                    unit="USD",
                    series=(Series(name="Cost", points=(Point(START, Decimal("0.0700000000")),)),),
                ),
            ),
            tables=(
                Table(
                    name="by_key",
                    title="Cost by key",
                    columns=(
                        Column(name="key", title="Key"),
                        Column(name="cost", title="Cost", unit="USD"),
                        Column(name="share", title="Share", unit="ratio"),
                    ),
                    rows=(("=HYPERLINK(1)", Decimal("12.3400000000"), 0.25), ("-ops", None, None)),
                ),
            ),
            notes=("Compared with the 7 days before.",),
        ),
    ),
)


def test_the_json_is_the_document_with_money_as_exact_strings() -> None:
    data = json.loads(render_json(DOCUMENT))
    assert data["object"] == "report"
    assert data["start"] == "2026-11-23T00:00:00Z" and data["made_at"] == "2026-11-30T07:00:03Z"
    summary = data["sections"][0]
    assert summary["figures"][0] == {
        "name": "cost",
        "title": "Cost",
        "value": "1234.56",
        "unit": "USD",
        "previous": "0",
        "change_pct": None,
    }
    assert summary["figures"][1]["value"] == 8817
    assert summary["charts"][0]["series"][0]["points"] == [["2026-11-23T00:00:00Z", "0.07"]]
    assert summary["tables"][0]["rows"] == [["=HYPERLINK(1)", "12.34", 0.25], ["-ops", None, None]]


def test_the_csv_has_one_line_per_value() -> None:
    lines = list(csv.reader(io.StringIO(render_csv(DOCUMENT).decode())))
    assert tuple(lines[0]) == HEADER
    assert ["report", "meta", "workspace", "value", "Acme Corp", ""] in lines
    assert ["report", "meta", "time_zone", "value", "Europe/Paris", ""] in lines
    body = lines[8:]
    assert body == [
        ["summary", "figures", "cost", "value", "1234.56", "USD"],
        ["summary", "figures", "cost", "previous", "0", "USD"],
        ["summary", "figures", "cost", "change_pct", "", "pct"],
        ["summary", "figures", "requests", "value", "8817", "requests"],
        ["summary", "figures", "requests", "previous", "7901", "requests"],
        ["summary", "figures", "requests", "change_pct", "11.59", "pct"],
        ["summary", "by_key", "1", "key", "'=HYPERLINK(1)", ""],
        ["summary", "by_key", "1", "cost", "12.34", "USD"],
        ["summary", "by_key", "1", "share", "0.25", "ratio"],
        ["summary", "by_key", "2", "key", "'-ops", ""],
        ["summary", "by_key", "2", "cost", "", "USD"],
        ["summary", "by_key", "2", "share", "", "ratio"],
        ["summary", "chart:cost", "Cost", "2026-11-23T00:00:00Z", "0.07", "USD"],
        ["summary", "notes", "1", "text", "Compared with the 7 days before.", ""],
    ]
