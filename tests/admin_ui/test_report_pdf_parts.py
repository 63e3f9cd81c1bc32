"""The PDF's parts: the console's chart SVG with the light theme written in, and a report's
values, range and times as the PDF writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from xml.etree import ElementTree

from admin_ui.chart_svg import bar_chart
from admin_ui.report_pdf_charts import chart_svg
from admin_ui.report_pdf_svg import LIGHT, pdf_text, printable_svg
from admin_ui.report_pdf_values import column_heading, value_text
from telemetry.reports.period_text import local_time_text, range_text
from tests.report_document_sample import END, START, sample_document

SVG = "{http://www.w3.org/2000/svg}"


def test_printable_svg_has_no_colour_left_to_a_style_sheet() -> None:
    charts = [chart for section in sample_document().sections for chart in section.charts]
    for chart in charts:
        svg = chart_svg(chart, start=START, end=END)
        assert "currentColor" not in svg
        assert "var(" not in svg
        root = ElementTree.fromstring(svg)
        assert not list(root.iter(f"{SVG}title"))
        for text in root.iter(f"{SVG}text"):
            assert text.get("fill", "").startswith("#"), ElementTree.tostring(text)


def test_grid_lines_and_tick_labels_take_the_light_theme_colours() -> None:
    charts = [chart for section in sample_document().sections for chart in section.charts]
    root = ElementTree.fromstring(chart_svg(charts[0], start=START, end=END))
    grid = [e for e in root.iter(f"{SVG}line") if "chart-grid" in e.get("class", "")]
    assert grid
    assert {e.get("stroke") for e in grid} <= {LIGHT["border-strong"], LIGHT["muted"]}
    ticks = [e for e in root.iter(f"{SVG}text") if "chart-tick-label" in e.get("class", "")]
    assert ticks and {e.get("fill") for e in ticks} == {LIGHT["muted"]}
    assert not [e for e in root.iter() if "chart-crosshair" in e.get("class", "")]


def test_a_bar_keeps_its_label_when_its_hover_title_is_dropped() -> None:
    markup = str(bar_chart([("gpt-4o", 12.5)], unit="usd", chart_id="b", title="Cost"))
    root = ElementTree.fromstring(printable_svg(markup))
    labels = [e for e in root.iter(f"{SVG}text") if e.get("class") == "chart-bar-label"]
    assert [label.text for label in labels] == ["gpt-4o"]


def test_pdf_text_keeps_windows_1252_and_replaces_the_rest() -> None:
    assert pdf_text("\u22123.0 % — … · µ é") == "-3.0 % — … · µ é"
    assert pdf_text("model 模型") == "model ??"


def test_values_read_as_the_console_writes_them() -> None:
    assert value_text(Decimal("0.000123"), "USD") == "$0.000123"
    assert value_text(Decimal("1234"), "USD") == "$1,234.00"
    assert value_text(0.1234, "ratio") == "12.3 %"
    assert value_text(12.345, "ms") == "12.3 ms"
    assert value_text(-4.25, "pct") == "\u22124.2 %"
    assert value_text(1234567, "tokens") == "1,234,567"
    assert value_text(None, "USD") == "—"
    assert value_text("gpt-4o", "") == "gpt-4o"
    assert column_heading("Cost", "USD") == "Cost (USD)"
    assert column_heading("Requests", "requests") == "Requests"


def test_a_charts_text_keeps_to_what_the_drawing_can_measure() -> None:
    """fpdf2 measures a drawing's text in Latin-1: a cut name's ellipsis and a missing value's
    dash become ASCII there (a document with either failed to render before)."""
    markup = str(bar_chart([("a" * 80, 0.0375)], unit="usd", chart_id="b", title="Cost"))
    root = ElementTree.fromstring(printable_svg(markup))
    label = next(e for e in root.iter(f"{SVG}text") if e.get("class") == "chart-bar-label")
    assert label.text is not None and label.text.endswith("...")
    assert all(
        (e.text or "").isascii() or (e.text or "").encode("latin-1")
        for e in root.iter(f"{SVG}text")
    )


def test_numbers_without_a_unit_and_times_in_tables() -> None:
    assert value_text(3733.4, "") == "3,733"
    assert value_text(3.5, "") == "3.50"
    assert value_text(0.04123, "") == "0.0412"
    assert value_text(12, "") == "12"
    assert value_text("2026-12-04T22:00:00Z", "", "Europe/Berlin") == "2026-12-04 23:00"
    assert value_text("2026-12-04T22:00:00Z", "") == "2026-12-04T22:00:00Z"
    assert value_text("gpt-4o", "", "Europe/Berlin") == "gpt-4o"


def test_range_and_times_are_in_the_reports_zone() -> None:
    assert range_text(START, END, "Europe/Berlin") == "2026-11-30 to 2026-12-06 (Europe/Berlin)"
    assert range_text(START, END, "UTC") == "2026-11-29 23:00 to 2026-12-06 23:00 (UTC)", (
        "not whole days in UTC: the times are shown"
    )
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert local_time_text(summer, "Europe/Berlin") == "2026-07-01 14:00 CEST"
    assert local_time_text(summer, "America/New_York") == "2026-07-01 08:00 EDT"
