"""Values over time as a server-drawn SVG: lines, areas, or areas stacked on each other.

The chart has a value axis with round ticks written in the chart's unit, a time axis with ticks
on round UTC boundaries, one colour per series name (`series_color`), and a legend under the plot
with each series' total (for units that add up: counts, tokens, dollars) or last value. Every
point with a value gets a marker carrying `data-series`, `data-t` (epoch seconds), `data-v` and
`data-label` (the value as written) and a `<title>` "series · time · value" for the hover;
charts.js reads them for its crosshair. A None, or a missing step, is a gap: no line is drawn
across a time without data. With nothing to draw the chart says so inside the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import Final, Literal

from markupsafe import Markup

from admin_ui.chart_parts import (
    EMPTY_TEXT,
    Series,
    attr,
    coord,
    fit,
    number_attr,
    svg_open,
    text_width,
)
from admin_ui.chart_plot import (
    Line,
    Plot,
    line_shapes,
    lines_in_range,
    markers,
    stack,
    stacked_shapes,
)
from admin_ui.chart_units import (
    ADDITIVE_UNITS,
    axis_ticks,
    check_unit,
    epoch_seconds,
    format_value,
    moment_label,
    tick_labels,
    time_label,
    time_ticks,
    utc,
)

Kind = Literal["line", "area", "stacked"]
KINDS: Final = ("line", "area", "stacked")

WIDTH: Final = 720
PAD_TOP: Final = 10
PAD_RIGHT: Final = 16
LABEL_GAP: Final = 8
X_AXIS_HEIGHT: Final = 24
TICK_SPACING: Final = 36
"""Least height between two value ticks."""
TIME_LABEL_GAP: Final = 14
MAX_TIME_TICKS: Final = 8
LEGEND_GAP: Final = 8
LEGEND_ROW: Final = 18
LEGEND_NAME_WIDTH: Final = 190
LEGEND_ITEM_GAP: Final = 18
SWATCH: Final = 10
MAX_LABELLED_SERIES: Final = 12
"""The accessible label names this many series' values, then says how many more."""

LegendItem = tuple[str, str, str, str]
"""(name, colour, value as written, hover text)"""
PlacedItem = tuple[float, str, str, str, str]
"""(x, name as shown, colour, value as written, hover text)"""


def _legend_value(line: Line, unit: str) -> tuple[str, str]:
    known = [value for value in line.values.values() if value is not None]
    if unit in ADDITIVE_UNITS:
        text = format_value(math.fsum(known), unit) if known else format_value(None, unit)
        return text, f"{line.name}: {text} in total"
    text = format_value(known[-1] if known else None, unit)
    return text, f"{line.name}: {text} last"


def _legend_rows(items: Sequence[LegendItem], left: float, right: float) -> list[list[PlacedItem]]:
    """Legend items (name, colour, value, hover) placed from `left`, wrapping at `right`."""
    rows: list[list[PlacedItem]] = []
    x = right
    for name, colour, value, hover in items:
        shown = fit(name, LEGEND_NAME_WIDTH)
        item_width = SWATCH + 5 + text_width(shown) + 6 + text_width(value)
        if not rows or x + item_width > right:
            rows.append([])
            x = left
        rows[-1].append((x, shown, colour, value, hover))
        x += item_width + LEGEND_ITEM_GAP
    return rows


