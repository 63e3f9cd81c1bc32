"""The decisions page's flow: the paths requests took, drawn as server-side SVG.

Four columns, one per step of a path: the rules that matched, the deployment selected, its
provider, and how the request ended. Each value is a bar as tall as the requests that passed
through it; bands join the values of neighbouring steps, as wide as the requests that went from
one to the other. Every bar and band has a `<title>` with its count for hover; the table beside
the chart says the same in text. Colours come from CSS classes, so the chart follows the page's
light or dark theme; outcomes take the status colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Final

from markupsafe import Markup

from telemetry.decision_paths import RequestPath

STEPS: Final = ("Rules matched", "Deployment", "Provider", "Outcome")
WIDTH: Final = 1000
LAST_LABEL: Final = 210
"""Room right of the last column for its labels."""
BAR: Final = 10
TOP: Final = 28
"""Room above the bars for the column headings."""
NODE_GAP: Final = 12
TARGET_HEIGHT: Final = 260
MIN_NODE: Final = 3.0
LABEL_CHARACTERS: Final = 30
VALUES_PER_STEP: Final = 7
"""Values a column shows; the requests of the rest go through one "other" bar."""
NO_RULE: Final = "no rule"
NONE: Final = "none"
OTHER: Final = "other"


def steps_of(path: RequestPath) -> tuple[str, str, str, str]:
    """The four values a path passes through, as the chart and the table name them."""
    return (
        " + ".join(path.rules) or NO_RULE,
        path.deployment or NONE,
        path.provider or NONE,
        path.outcome,
    )


def outcome_tone(outcome: str) -> str:
    """ok | warning | error | neutral: the status colour of an outcome."""
    status = outcome.split(" ", 1)[0]
    return {"ok": "ok", "error": "error", "denied": "warning"}.get(status, "neutral")


@dataclass
class _Node:
    step: int
    name: str
    requests: int = 0
    y: float = 0.0
    height: float = 0.0
    out_offset: float = 0.0
    in_offset: float = 0.0
    order: int = 0
    links: list[tuple[str, int]] = field(default_factory=list)


def _kept_values(paths: Sequence[RequestPath]) -> list[set[str]]:
    """The values each column shows by name: its most taken ones."""
    totals: list[dict[str, int]] = [{} for _ in STEPS]
    for path in paths:
        for step, value in enumerate(steps_of(path)):
            totals[step][value] = totals[step].get(value, 0) + path.requests
    kept = []
    for column in totals:
        ranked = sorted(column, key=lambda value: (-column[value], value))
        kept.append(
            set(ranked if len(ranked) <= VALUES_PER_STEP else ranked[: VALUES_PER_STEP - 1])
        )
    return kept


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARACTERS else f"{name[: LABEL_CHARACTERS - 1]}…"


def _x(step: int) -> float:
    span = WIDTH - LAST_LABEL - BAR
    return step * span / (len(STEPS) - 1)


def _count(value: int) -> str:
    return f"{value:,}"


def render(paths: Sequence[RequestPath], *, chart_id: str = "path-flow") -> Markup:
    """The flow of every request of `paths`, or an empty Markup without any."""
    total = sum(path.requests for path in paths)
    if not paths or total <= 0:
        return Markup("")
    kept = _kept_values(paths)
    nodes: dict[tuple[int, str], _Node] = {}
    links: dict[tuple[int, str, str], int] = {}
    for path in paths:
        values = [
            value if value in kept[step] else OTHER for step, value in enumerate(steps_of(path))
        ]
        for step, value in enumerate(values):
            node = nodes.setdefault((step, value), _Node(step, value))
            node.requests += path.requests
            if step + 1 < len(values):
                key = (step, value, values[step + 1])
                links[key] = links.get(key, 0) + path.requests
    columns = [
        sorted(
            (n for n in nodes.values() if n.step == step),
            key=lambda n: (n.name == OTHER, -n.requests, n.name),
        )
        for step in range(len(STEPS))
    ]
    busiest = max(len(column) for column in columns)
    room = max(TARGET_HEIGHT, busiest * 26) - NODE_GAP * (busiest - 1)
    scale = room / total
    height = 0.0
    for column in columns:
        y = float(TOP)
        for order, node in enumerate(column):
            node.order = order
            node.y = y
            node.height = max(node.requests * scale, MIN_NODE)
            y += node.height + NODE_GAP
        height = max(height, y - NODE_GAP)
    height += 6
    parts = [
        f'<svg class="flow" id="{chart_id}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{chart_id}-title">The paths of {_count(total)} requests: '
        + ", then ".join(s.lower() for s in STEPS)
        + "</title>",
    ]
    for step, name in enumerate(STEPS):
        parts.append(f'<text class="flow-head" x="{_x(step):.1f}" y="14">{escape(name)}</text>')
    ordered = sorted(
        links.items(),
        key=lambda item: (
            item[0][0],
            nodes[(item[0][0], item[0][1])].order,
            nodes[(item[0][0] + 1, item[0][2])].order,
        ),
    )
    # Bands leave a bar in the order of the bars they reach, and reach a bar in the order of the
    # bars they leave, so no two bands of one bar cross at its edge.
    arriving = sorted(
        ordered,
        key=lambda item: (
            item[0][0],
            nodes[(item[0][0] + 1, item[0][2])].order,
            nodes[(item[0][0], item[0][1])].order,
        ),
    )
    starts: dict[tuple[int, str, str], float] = {}
    for key, requests in ordered:
        source = nodes[(key[0], key[1])]
        starts[key] = source.y + source.out_offset
        source.out_offset += requests * source.height / source.requests
    ends: dict[tuple[int, str, str], float] = {}
    for key, requests in arriving:
        target = nodes[(key[0] + 1, key[2])]
        ends[key] = target.y + target.in_offset
        target.in_offset += requests * target.height / target.requests
    for key, requests in ordered:
        step, source_name, target_name = key
        source = nodes[(step, source_name)]
        thickness = requests * source.height / source.requests
        x0 = _x(step) + BAR
        x1 = _x(step + 1)
        middle = (x0 + x1) / 2
        y0, y1 = starts[key], ends[key]
        share = 100 * requests / total
        parts.append(
            f'<path class="flow-link" d="M{x0:.1f},{y0:.1f} C{middle:.1f},{y0:.1f} '
            f"{middle:.1f},{y1:.1f} {x1:.1f},{y1:.1f} L{x1:.1f},{y1 + thickness:.1f} "
            f"C{middle:.1f},{y1 + thickness:.1f} {middle:.1f},{y0 + thickness:.1f} "
            f'{x0:.1f},{y0 + thickness:.1f} Z"><title>{escape(source_name)} → '
            f"{escape(target_name)}: {_count(requests)} requests ({share:.1f} %)</title></path>"
        )
    for column in columns:
        for node in column:
            tone = outcome_tone(node.name) if node.step == len(STEPS) - 1 else ""
            x = _x(node.step)
            middle_y = node.y + node.height / 2
            share = 100 * node.requests / total
            parts.append(
                f'<g class="flow-node-group"><title>{escape(STEPS[node.step])}: '
                f"{escape(node.name)}, {_count(node.requests)} requests ({share:.1f} %)</title>"
                f'<rect class="flow-node{f" flow-node-{tone}" if tone else ""}" x="{x:.1f}" '
                f'y="{node.y:.1f}" width="{BAR}" height="{node.height:.1f}" rx="2"/>'
                f'<text class="flow-label" x="{x + BAR + 6:.1f}" y="{middle_y:.1f}" '
                f'dy="0.35em">{escape(_short(node.name))} '
                f'<tspan class="flow-count">{_count(node.requests)}</tspan></text></g>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
