"""A trace's spans as a waterfall: an SVG drawn on the server, to scale, nested by parent.

`arrange` puts the spans in tree order (each parent followed by its children, siblings by start)
with their depth and their offset from the trace's first instant; `render` draws them: one row per
span, a bar from its start to its end on a shared time axis with ticks in round milliseconds, and a
`<title>` on each row with the span's timing, status and attributes for the hover. Colours come
from the page's style sheet (classes only), so the light and dark themes both apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from admin_ui.formatting import compact_json, ms

WIDTH = 1000
LABEL_WIDTH = 250
DURATION_WIDTH = 78
AXIS_HEIGHT = 26
ROW_HEIGHT = 24
BAR_HEIGHT = 12
INDENT = 14
MIN_BAR_WIDTH = 2.0
CHAR_WIDTH = 6.6
"""Average advance of a 12 px system-font character, for cutting labels to their column."""

PLOT_LEFT = LABEL_WIDTH + 8
PLOT_RIGHT = WIDTH - DURATION_WIDTH - 8
PLOT_WIDTH = PLOT_RIGHT - PLOT_LEFT


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment inside a span worth pointing at, such as the first token of a stream."""

    offset_ms: float
    """From the span's start."""
    label: str


@dataclass(frozen=True, slots=True)
class Row:
    span: Mapping[str, Any]
    depth: int
    start_ms: float
    """From the trace's first instant."""
    length_ms: float


def arrange(spans: Sequence[Mapping[str, Any]]) -> list[Row]:
    """The spans in tree order with depth and offsets.

    A span whose parent is not among them (the root, whose parent may be the caller's own span,
    or a child whose parent was not recorded) is drawn at the top level. Parent links that loop
    are cut where they would repeat a span.
    """
    if not spans:
        return []
    origin = min(_moment(span["started_at"]) for span in spans)
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_span_id")
        key = parent if parent in ids and parent != span["span_id"] else None
        children.setdefault(key, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda span: (_moment(span["started_at"]), -_length(span)))

    rows: list[Row] = []
    placed: set[str] = set()

    def place(span: Mapping[str, Any], depth: int) -> None:
        placed.add(span["span_id"])
        start = (_moment(span["started_at"]) - origin).total_seconds() * 1000
        rows.append(Row(span=span, depth=depth, start_ms=start, length_ms=_length(span)))
        for child in children.get(span["span_id"], []):
            if child["span_id"] not in placed:
                place(child, depth + 1)

    for root in children.get(None, []):
        place(root, 0)
    for span in sorted(spans, key=lambda span: _moment(span["started_at"])):
        if span["span_id"] not in placed:  # only spans in a parent loop are left
            place(span, 0)
    return rows


def nice_step(total_ms: float, target_ticks: int = 6) -> float:
    """The tick spacing of 1, 2 or 5 times a power of ten whose tick count is nearest to
    `target_ticks` (the larger spacing on a tie)."""
    if total_ms <= 0 or not math.isfinite(total_ms):
        return 1.0
    power = 10 ** math.floor(math.log10(total_ms / target_ticks))
    candidates = [
        factor * scale for scale in (power / 10, power, power * 10) for factor in (1, 2, 5)
    ]
    return float(
        min(
            candidates,
            key=lambda step: (abs(math.floor(total_ms / step + 1e-9) + 1 - target_ticks), -step),
        )
    )


def ticks(total_ms: float, target_ticks: int = 6) -> list[float]:
    """Tick positions in ms from 0 up to `total_ms`."""
    step = nice_step(total_ms, target_ticks)
    count = math.floor(total_ms / step + 1e-9)
    return [round(step * index, 10) for index in range(count + 1)]


def tick_label(value_ms: float, step_ms: float) -> str:
    if value_ms == 0:
        return "0"
    if step_ms >= 1000:
        decimals = 0 if step_ms % 1000 == 0 else 1
        return f"{value_ms / 1000:.{decimals}f} s"
    decimals = max(0, -math.floor(math.log10(step_ms))) if step_ms < 1 else 0
    return f"{value_ms:.{decimals}f} ms"


