"""A time chart with ranges: lines (some dashed) over shaded bands and marked stretches of time,
for a forecast and its interval, or an hour's expected value and the range it may stray in.

    band_chart(
        [Drawn(Series("Spent", days), colour=BLUE), Drawn(Series("Forecast", ahead), dashed=True)],
        bands=[Band("80 % interval", [(day, low, high), ...], colour=BLUE)],
        spans=[Span(start, end, "Anomaly")],
        start=..., end=..., step_seconds=86400, unit="usd", chart_id="forecast", title="...",
    )

It is drawn on `chart_time`'s frame (the same value and time axes, legend, markers and crosshair
data), so `charts.js` gives it the same hover as every time chart: each line's and each band's
bounds' values at the time pointed at. The value axis covers the bands as well as the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from markupsafe import Markup

from admin_ui.chart_colors import series_color
from admin_ui.chart_parts import (
    Series,
    attr,
    coord,
    line_path,
    number_attr,
    runs,
)
from admin_ui.chart_plot import Line, Plot, lines_in_range, markers
from admin_ui.chart_time import WIDTH, _legend_value, checked_range, frame, value_plot
from admin_ui.chart_units import (
    epoch_seconds,
    format_value,
)

SPAN_COLOUR: Final = "#dc2626"
BAND_OPACITY: Final = 0.16


@dataclass(frozen=True, slots=True)
class Drawn:
    """A line of the chart: its series, its colour (default: the series name's), whether it
    is dashed (an estimate rather than a measurement), and whether it is a level (a threshold:
    the legend shows its value, never a total)."""

    series: Series
    colour: str | None = None
    dashed: bool = False
    level: bool = False


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded range: (time, low, high) points; a None bound is a gap."""

    name: str
    points: Sequence[tuple[datetime, float | None, float | None]]
    colour: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time to point out, shaded across the plot's height."""

    start: datetime
    end: datetime
    label: str


def _band_lines(band: Band, first: float, last: float) -> tuple[Line, Line]:
    colour = band.colour or series_color(band.name)
    low = Series(f"{band.name}, low", [(at, lo) for at, lo, _ in band.points])
    high = Series(f"{band.name}, high", [(at, hi) for at, _, hi in band.points])
    lower, upper = lines_in_range([low, high], first, last)
    return Line(lower.name, colour, lower.values), Line(upper.name, colour, upper.values)


def _band_shape(lower: Line, upper: Line, plot: Plot) -> str:
    both = [
        (when, None if low is None or upper.values.get(when) is None else low)
        for when, low in lower.values.items()
    ]
    pieces = []
    for piece in runs(both, plot.max_gap):
        tops = [(plot.x(when), plot.y(upper.values[when] or 0.0)) for when, _ in piece]
        bottoms = [(plot.x(when), plot.y(low)) for when, low in reversed(piece)]
        pieces.append(f"{line_path(tops)}L{line_path(bottoms)[1:]}Z")
    if not pieces:
        return ""
    return (
        f'<path class="chart-band-range" d="{"".join(pieces)}" fill="{lower.colour}"'
        f' fill-opacity="{BAND_OPACITY}" stroke="none"><title>{attr(lower.name[:-5])}</title>'
        "</path>"
    )


def _line_shape(line: Line, plot: Plot, dashed: bool) -> str:
    pieces = runs(list(line.values.items()), plot.max_gap)
    if not pieces:
        return ""
    path = "".join(line_path([(plot.x(w), plot.y(v)) for w, v in piece]) for piece in pieces)
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<g class="chart-series" data-series="{attr(line.name)}">'
        f'<path class="chart-line{" chart-line-dashed" if dashed else ""}" d="{path}"'
        f' fill="none" stroke="{line.colour}" stroke-width="1.6" stroke-linejoin="round"'
        f' stroke-linecap="round"{dash}><title>{attr(line.name)}</title></path></g>'
    )


def _span_shape(span: Span, plot: Plot) -> str:
    left = max(plot.left, plot.x(epoch_seconds(span.start)))
    right = min(plot.right, plot.x(epoch_seconds(span.end)))
    if right <= left:
        return ""
    return (
        f'<rect class="chart-span" x="{coord(left)}" y="{coord(plot.top)}"'
        f' width="{coord(right - left)}" height="{coord(plot.bottom - plot.top)}"'
        f' fill="{SPAN_COLOUR}" fill-opacity="0.09" data-start="{number_attr(epoch_seconds(span.start))}"'
        f' data-end="{number_attr(epoch_seconds(span.end))}"><title>{attr(span.label)}</title></rect>'
    )


def band_chart(
    lines: Sequence[Drawn],
    *,
    bands: Sequence[Band] = (),
    spans: Sequence[Span] = (),
    start: datetime,
    end: datetime,
    step_seconds: int,
    unit: str,
    chart_id: str,
    title: str,
    height: int = 220,
    width: int = WIDTH,
) -> Markup:
    """The lines, bands and spans between `start` and `end` (UTC) as an SVG chart."""
    start, end = checked_range(start, end, step_seconds, unit)
    first, last = epoch_seconds(start), epoch_seconds(end)
    drawn = [
        Line(found.name, wanted.colour or found.colour, found.values)
        for wanted, found in zip(
            lines, lines_in_range([item.series for item in lines], first, last), strict=True
        )
    ]
    ranges = [_band_lines(band, first, last) for band in bands]
    everything = [*drawn, *(line for pair in ranges for line in pair)]
    extents = [v for line in everything for v in line.values.values() if v is not None]
    has_data = bool(extents)
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
    legend = [
        (line.name, line.colour, *(_level_legend if item.level else _legend_value)(line, unit))
        for line, item in zip(drawn, lines, strict=True)
    ]
    for band, (lower, upper) in zip(bands, ranges, strict=True):
        legend.append((band.name, lower.colour, *_band_legend(lower, upper, unit)))
    head, tail = frame(
        classes="chart time-chart band-chart chart-line",
        kind="line",
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
    parts.extend(_span_shape(span, plot) for span in spans)
    parts.extend(_band_shape(lower, upper, plot) for lower, upper in ranges)
    parts.extend(
        _line_shape(line, plot, item.dashed) for line, item in zip(drawn, lines, strict=True)
    )
    measured = [line for line, item in zip(drawn, lines, strict=True) if not item.dashed]
    estimated = [line for line, item in zip(drawn, lines, strict=True) if item.dashed]
    parts.extend(markers(measured, plot, unit))
    # Estimates and a band's bounds are for the hover: their markers show when pointed at.
    parts.extend(
        '<g class="chart-points-dense">' if part == "<g>" else part
        for part in markers([*estimated, *(line for pair in ranges for line in pair)], plot, unit)
    )
    return Markup("".join([*parts, *tail]))


def _level_legend(line: Line, unit: str) -> tuple[str, str]:
    known = [v for v in line.values.values() if v is not None]
    text = format_value(known[-1] if known else None, unit)
    return text, f"{line.name}: {text}"


def _band_legend(lower: Line, upper: Line, unit: str) -> tuple[str, str]:
    """The band's last range, "low to high"."""
    lows = [v for v in lower.values.values() if v is not None]
    highs = [v for v in upper.values.values() if v is not None]
    if not lows or not highs:
        return format_value(None, unit), f"{lower.name[:-5]}: no range"
    text = f"{format_value(lows[-1], unit)} to {format_value(highs[-1], unit)}"
    return text, f"{lower.name[:-5]}: {text} last"
