"""The time chart, read back as XML: markers, scale, stacking, gaps, axes, legend, the empty
state, escaping and determinism."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from admin_ui.chart_colors import series_color
from admin_ui.chart_svg import EMPTY_TEXT, Series, time_chart
from admin_ui.chart_units import time_label, time_ticks

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOUR = 3600


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def points(*values: float | None, every: float = 1.0) -> list[tuple[datetime, float | None]]:
    return [(at(index * every), value) for index, value in enumerate(values)]


def draw(series: Sequence[Series], **options: Any) -> ET.Element:
    arguments: dict[str, Any] = {
        "start": START,
        "end": at(6),
        "step_seconds": HOUR,
        "unit": "count",
        "chart_id": "chart",
        "title": "Requests",
        **options,
    }
    return ET.fromstring(str(time_chart(series, **arguments)))


def markers(root: ET.Element, series: str | None = None) -> list[ET.Element]:
    found = [
        circle
        for circle in root.iter(f"{SVG}circle")
        if "chart-point" in circle.get("class", "").split()
    ]
    return [m for m in found if series is None or m.get("data-series") == series]


def value_scale(root: ET.Element) -> Callable[[float], float]:
    """Value to y, read from the grid lines the chart drew for its ticks."""
    grid = [
        (float(line.attrib["data-tick"]), float(line.attrib["y1"]))
        for line in root.iter(f"{SVG}line")
        if "data-tick" in line.attrib
    ]
    (low, low_y), (high, high_y) = grid[0], grid[-1]
    return lambda value: low_y + (value - low) * (high_y - low_y) / (high - low)


def paths(root: ET.Element, css_class: str, series: str | None = None) -> list[ET.Element]:
    found = []
    for group in root.iter(f"{SVG}g"):
        if "chart-series" not in group.get("class", ""):
            continue
        if series is not None and group.get("data-series") != series:
            continue
        found += [p for p in group.iter(f"{SVG}path") if css_class in p.get("class", "")]
    return found


def texts(root: ET.Element, group_class: str) -> list[str]:
    return [
        "".join(text.itertext())
        for group in root.iter(f"{SVG}g")
        if group_class in group.get("class", "").split()
        for text in group.iter(f"{SVG}text")
    ]


def test_every_known_point_has_a_marker_with_its_time_value_and_hover() -> None:
    root = draw(
        [
            Series("gpt-4o", points(850, None, 1250, 900)),
            Series("gpt-4o-mini", points(None, 300, 320, None, 410)),
        ],
        unit="ms",
    )
    assert len(markers(root)) == 3 + 3
    assert len(markers(root, "gpt-4o")) == 3
    y = value_scale(root)
    first = markers(root, "gpt-4o")[0]
    assert first.get("data-t") == str(int(START.timestamp()))
    assert first.get("data-v") == "850"
    assert first.get("data-label") == "850 ms"
    assert first.get("fill") == series_color("gpt-4o")
    assert first.findtext(f"{SVG}title") == "gpt-4o · Dec 6 12:00 · 850 ms"
    for marker in markers(root):
        assert float(marker.attrib["cy"]) == pytest.approx(
            y(float(marker.attrib["data-v"])), abs=0.1
        )
    xs = [float(m.attrib["cx"]) for m in markers(root, "gpt-4o-mini")]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert markers(root, "gpt-4o")[1].findtext(f"{SVG}title") == "gpt-4o · Dec 6 14:00 · 1.25 s"


def test_points_outside_the_range_and_unknown_values_are_left_out() -> None:
    series = Series(
        "gpt-4o",
        [(at(-1), 5.0), (at(0), 1.0), (at(1), float("nan")), (at(2), 2.0), (at(7), 9.0)],
    )
    root = draw([series])
    assert [m.get("data-v") for m in markers(root)] == ["1", "2"]


def test_stacked_bands_sum_up() -> None:
    series = [
        Series("gpt-4o", points(1, 2, None, 4)),
        Series("claude-sonnet-4-5", points(10, 20, 30, 40)),
        Series("gemini-2.5-flash", points(100, 200, 300, 400)),
    ]
    root = draw(series, kind="stacked")
    y = value_scale(root)
    top = {m.get("data-t"): m for m in markers(root, "gemini-2.5-flash")}
    assert len(top) == 4
    for index, expected in enumerate([111, 222, 330, 444]):
        marker = top[str(int(at(index).timestamp()))]
        assert float(marker.attrib["data-sum"]) == expected
        assert float(marker.attrib["data-v"]) == [100, 200, 300, 400][index]
        assert float(marker.attrib["cy"]) == pytest.approx(y(expected), abs=0.1)
    middle = markers(root, "claude-sonnet-4-5")
    assert [float(m.attrib["data-sum"]) for m in middle] == [11, 22, 30, 44]
    # the missing value adds nothing and gets no marker
    assert len(markers(root, "gpt-4o")) == 3
    ticks = [
        float(line.attrib["data-tick"])
        for line in root.iter(f"{SVG}line")
        if "data-tick" in line.attrib
    ]
    assert ticks[0] == 0 and ticks[-1] >= 444
    assert len(paths(root, "chart-band")) == 3


def test_stacked_chart_breaks_where_no_series_has_data() -> None:
    series = [Series("a", points(1, 2, None, 4, 5)), Series("b", points(1, 1, None, 1, 1))]
    root = draw(series, kind="stacked")
    band = paths(root, "chart-band", "b")[0].attrib["d"]
    assert band.count("M") == 2 and band.count("Z") == 2


def test_gaps_break_lines_into_segments() -> None:
    root = draw(
        [
            Series("whole", points(1, 2, 3, 4)),
            Series("holed", points(1, 2, None, 4, 5)),
            Series("skipped", [(at(0), 1.0), (at(1), 2.0), (at(4), 3.0), (at(5), 4.0)]),
            Series("alone", points(1, None, 3, None, 5)),
        ]
    )
    subpaths = {
        name: paths(root, "chart-line", name)[0].attrib["d"].count("M")
        for name in ("whole", "holed", "skipped", "alone")
    }
    assert subpaths == {"whole": 1, "holed": 2, "skipped": 2, "alone": 3}
    area = draw([Series("holed", points(1, 2, None, 4, 5))], kind="area")
    assert paths(area, "chart-area")[0].attrib["d"].count("Z") == 2


def test_a_dense_series_hides_its_markers_but_not_a_lone_point() -> None:
    values: list[float | None] = [float(i % 7) for i in range(100)]
    values[50] = values[52] = None
    few: list[float | None] = [1, None, 2, 3]
    root = draw(
        [Series("busy", points(*values, every=0.05)), Series("calm", points(*few, every=0.05))],
        end=at(5),
    )
    dense = [g for g in root.iter(f"{SVG}g") if g.get("class") == "chart-points-dense"]
    assert len(dense) == 1
    busy = [m for m in dense[0] if m.get("data-series") == "busy"]
    assert len(busy) == 98 == len(markers(root, "busy"))
    alone = [m for m in busy if "chart-point-alone" in m.get("class", "")]
    assert [m.get("data-v") for m in alone] == ["2"]  # index 51, between two gaps
    # a series with few points shows them all; its lone point needs no mark
    assert [m.get("class") for m in markers(root, "calm")] == ["chart-point"] * 3


def test_axes_are_labelled_in_the_unit_and_in_time() -> None:
    root = draw([Series("gpt-4o", points(250, 1500, 800))], unit="ms")
    assert texts(root, "chart-value-axis") == ["0 s", "0.5 s", "1.0 s", "1.5 s"]
    expected_times = [time_label(t, 6 * HOUR) for t in time_ticks(START, at(6), 8)]
    assert texts(root, "chart-time-axis") == expected_times
    assert texts(root, "chart-time-axis")[:2] == ["12:00", "13:00"]
    money = draw([Series("gpt-4o", points(0.2, 1.3))], unit="usd")
    assert texts(money, "chart-value-axis") == ["$0", "$0.50", "$1.00", "$1.50"]
    share = draw([Series("errors", points(0.01, 0.12))], unit="percent")
    assert texts(share, "chart-value-axis")[-1] == "15 %"
    week = draw([Series("gpt-4o", points(1, 2))], end=at(24 * 7))
    assert all(label.startswith("Dec ") for label in texts(week, "chart-time-axis"))


def test_legend_shows_totals_of_counts_and_last_values_of_latencies() -> None:
    counts = draw([Series("gpt-4o", points(1200, 3400, None, 5600)), Series("o3", points(1, 2))])
    assert texts(counts, "chart-legend") == ["gpt-4o10.2k", "o33"]
    latency = draw([Series("gpt-4o", points(800, 1250, None))], unit="ms")
    assert texts(latency, "chart-legend") == ["gpt-4o1.25 s"]
    swatches = [
        r.get("fill")
        for g in counts.iter(f"{SVG}g")
        if g.get("class") == "chart-legend-item"
        for r in g.iter(f"{SVG}rect")
    ]
    assert swatches == [series_color("gpt-4o"), series_color("o3")]
    label = counts.get("aria-label", "")
    assert label.startswith("Requests, Dec 6 12:00 to Dec 6 18:00 UTC")
    assert "gpt-4o 10.2k" in label and "o3 3" in label


def test_many_series_wrap_the_legend_inside_the_drawing() -> None:
    series = [Series(f"model-with-a-rather-long-name-{n}", points(n, n + 1)) for n in range(14)]
    root = draw(series)
    width, height = (float(v) for v in root.attrib["viewBox"].split()[2:])
    rows = {
        float(rect.attrib["y"])
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "chart-legend-item"
        for rect in group.iter(f"{SVG}rect")
    }
    assert len(rows) > 2
    assert max(rows) + 12 <= height
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "chart-legend-item":
            assert float(next(group.iter(f"{SVG}rect")).attrib["x"]) < width - 100


@pytest.mark.parametrize(
    "series",
    [
        [],
        [Series("gpt-4o", [])],
        [Series("gpt-4o", points(None, None))],
        [Series("gpt-4o", [(at(-3), 5.0), (at(9), 5.0)])],
    ],
)
@pytest.mark.parametrize("kind", ["line", "area", "stacked"])
def test_no_data_says_so_inside_the_chart(series: list[Series], kind: str) -> None:
    root = draw(series, kind=kind)
    assert root.tag == f"{SVG}svg"
    empty = [t for t in root.iter(f"{SVG}text") if t.get("class") == "chart-empty"]
    assert [t.text for t in empty] == [EMPTY_TEXT]
    assert markers(root) == []
    assert "tabindex" not in root.attrib
    assert root.get("role") == "img"
    assert root.get("aria-label", "").endswith("no data in this range")
    assert texts(root, "chart-value-axis") == []  # no scale is claimed


def test_hostile_names_stay_text() -> None:
    names = ["<script>alert(1)</script>", '"quoted" & <b>bold</b>']
    markup = str(
        time_chart(
            [Series(name, points(1, 2)) for name in names],
            start=START,
            end=at(6),
            step_seconds=HOUR,
            unit="count",
            chart_id='x" onload="alert(1)',
            title="<i>Requests</i>",
        )
    )
    assert "<script" not in markup and "<b>" not in markup and "<i>" not in markup
    root = ET.fromstring(markup)
    assert {element.tag for element in root.iter()} <= {
        f"{SVG}{tag}"
        for tag in ("svg", "g", "line", "text", "tspan", "path", "circle", "title", "rect")
    }
    assert root.get("id") == 'x" onload="alert(1)'
    assert "onload" not in root.attrib
    assert {m.get("data-series") for m in markers(root)} == set(names)
    assert texts(root, "chart-legend") == [f"{names[0]}3", f"{names[1]}3"]
    assert root.get("aria-label", "").startswith("<i>Requests</i>")


def test_same_input_same_bytes() -> None:
    series = [Series("gpt-4o", points(1.5, 2.25, None, 4)), Series("o3", points(3, 1))]
    shuffled = [Series("gpt-4o", list(reversed(points(1.5, 2.25, None, 4)))), series[1]]
    options: dict[str, Any] = {
        "start": START,
        "end": at(6),
        "step_seconds": HOUR,
        "unit": "usd",
        "kind": "stacked",
        "chart_id": "c",
        "title": "Cost",
    }
    first = time_chart(series, **options)
    assert time_chart(series, **options) == first
    assert time_chart(shuffled, **options) == first


def test_the_script_gets_what_it_reads() -> None:
    root = draw([Series("gpt-4o", points(1, 2))], kind="area", height=300)
    assert root.get("tabindex") == "0"
    assert root.get("data-start") == str(int(START.timestamp()))
    assert root.get("data-end") == str(int(at(6).timestamp()))
    assert (root.get("data-step"), root.get("data-unit"), root.get("data-kind")) == (
        "3600",
        "count",
        "area",
    )
    assert float(root.attrib["data-plot-bottom"]) > float(root.attrib["data-plot-top"])
    assert float(root.attrib["data-plot-right"]) > float(root.attrib["data-plot-left"])
    crosshair = [line for line in root.iter(f"{SVG}line") if line.get("class") == "chart-crosshair"]
    assert len(crosshair) == 1 and crosshair[0].get("visibility") == "hidden"
    assert float(root.attrib["viewBox"].split()[3]) > 300  # the plot, and the legend under it


def test_bad_arguments_are_refused() -> None:
    series = [Series("gpt-4o", points(1))]
    with pytest.raises(ValueError, match="end after its start"):
        draw(series, end=START)
    with pytest.raises(ValueError, match="kind"):
        draw(series, kind="pie")
    with pytest.raises(ValueError, match="unit"):
        draw(series, unit="bytes")
    with pytest.raises(ValueError, match="step_seconds"):
        draw(series, step_seconds=0)