def value_plot(
    extents: Sequence[float],
    *,
    unit: str,
    has_data: bool,
    width: float,
    height: float,
    first: float,
    last: float,
    step_seconds: int,
) -> tuple[Plot, list[float], list[str]]:
    """The plot area for values spanning `extents` (zero always in view), with its value axis'
    ticks and their labels; the left margin fits the widest label."""
    whole = unit in ("count", "tokens") and all(float(v).is_integer() for v in extents)
    plot_top, plot_bottom = PAD_TOP, height - X_AXIS_HEIGHT
    ticks = axis_ticks(
        min([0.0, *extents]),
        max([0.0, *extents]),
        max(2, int(plot_bottom - plot_top) // TICK_SPACING),
        whole=whole,
    )
    # With nothing drawn, values on the axis would claim a scale there is none of.
    labels = tick_labels(ticks, unit) if has_data else [""] * len(ticks)
    plot = Plot(
        left=max(36.0, max(text_width(label) for label in labels) + LABEL_GAP + 4),
        right=width - PAD_RIGHT,
        top=plot_top,
        bottom=plot_bottom,
        first=first,
        last=last,
        low=ticks[0],
        high=ticks[-1],
        step_seconds=step_seconds,
    )
    return plot, ticks, labels


def time_chart(
    series: Sequence[Series],
    *,
    start: datetime,
    end: datetime,
    step_seconds: int,
    unit: str,
    kind: Kind = "line",
    chart_id: str,
    title: str,
    height: int = 220,
    width: int = WIDTH,
) -> Markup:
    """The series between `start` and `end` (UTC) as an SVG chart of `kind`.

    `height` is the plot's with its axes; the legend adds rows under it. `width` is the drawing's
    own width: the page scales it to its column, text with it, so a wide panel may ask for more.
    `title` names the chart for assistive technology (the page shows its own heading).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown chart kind {kind!r}: one of {', '.join(KINDS)}")
    start, end = checked_range(start, end, step_seconds, unit)
    first, last = epoch_seconds(start), epoch_seconds(end)
    lines = lines_in_range(series, first, last)
    has_data = any(value is not None for line in lines for value in line.values.values())

    stacked = stack(lines) if kind == "stacked" else None
    if stacked is not None:
        extents = [total for sums in stacked[1] if sums is not None for total in sums]
    else:
        extents = [v for line in lines for v in line.values.values() if v is not None]
    plot, ticks, labels = value_plot(
        extents,
        unit=unit,
        has_data=has_data,
        width=width,
        height=height,
        first=first,
        last=last,
        step_seconds=step_seconds,
    )
    legend = [(line.name, line.colour, *_legend_value(line, unit)) for line in lines]
    head, tail = frame(
        classes=f"chart time-chart chart-{kind}",
        kind=kind,
        chart_id=chart_id,
        title=title,
        start=start,
        end=end,
        step_seconds=step_seconds,
        unit=unit,
        plot=plot,
        ticks=ticks,
        labels=labels,
        legend=legend,
        has_data=has_data,
        height=height,
        width=width,
    )
    if not has_data:
        return Markup("".join(head))
    parts = head
    if stacked is not None:
        parts.extend(stacked_shapes(lines, *stacked, plot))
    else:
        parts.extend(line_shapes(lines, plot, filled=kind == "area"))
    parts.extend(markers(lines, plot, unit, stacked))
    return Markup("".join([*parts, *tail]))


def checked_range(
    start: datetime, end: datetime, step_seconds: int, unit: str
) -> tuple[datetime, datetime]:
    """A time chart's range in UTC, once its unit, step and range are known to be drawable."""
    check_unit(unit)
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    start, end = utc(start), utc(end)
    if end <= start:
        raise ValueError("a time chart needs its end after its start")
    return start, end


def frame(
    *,
    classes: str,
    kind: str,
    chart_id: str,
    title: str,
    start: datetime,
    end: datetime,
    step_seconds: int,
    unit: str,
    plot: Plot,
    ticks: Sequence[float],
    labels: Sequence[str],
    legend: Sequence[LegendItem],
    has_data: bool,
    height: int,
    width: int,
) -> tuple[list[str], list[str]]:
    """What every time chart draws around its shapes: the opening (the drawing with the data
    the page's script reads, both axes) and the closing (the crosshair, the legend). Without
    data the opening is the whole drawing, saying so, and the closing is empty."""
    legend_rows = _legend_rows(legend, plot.left, plot.right) if has_data else []
    legend_top = height + LEGEND_GAP
    total_height = legend_top + len(legend_rows) * LEGEND_ROW if legend_rows else height
    head = [
        svg_open(
            classes=classes,
            chart_id=chart_id,
            width=width,
            height=total_height,
            label=_label(title, start, end, legend, unit, has_data),
            extra=(
                *((("tabindex", "0"),) if has_data else ()),
                ("data-start", number_attr(epoch_seconds(start))),
                ("data-end", number_attr(epoch_seconds(end))),
                ("data-step", str(step_seconds)),
                ("data-unit", unit),
                ("data-kind", kind),
                ("data-plot-left", coord(plot.left)),
                ("data-plot-right", coord(plot.right)),
                ("data-plot-top", coord(plot.top)),
                ("data-plot-bottom", coord(plot.bottom)),
            ),
        ),
        *_value_axis(plot, ticks, labels),
        *_time_axis(plot, start, end, width),
    ]
    if not has_data:
        head.append(
            f'<text class="chart-empty" x="{coord((plot.left + plot.right) / 2)}"'
            f' y="{coord((plot.top + plot.bottom) / 2 + 4)}" text-anchor="middle"'
            f' fill="currentColor">{attr(EMPTY_TEXT)}</text></svg>'
        )
        return head, []
    tail = [
        f'<line class="chart-crosshair" x1="{coord(plot.left)}" x2="{coord(plot.left)}"'
        f' y1="{coord(plot.top)}" y2="{coord(plot.bottom)}" stroke="currentColor"'
        ' visibility="hidden"/>',
        *_legend(legend_rows, legend_top),
        "</svg>",
    ]
    return head, tail


def _value_axis(plot: Plot, ticks: Sequence[float], labels: Sequence[str]) -> list[str]:
    parts = ['<g class="chart-axis chart-value-axis">']
    for value, label in zip(ticks, labels, strict=True):
        level = coord(plot.y(value))
        parts.append(
            f'<line class="chart-grid{" chart-zero" if value == 0 else ""}"'
            f' x1="{coord(plot.left)}" x2="{coord(plot.right)}" y1="{level}" y2="{level}"'
            f' stroke="currentColor" stroke-opacity="{0.45 if value == 0 else 0.14}"'
            f' data-tick="{number_attr(value)}"/>'
        )
        if label:
            parts.append(
                f'<text class="chart-tick-label" x="{coord(plot.left - LABEL_GAP)}"'
                f' y="{coord(plot.y(value) + 4)}" text-anchor="end" fill="currentColor">'
                f"{attr(label)}</text>"
            )
    parts.append("</g>")
    return parts


def _time_axis(plot: Plot, start: datetime, end: datetime, width: float) -> list[str]:
    """Ticks on round times, as many as fit without their labels touching; a label that would
    run off the drawing's edge is aligned to it instead."""
    span = plot.last - plot.first
    for most in range(MAX_TIME_TICKS, 0, -1):
        ticks = [
            (plot.x(epoch_seconds(t)), time_label(t, span)) for t in time_ticks(start, end, most)
        ]
        if all(
            b[0] - a[0] >= (text_width(a[1]) + text_width(b[1])) / 2 + TIME_LABEL_GAP
            for a, b in pairwise(ticks)
        ):
            break
    parts = ['<g class="chart-axis chart-time-axis">']
    for at, label in ticks:
        half = text_width(label) / 2
        anchor, text_x = "middle", at
        if at + half > width:
            anchor, text_x = "end", float(width)
        elif at - half < 0:
            anchor, text_x = "start", 0.0
        parts.append(
            f'<line x1="{coord(at)}" x2="{coord(at)}" y1="{coord(plot.top)}"'
            f' y2="{coord(plot.bottom + 4)}" stroke="currentColor" stroke-opacity="0.08"/>'
            f'<text class="chart-tick-label" x="{coord(text_x)}" y="{coord(plot.bottom + 17)}"'
            f' text-anchor="{anchor}" fill="currentColor">{attr(label)}</text>'
        )
    parts.append("</g>")
    return parts


def _legend(rows: Sequence[Sequence[PlacedItem]], top: float) -> list[str]:
    parts = ['<g class="chart-legend">']
    for index, row in enumerate(rows):
        row_y = top + index * LEGEND_ROW
        for item_x, shown, colour, amount, hover in row:
            parts.append(
                f'<g class="chart-legend-item"><title>{attr(hover)}</title>'
                f'<rect x="{coord(item_x)}" y="{coord(row_y + 2)}" width="{SWATCH}"'
                f' height="{SWATCH}" rx="2" fill="{colour}"/>'
                f'<text x="{coord(item_x + SWATCH + 5)}" y="{coord(row_y + 11)}"'
                f' fill="currentColor">{attr(shown)}<tspan class="chart-legend-value" dx="6"'
                f' fill-opacity="0.7">{attr(amount)}</tspan></text></g>'
            )
    parts.append("</g>")
    return parts


def _label(
    title: str,
    start: datetime,
    end: datetime,
    legend: Sequence[LegendItem],
    unit: str,
    has_data: bool,
) -> str:
    span = f"{moment_label(start)} to {moment_label(end)} UTC"
    if not has_data:
        return f"{title}, {span}: {EMPTY_TEXT.lower()}"
    what = "totals" if unit in ADDITIVE_UNITS else "last values"
    named = [f"{name} {value}" for name, _, value, _ in legend[:MAX_LABELLED_SERIES]]
    if len(legend) > MAX_LABELLED_SERIES:
        named.append(f"and {len(legend) - MAX_LABELLED_SERIES} more")
    return f"{title}, {span}; {what}: {', '.join(named)}"