def render(
    spans: Sequence[Mapping[str, Any]],
    marks: Mapping[str, Sequence[Mark]] | None = None,
) -> Markup:
    """The waterfall as an inline `<svg>`; an empty string when there are no spans."""
    rows = arrange(spans)
    if not rows:
        return Markup("")
    total = max(max(row.start_ms + row.length_ms for row in rows), 1e-3)
    scale = PLOT_WIDTH / total
    height = AXIS_HEIGHT + ROW_HEIGHT * len(rows) + 6
    step = nice_step(total)
    parts: list[Markup] = [
        Markup(
            '<svg class="waterfall" viewBox="0 0 {w} {h}" width="100%" role="img" '
            'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
        ).format(
            w=WIDTH,
            h=height,
            label=f"Span waterfall: {len(rows)} spans over {ms(total)}",
        )
    ]
    parts.append(Markup('<g class="wf-axis">'))
    for tick in ticks(total):
        x = PLOT_LEFT + tick * scale
        anchor = "end" if x > PLOT_RIGHT - 20 else ("start" if tick == 0 else "middle")
        parts.append(
            Markup(
                '<line class="wf-grid" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}"/>'
                '<text class="wf-tick" x="{x}" y="{y}" text-anchor="{anchor}">{label}</text>'
            ).format(
                x=_n(x),
                top=AXIS_HEIGHT - 6,
                bottom=height - 4,
                y=AXIS_HEIGHT - 11,
                anchor=anchor,
                label=tick_label(tick, step),
            )
        )
    parts.append(
        Markup('<text class="wf-head" x="0" y="{y}">Span</text>').format(y=AXIS_HEIGHT - 11)
    )
    parts.append(
        Markup('<text class="wf-head" x="{x}" y="{y}" text-anchor="end">Duration</text>').format(
            x=WIDTH, y=AXIS_HEIGHT - 11
        )
    )
    parts.append(Markup("</g>"))
    for index, row in enumerate(rows):
        parts.append(_row(row, index, scale, (marks or {}).get(row.span["span_id"], ())))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _row(row: Row, index: int, scale: float, marks: Sequence[Mark]) -> Markup:
    span = row.span
    top = AXIS_HEIGHT + index * ROW_HEIGHT
    middle = top + ROW_HEIGHT / 2
    x = PLOT_LEFT + row.start_ms * scale
    width = max(row.length_ms * scale, MIN_BAR_WIDTH)
    x = min(x, PLOT_RIGHT - width)
    indent = row.depth * INDENT
    name = _fit(str(span.get("name", "")), LABEL_WIDTH - indent - 4)
    classes = ["wf-bar"]
    if row.depth == 0:
        classes.append("wf-bar-root")
    if span.get("status") not in (None, "ok"):
        classes.append("wf-bar-error")
    parts = [
        Markup('<g class="wf-row" data-span-id="{id}"><title>{title}</title>').format(
            id=span["span_id"], title=_title(row, marks)
        ),
        Markup('<rect class="wf-band" x="0" y="{y}" width="{w}" height="{h}"/>').format(
            y=top, w=WIDTH, h=ROW_HEIGHT
        ),
        Markup('<text class="wf-name" x="{x}" y="{y}">{name}</text>').format(
            x=indent, y=_n(middle + 4), name=name
        ),
        Markup('<rect class="{classes}" x="{x}" y="{y}" width="{w}" height="{h}" rx="2"/>').format(
            classes=" ".join(classes),
            x=_n(x),
            y=_n(middle - BAR_HEIGHT / 2),
            w=_n(width),
            h=BAR_HEIGHT,
        ),
    ]
    for mark in marks:
        if 0 <= mark.offset_ms <= row.length_ms:
            mark_x = x + mark.offset_ms * scale
            parts.append(
                Markup('<line class="wf-mark" x1="{x}" x2="{x}" y1="{y1}" y2="{y2}"/>').format(
                    x=_n(mark_x), y1=_n(middle - 8), y2=_n(middle + 8)
                )
            )
    parts.append(
        Markup('<text class="wf-duration" x="{x}" y="{y}" text-anchor="end">{d}</text>').format(
            x=WIDTH, y=_n(middle + 4), d=ms(span.get("duration_ms", row.length_ms))
        )
    )
    parts.append(Markup("</g>"))
    return Markup("").join(parts)


def _title(row: Row, marks: Sequence[Mark]) -> str:
    span = row.span
    lines = [
        f"{span.get('name', '')} ({span.get('component', '')})",
        f"{ms(span.get('duration_ms', row.length_ms))} · starts at +{ms(row.start_ms)}"
        f" · {span.get('status', '')}",
    ]
    lines += [f"{mark.label}: +{ms(mark.offset_ms)}" for mark in marks]
    attributes = span.get("attributes") or {}
    if isinstance(attributes, Mapping):
        lines += [
            f"{key} = {_value(value)}" for key, value in attributes.items() if value is not None
        ]
    for event in span.get("events") or []:
        if isinstance(event, Mapping):
            lines.append(f"event: {event.get('name', compact_json(event))}")
    lines.append(f"span {span['span_id']}")
    return "\n".join(lines)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else compact_json(value)


def _fit(text: str, width: float) -> str:
    room = max(int(width / CHAR_WIDTH), 4)
    return text if len(text) <= room else text[: room - 1] + "…"


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _length(span: Mapping[str, Any]) -> float:
    return max((_moment(span["ended_at"]) - _moment(span["started_at"])).total_seconds() * 1000, 0)


def _n(value: float) -> str:
    """A coordinate with two decimals at most, so the markup stays small."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
