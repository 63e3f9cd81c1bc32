"""The overview's small pieces: a sparkline (the shape of a series, no axes) and a stat tile (a
big number, its change against the previous period, a sparkline under it).

A change is relative ("+12.5 %"), except for a unit that is itself a percentage, whose change is
told in percentage points ("+1.2 pp"): an error rate going from 2 % to 3 % rose one point, which
"+50 %" would hide. Whether a rise is good is the caller's to say (`higher_is_better`): the class
is `change-good`, `change-bad` or `change-flat`; "—" when there is nothing to compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from markupsafe import Markup

from admin_ui.chart_parts import attr, coord, line_path, number_attr, runs, svg_open
from admin_ui.chart_units import MINUS, MISSING, check_unit, format_value

SPARK_PAD: Final = 2.5
"""Room for the line's width and the last point's dot."""


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sparkline(
    values: Sequence[float | None], *, unit: str, width: int = 120, height: int = 28
) -> Markup:
    """The values, evenly spaced, scaled between their own minimum and maximum; gaps for None;
    a dot on the last known value; a `<title>` with the minimum, maximum and last."""
    check_unit(unit)
    points = [
        (index, float(v) if _known(v) and v is not None else None) for index, v in enumerate(values)
    ]
    known = [value for _, value in points if value is not None]
    if not known:
        label = "No data"
    else:
        label = " · ".join(
            f"{what} {format_value(amount, unit)}"
            for what, amount in (("min", min(known)), ("max", max(known)), ("last", known[-1]))
        )
    parts = [
        svg_open(classes="sparkline", width=width, height=height, label=label),
        f"<title>{attr(label)}</title>",
    ]
    if not known:
        middle = coord(height / 2)
        parts.append(
            f'<line class="sparkline-none" x1="{coord(SPARK_PAD)}" x2="{coord(width - SPARK_PAD)}"'
            f' y1="{middle}" y2="{middle}" stroke="currentColor" stroke-opacity="0.35"'
            ' stroke-dasharray="2 3"/></svg>'
        )
        return Markup("".join(parts))
    low, high = min(known), max(known)
    count = len(points)

    def x(index: float) -> float:
        if count == 1:
            return width / 2
        return SPARK_PAD + (width - 2 * SPARK_PAD) * index / (count - 1)

    def y(value: float) -> float:
        if high == low:
            return height / 2
        return height - SPARK_PAD - (height - 2 * SPARK_PAD) * (value - low) / (high - low)

    pieces = [[(x(i), y(v)) for i, v in piece] for piece in runs(points)]
    parts.append(
        f'<path class="sparkline-line" d="{"".join(line_path(p) for p in pieces)}" fill="none"'
        ' stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"'
        ' stroke-linecap="round"/>'
    )
    last_x, last_y = pieces[-1][-1]
    parts.append(
        f'<circle class="sparkline-last" cx="{coord(last_x)}" cy="{coord(last_y)}" r="2"'
        ' fill="currentColor"/></svg>'
    )
    return Markup("".join(parts))


def change_text(
    value: float | None, previous: float | None, unit: str, *, higher_is_better: bool
) -> tuple[str, str, str]:
    """(text, class, hover) of the change from `previous` to `value`."""
    check_unit(unit)
    if value is None or previous is None or not (_known(value) and _known(previous)):
        return MISSING, "change-flat", "No previous period to compare with"
    before = f"{format_value(previous, unit)} in the previous period"
    if unit == "percent":
        amount, suffix = (value - previous) * 100, " pp"
    elif previous == 0:
        if value == 0:
            return "0 %", "change-flat", f"As {before}"
        return MISSING, "change-flat", "Nothing in the previous period to compare with"
    else:
        amount, suffix = (value - previous) / abs(previous) * 100, " %"
    written = f"{abs(amount):.1f}" if abs(amount) < 99.95 else f"{abs(amount):,.0f}"
    if float(written.replace(",", "")) == 0:
        return f"0{suffix}", "change-flat", f"As {before}"
    sign = "+" if amount > 0 else MINUS
    rose = amount > 0
    good = rose == higher_is_better
    return f"{sign}{written}{suffix}", "change-good" if good else "change-bad", f"Against {before}"


def stat_tile(
    label: str,
    value: float | None,
    unit: str,
    *,
    previous: float | None,
    sparkline_values: Sequence[float | None] | None,
    higher_is_better: bool,
) -> Markup:
    """A tile: the label, the value in its unit, the change against the previous period, and a
    sparkline of the period when values are given."""
    text, change_class, hover = change_text(
        value, previous, unit, higher_is_better=higher_is_better
    )
    exact = f' data-v="{number_attr(value)}"' if value is not None and _known(value) else ""
    parts = [
        '<div class="stat-tile">',
        f'<div class="stat-label">{attr(label)}</div>',
        f'<div class="stat-value"{exact}>{attr(format_value(value, unit))}</div>',
        f'<div class="stat-change {change_class}" title="{attr(hover)}">{attr(text)}</div>',
    ]
    if sparkline_values is not None:
        parts.append(f'<div class="stat-spark">{sparkline(sparkline_values, unit=unit)}</div>')
    parts.append("</div>")
    return Markup("".join(parts))
