"""The replay page's chart: requests per model before and after, as server-drawn SVG.

One group of two horizontal bars per model (recorded, replayed), on one scale in requests, with
an axis, a legend and a `<title>` on every bar for the exact value on hover. Colours come from
CSS classes (`chart-before`, `chart-after`) with fills inline as a fallback; text uses
`currentColor`, so the chart follows the page's light or dark theme.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

from markupsafe import Markup

from admin_ui.chart_units import nice_step

WIDTH: Final = 640
LABEL_WIDTH: Final = 170
VALUE_WIDTH: Final = 56
LEGEND_HEIGHT: Final = 30
BAR: Final = 13
BAR_GAP: Final = 3
GROUP_GAP: Final = 14
AXIS_HEIGHT: Final = 40
LABEL_CHARACTERS: Final = 26
SERIES: Final = (
    ("before", "Before (as recorded)", "#8d96a5"),
    ("after", "After (replayed rules)", "#3b6fd8"),
)


def count_text(value: float) -> str:
    """A request count: whole, or with up to two decimals when a weighted split made it
    fractional."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARACTERS else f"{name[: LABEL_CHARACTERS - 1]}…"


def mix_chart(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    *,
    chart_id: str = "replay-mix-chart",
) -> Markup:
    """Grouped bars of the replay's `model_mix.before` and `.after` entries (`name`,
    `requests`, `share`)."""
    rows: dict[str, dict[str, Mapping[str, Any]]] = {}
    for series, entries in (("before", before), ("after", after)):
        for entry in entries:
            rows.setdefault(str(entry["name"]), {})[series] = entry
    names = sorted(
        rows,
        key=lambda name: (
            -max(float(rows[name][s]["requests"]) for s in rows[name]),
            name,
        ),
    )
    largest = max((float(e["requests"]) for r in rows.values() for e in r.values()), default=0.0)
    step = nice_step(largest, whole=True)
    top = max(step, math.ceil(largest / step) * step)
    plot_width = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    group = 2 * BAR + BAR_GAP + GROUP_GAP
    height = LEGEND_HEIGHT + max(len(names), 1) * group + AXIS_HEIGHT
    plot_bottom = LEGEND_HEIGHT + len(names) * group

    def x(value: float) -> float:
        return LABEL_WIDTH + plot_width * value / top

    title = "Requests per model, before and after the replayed rules"
    summary = "; ".join(
        f"{name}: "
        + ", ".join(
            f"{series} {count_text(float(rows[name][series]['requests']))}"
            for series, _, _ in SERIES
            if series in rows[name]
        )
        for name in names
    )
    parts = [
        f'<svg id="{chart_id}" class="rules-chart" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" font-size="12" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(summary or "No requests.")}</desc>',
    ]
    legend_x = LABEL_WIDTH
    for series, label, colour in SERIES:
        parts.append(
            f'<rect class="chart-{series}" fill="{colour}" x="{legend_x}" y="8" '
            f'width="12" height="12" rx="2"/>'
            f'<text x="{legend_x + 17}" y="18" fill="currentColor">{escape(label)}</text>'
        )
        legend_x += 190
    value = 0.0
    while value <= top + 1e-9:
        tick = x(value)
        parts.append(
            f'<line class="chart-grid" x1="{tick:.1f}" x2="{tick:.1f}" y1="{LEGEND_HEIGHT}" '
            f'y2="{plot_bottom}" stroke="currentColor" stroke-opacity="0.15"/>'
            f'<text x="{tick:.1f}" y="{plot_bottom + 16}" text-anchor="middle" '
            f'fill="currentColor">{count_text(value)}</text>'
        )
        value += step
    parts.append(
        f'<line x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH + plot_width}" y1="{plot_bottom}" '
        f'y2="{plot_bottom}" stroke="currentColor" stroke-opacity="0.5"/>'
        f'<text x="{LABEL_WIDTH + plot_width / 2:.1f}" y="{plot_bottom + 34}" '
        f'text-anchor="middle" fill="currentColor">requests</text>'
    )
    for index, name in enumerate(names):
        y = LEGEND_HEIGHT + index * group + GROUP_GAP / 2
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR + BAR_GAP / 2 + 4:.1f}" text-anchor="end" '
            f'fill="currentColor"><title>{escape(name)}</title>{escape(_short(name))}</text>'
        )
        for offset, (series, label, colour) in enumerate(SERIES):
            found = rows[name].get(series)
            requests = float(found["requests"]) if found is not None else 0.0
            share = float(found["share"]) if found is not None else 0.0
            bar_y = y + offset * (BAR + BAR_GAP)
            width = x(requests) - LABEL_WIDTH
            hover = f"{name}, {label.lower()}: {count_text(requests)} requests ({share:.1%})"
            parts.append(
                f'<rect class="chart-{series}" fill="{colour}" x="{LABEL_WIDTH}" '
                f'y="{bar_y:.1f}" width="{width:.1f}" height="{BAR}">'
                f"<title>{escape(hover)}</title></rect>"
                f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{bar_y + BAR - 2:.1f}" '
                f'fill="currentColor">{count_text(requests)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
