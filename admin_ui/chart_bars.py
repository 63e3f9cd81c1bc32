"""Named values as horizontal bars, largest wherever the caller put it (rows are drawn in the
order given): the "top models", "top keys" kind of chart.

Each row has its name on the left (cut to fit, the whole name in a `<title>`), a bar to scale
from zero, and the value written at the bar's end. Bars take the name's series colour, or the
console's accent when the names are not series (`colour_by_name=False`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from markupsafe import Markup

from admin_ui.chart_colors import series_color
from admin_ui.chart_parts import (
    EMPTY_TEXT,
    attr,
    coord,
    fit,
    number_attr,
    svg_open,
    text_width,
)
from admin_ui.chart_units import check_unit, format_value

WIDTH: Final = 640
LABEL_WIDTH: Final = 170
LABEL_GAP: Final = 8
VALUE_GAP: Final = 6
ROW: Final = 24
BAR: Final = 14
PAD: Final = 4
EMPTY_HEIGHT: Final = 56
ACCENT_FALLBACK: Final = "#4f46e5"
"""The light theme's accent, for a reader without the style sheet; the sheet sets the theme's."""
MAX_LABELLED_ROWS: Final = 12


def bar_chart(
    rows: Sequence[tuple[str, float]],
    *,
    unit: str,
    chart_id: str,
    title: str,
    colour_by_name: bool = True,
    width: int = WIDTH,
) -> Markup:
    """One horizontal bar per (name, value) row, on one scale from zero."""
    check_unit(unit)
    values = [(name, float(value)) for name, value in rows if math.isfinite(value)]
    if not values:
        return Markup(
            svg_open(
                classes="chart bar-chart",
                chart_id=chart_id,
                width=width,
                height=EMPTY_HEIGHT,
                label=f"{title}: {EMPTY_TEXT.lower()}",
            )
            + f'<text class="chart-empty" x="{coord(width / 2)}" y="{coord(EMPTY_HEIGHT / 2 + 4)}"'
            f' text-anchor="middle" fill="currentColor">{attr(EMPTY_TEXT)}</text></svg>'
        )
    labels = [format_value(value, unit) for _, value in values]
    value_room = max(text_width(label) for label in labels) + VALUE_GAP + 4
    plot_left, plot_right = LABEL_WIDTH, width - value_room
    low = min(0.0, *(value for _, value in values))
    high = max(0.0, *(value for _, value in values))
    scale = (plot_right - plot_left) / (high - low) if high > low else 0.0

    def x(value: float) -> float:
        return plot_left + (value - low) * scale

    height = PAD * 2 + ROW * len(values)
    named = [f"{name} {label}" for (name, _), label in zip(values, labels, strict=True)]
    if len(named) > MAX_LABELLED_ROWS:
        named = [*named[:MAX_LABELLED_ROWS], f"and {len(named) - MAX_LABELLED_ROWS} more"]
    parts = [
        svg_open(
            classes="chart bar-chart",
            chart_id=chart_id,
            width=width,
            height=height,
            label=f"{title}: {', '.join(named)}",
            extra=(("data-unit", unit),),
        )
    ]
    zero = x(0.0)
    for index, ((name, value), label) in enumerate(zip(values, labels, strict=True)):
        top = PAD + index * ROW + (ROW - BAR) / 2
        left, right = sorted((zero, x(value)))
        fill = (
            f'class="chart-bar" fill="{series_color(name)}"'
            if colour_by_name
            else f'class="chart-bar chart-bar-accent" fill="{ACCENT_FALLBACK}"'
        )
        parts.append(
            f'<g class="chart-bar-row"><text class="chart-bar-label"'
            f' x="{coord(LABEL_WIDTH - LABEL_GAP)}" y="{coord(top + BAR - 3)}" text-anchor="end"'
            f' fill="currentColor"><title>{attr(name)}</title>'
            f"{attr(fit(name, LABEL_WIDTH - LABEL_GAP))}</text>"
            f'<rect {fill} x="{coord(left)}" y="{coord(top)}" width="{coord(right - left)}"'
            f' height="{BAR}" rx="2" data-series="{attr(name)}" data-v="{number_attr(value)}"'
            f' data-label="{attr(label)}"><title>{attr(f"{name}: {label}")}</title></rect>'
            f'<text class="chart-bar-value" x="{coord(max(right, zero) + VALUE_GAP)}"'
            f' y="{coord(top + BAR - 3)}" fill="currentColor">{attr(label)}</text></g>'
        )
    if low < 0:
        parts.append(
            f'<line x1="{coord(zero)}" x2="{coord(zero)}" y1="{PAD}" y2="{coord(height - PAD)}"'
            ' stroke="currentColor" stroke-opacity="0.45"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
