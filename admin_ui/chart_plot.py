"""Inside a time chart's plot: the series' lines, areas or stacked bands, and their markers.

`lines_in_range` turns `Series` into time-ordered values within the chart's range; `stack` adds
them up time by time; `Plot` maps times and values to the drawing. A line never crosses a gap: a
None, or a step between points wider than the chart's step, breaks it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from admin_ui.chart_colors import series_color
from admin_ui.chart_parts import Series, attr, coord, line_path, number_attr, runs
from admin_ui.chart_units import epoch_seconds, format_value, from_epoch, moment_label

DENSE_POINTS: Final = 60
"""Past this many points a series' markers are hidden until hovered (they stay for the hover)."""
GAP_STEPS: Final = 1.5
"""Points further apart than this many steps have a gap between them."""


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    colour: str
    values: dict[float, float | None]
    """Epoch seconds to value, in time order, within the chart's range."""


Stack = list[list[float] | None]
"""At each time of a stacked chart, the running sums from the first line up; None where no
line has a value (a gap in the whole stack)."""


@dataclass(frozen=True, slots=True)
class Plot:
    """The plot's rectangle and what it spans: times `first`..`last`, values `low`..`high`."""

    left: float
    right: float
    top: float
    bottom: float
    first: float
    last: float
    low: float
    high: float
    step_seconds: int

    def x(self, when: float) -> float:
        return self.left + (self.right - self.left) * (when - self.first) / (self.last - self.first)

    def y(self, value: float) -> float:
        span = self.high - self.low
        return self.bottom - (self.bottom - self.top) * (value - self.low) / span

    @property
    def max_gap(self) -> float:
        return GAP_STEPS * self.step_seconds


def lines_in_range(series: Sequence[Series], first: float, last: float) -> list[Line]:
    """Each series' points between `first` and `last` (epoch seconds), in time order, with
    values that are not finite numbers taken as missing."""
    lines = []
    for one in series:
        values: dict[float, float | None] = {}
        for moment, value in sorted(one.points, key=lambda point: epoch_seconds(point[0])):
            when = epoch_seconds(moment)
            if first <= when <= last:
                known = value is not None and math.isfinite(value)
                values[when] = float(value) if known and value is not None else None
        lines.append(Line(one.name, series_color(one.name), values))
    return lines


def stack(lines: Sequence[Line]) -> tuple[list[float], Stack]:
    """The union of the lines' times and the stack's running sums at each (a line without a
    value at a time adds nothing there)."""
    times = sorted({when for line in lines for when in line.values})
    sums: Stack = []
    for when in times:
        values = [line.values.get(when) for line in lines]
        if all(value is None for value in values):
            sums.append(None)
            continue
        running, total = [], 0.0
        for value in values:
            total += value or 0.0
            running.append(total)
        sums.append(running)
    return times, sums


def _level(sums: list[float] | None, position: int) -> float:
    """The top of line `position`'s band (the bottom of the next one's)."""
    if sums is None or position < 0:
        return 0.0
    return sums[position]


def _stretches(times: Sequence[float], sums: Stack, max_gap: float) -> list[list[int]]:
    """Indexes into `times` of each unbroken stretch of the stack."""
    index_of = {when: index for index, when in enumerate(times)}
    known = [(when, None if s is None else 0.0) for when, s in zip(times, sums, strict=True)]
    return [[index_of[when] for when, _ in piece] for piece in runs(known, max_gap)]


