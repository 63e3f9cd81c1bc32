"""What the server-drawn charts share: the `Series` they draw, coordinates written the same way
every time, text that fits its room, and the opening tag of a chart.

Output is deterministic (the same data gives the same bytes: coordinates to one decimal, no
ordering from hashes), and every name is escaped, so a model called `<script>` stays text.
Text and axes use `currentColor`, which the style sheet sets from the theme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Final

FONT_SIZE: Final = 11
CHAR_WIDTH: Final = 6.2
"""Average advance of an 11 px system-font character, to size and cut labels without a font."""
EMPTY_TEXT: Final = "No data in this range"
SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"


@dataclass(frozen=True, slots=True)
class Series:
    """One named line of a time chart: (time, value) points, None where there is no data."""

    name: str
    points: Sequence[tuple[datetime, float | None]]


def attr(value: object) -> str:
    """Text for an attribute value or an element's content, escaped (quotes included)."""
    return escape(str(value), quote=True)


def coord(value: float) -> str:
    """A coordinate to one decimal, never "-0.0"."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def number_attr(value: float) -> str:
    """A value for a data- attribute, for scripts and tests: whole numbers as integers, others
    to ten significant digits (a sum like 0.1 + 0.2 reads back as 0.3)."""
    if float(value).is_integer():
        return str(int(value))
    return format(value, ".10g")


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * CHAR_WIDTH * size / FONT_SIZE


def fit(text: str, width: float, size: float = FONT_SIZE) -> str:
    """`text` cut with an ellipsis to fit `width` pixels; whole when it fits."""
    room = max(int(width / (CHAR_WIDTH * size / FONT_SIZE)), 2)
    return text if len(text) <= room else f"{text[: room - 1]}…"


def svg_open(
    *,
    classes: str,
    width: float,
    height: float,
    label: str,
    chart_id: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """The `<svg>` start tag of a chart: an image to assistive technology, named by `label`,
    scaled to its container's width."""
    parts = [f'<svg xmlns="{SVG_NAMESPACE}"']
    if chart_id is not None:
        parts.append(f' id="{attr(chart_id)}"')
    parts.append(
        f' class="{attr(classes)}" role="img" aria-label="{attr(label)}"'
        f' viewBox="0 0 {coord(width)} {coord(height)}" width="{coord(width)}"'
        f' height="{coord(height)}" font-size="{FONT_SIZE}"'
    )
    parts.extend(f' {name}="{attr(value)}"' for name, value in extra)
    parts.append(">")
    return "".join(parts)


def runs(
    points: Sequence[tuple[float, float | None]], max_gap: float | None = None
) -> list[list[tuple[float, float]]]:
    """Points cut into runs of known values: a None, or a step in x wider than `max_gap`,
    starts a new run. A line is drawn through each run, never across a gap."""
    found: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    previous_x: float | None = None
    for x, value in points:
        wide = max_gap is not None and previous_x is not None and x - previous_x > max_gap
        if value is None or wide:
            if current:
                found.append(current)
            current = []
        if value is not None:
            current.append((x, value))
        previous_x = x
    if current:
        found.append(current)
    return found


def line_path(run: Sequence[tuple[float, float]]) -> str:
    """Path data through already-scaled (x, y) points: "M x y L x y ..."."""
    return "M" + "L".join(f"{coord(x)} {coord(y)}" for x, y in run)
