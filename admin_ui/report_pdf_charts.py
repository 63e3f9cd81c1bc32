"""A report's `Chart` drawn by the console's own chart code, as printable SVG.

Time charts take the report's range and the series' own step; a `bars` chart is one bar per
series, its first point's value. Values keep the console's units: a change already in percent
(`pct`) is drawn as the ratio the console's percent axis expects.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Final

from admin_ui.chart_parts import Series
from admin_ui.chart_svg import bar_chart, time_chart
from admin_ui.report_pdf_svg import printable_svg
from telemetry.reports.document import Chart, Unit

CHART_UNITS: Final[dict[str, str]] = {
    "": "count",
    "requests": "count",
    "tokens": "tokens",
    "USD": "usd",
    "ms": "ms",
    "ratio": "percent",
    "pct": "percent",
}
"""The document's units as the console's chart units (chart_units.py)."""

DEFAULT_STEPS: Final = 48
"""A chart whose series have one point each is cut into this many steps over the range."""


def chart_unit(unit: Unit) -> str:
    return CHART_UNITS[unit]


def _number(value: Decimal | float | None, unit: Unit) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number / 100 if unit == "pct" else number


def step_seconds(chart: Chart, start: datetime, end: datetime) -> int:
    """The smallest spacing between two points of a series, so that no line breaks where the
    data has no gap."""
    gaps = [
        (b.at - a.at).total_seconds()
        for series in chart.series
        for a, b in pairwise(sorted(series.points, key=lambda point: point.at))
    ]
    positive = [gap for gap in gaps if gap > 0]
    if positive:
        return max(int(min(positive)), 1)
    return max(int((end - start).total_seconds() / DEFAULT_STEPS), 1)


def chart_svg(chart: Chart, *, start: datetime, end: datetime, width: int = 720) -> str:
    """The chart as the console draws it, with the light theme's colours resolved."""
    unit = chart_unit(chart.unit)
    if chart.kind == "bars":
        rows = [
            (series.name, value)
            for series in chart.series
            if series.points and (value := _number(series.points[0].value, chart.unit)) is not None
        ]
        markup = bar_chart(rows, unit=unit, chart_id=chart.name, title=chart.title, width=width)
    else:
        lines = [
            Series(
                series.name,
                [(point.at, _number(point.value, chart.unit)) for point in series.points],
            )
            for series in chart.series
        ]
        markup = time_chart(
            lines,
            start=start,
            end=end,
            step_seconds=step_seconds(chart, start, end),
            unit=unit,
            chart_id=chart.name,
            title=chart.title,
            width=width,
        )
    return printable_svg(str(markup))