def line_shapes(lines: Sequence[Line], plot: Plot, *, filled: bool) -> list[str]:
    """A line per series, and with `filled` the area between it and zero."""
    shapes = []
    zero = plot.y(0.0)
    for line in lines:
        pieces = runs(list(line.values.items()), plot.max_gap)
        if not pieces:
            continue
        scaled = [[(plot.x(when), plot.y(value)) for when, value in piece] for piece in pieces]
        shapes.append(f'<g class="chart-series" data-series="{attr(line.name)}">')
        if filled:
            area = "".join(
                f"{line_path(piece)}L{coord(piece[-1][0])} {coord(zero)}"
                f"L{coord(piece[0][0])} {coord(zero)}Z"
                for piece in scaled
            )
            shapes.append(
                f'<path class="chart-area" d="{area}" fill="{line.colour}" fill-opacity="0.16"/>'
            )
        shapes.append(
            f'<path class="chart-line" d="{"".join(line_path(piece) for piece in scaled)}"'
            f' fill="none" stroke="{line.colour}" stroke-width="1.6" stroke-linejoin="round"'
            f' stroke-linecap="round"><title>{attr(line.name)}</title></path></g>'
        )
    return shapes


def stacked_shapes(
    lines: Sequence[Line], times: Sequence[float], sums: Stack, plot: Plot
) -> list[str]:
    """Each line's band, from the sum of the lines under it to that sum plus its own value."""
    stretches = _stretches(times, sums, plot.max_gap)
    shapes = []
    for position, line in enumerate(lines):
        outline, top_line = [], []
        for stretch in stretches:
            tops = [(plot.x(times[i]), plot.y(_level(sums[i], position))) for i in stretch]
            bases = [
                (plot.x(times[i]), plot.y(_level(sums[i], position - 1))) for i in reversed(stretch)
            ]
            outline.append(f"{line_path(tops)}L{line_path(bases)[1:]}Z")
            top_line.append(line_path(tops))
        if not outline:
            continue
        shapes.append(
            f'<g class="chart-series" data-series="{attr(line.name)}">'
            f'<path class="chart-band" d="{"".join(outline)}" fill="{line.colour}"'
            ' fill-opacity="0.72"/>'
            f'<path class="chart-line" d="{"".join(top_line)}" fill="none" stroke="{line.colour}"'
            f' stroke-width="1.2" stroke-linejoin="round"><title>{attr(line.name)}</title></path>'
            "</g>"
        )
    return shapes


def markers(
    lines: Sequence[Line],
    plot: Plot,
    unit: str,
    stacked: tuple[Sequence[float], Stack] | None = None,
) -> list[str]:
    """A marker per known value with its hover text and data attributes (on a stacked chart at
    the top of the line's band, with the running sum as `data-sum`). A dense series' markers
    show only when hovered, except one standing alone between gaps, which no line would show."""
    if stacked is not None:
        times, sums = stacked
        stack_index = {when: index for index, when in enumerate(times)}
        stack_alone = {times[s[0]] for s in _stretches(times, sums, plot.max_gap) if len(s) == 1}
    moments = sorted({when for line in lines for when in line.values})
    xs = {when: coord(plot.x(when)) for when in moments}
    ts = {when: number_attr(when) for when in moments}
    told = {when: moment_label(from_epoch(when)) for when in moments}
    parts = ['<g class="chart-points">']
    for position, line in enumerate(lines):
        known = [(when, value) for when, value in line.values.items() if value is not None]
        if len(known) > DENSE_POINTS:
            if stacked is None:
                pieces = runs(list(line.values.items()), plot.max_gap)
                alone = {piece[0][0] for piece in pieces if len(piece) == 1}
            else:
                alone = stack_alone
            parts.append('<g class="chart-points-dense">')
        else:
            alone = set()
            parts.append("<g>")
        name = attr(line.name)
        for when, value in known:
            label = attr(format_value(value, unit))
            level, total = value, ""
            if stacked is not None:
                level = _level(sums[stack_index[when]], position)
                total = f' data-sum="{number_attr(level)}"'
            classes = "chart-point chart-point-alone" if when in alone else "chart-point"
            parts.append(
                f'<circle class="{classes}" cx="{xs[when]}" cy="{coord(plot.y(level))}" r="2.5"'
                f' fill="{line.colour}" data-series="{name}" data-t="{ts[when]}"'
                f' data-v="{number_attr(value)}"{total} data-label="{label}">'
                f"<title>{name} · {told[when]} · {label}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</g>")
    return parts
