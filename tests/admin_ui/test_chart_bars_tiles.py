"""Bar charts, sparklines and stat tiles, read back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from admin_ui.chart_bars import ACCENT_FALLBACK
from admin_ui.chart_colors import series_color
from admin_ui.chart_svg import EMPTY_TEXT, bar_chart, change_text, sparkline, stat_tile
from admin_ui.static_files import static_assets
from admin_ui.templating import console_environment

SVG = "{http://www.w3.org/2000/svg}"
M = "\u2212"


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "chart-bar" in r.get("class", "").split()]


def texts_of(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [t for t in root.iter(f"{SVG}text") if t.get("class") == css_class]


def test_bars_are_to_scale_labelled_and_valued() -> None:
    long_name = "a-very-long-fine-tuned-model-name:ft-acme-2026-12-01"
    rows = [("gpt-4o", 1234.5), ("claude-sonnet-4-5", 617.25), (long_name, 12.34), ("o3", 0.0)]
    root = ET.fromstring(str(bar_chart(rows, unit="usd", chart_id="top", title="Top models")))
    drawn = bars(root)
    assert [b.get("data-series") for b in drawn] == [name for name, _ in rows]
    widths = [float(b.attrib["width"]) for b in drawn]
    assert widths[1] == pytest.approx(widths[0] / 2, abs=0.2)
    assert widths[3] == 0
    assert len({float(b.attrib["x"]) for b in drawn}) == 1  # all from zero
    assert [b.get("fill") for b in drawn] == [series_color(name) for name, _ in rows]
    assert [b.findtext(f"{SVG}title") for b in drawn][:2] == [
        "gpt-4o: $1.2k",
        "claude-sonnet-4-5: $617.25",
    ]
    assert [t.text for t in texts_of(root, "chart-bar-value")] == [
        "$1.2k",
        "$617.25",
        "$12.34",
        "$0",
    ]
    labels = texts_of(root, "chart-bar-label")
    assert labels[2].findtext(f"{SVG}title") == long_name
    shown = "".join(labels[2].itertext()).removeprefix(long_name)
    assert shown.endswith("…") and long_name.startswith(shown[:-1]) and len(shown) < len(long_name)
    assert "".join(labels[0].itertext()) == "gpt-4ogpt-4o"  # the title, then the text
    # a value's text sits after its bar's end
    ends = [float(b.attrib["x"]) + float(b.attrib["width"]) for b in drawn]
    assert all(
        float(t.attrib["x"]) > end
        for t, end in zip(texts_of(root, "chart-bar-value"), ends, strict=True)
    )
    assert root.get("role") == "img"
    assert root.get("aria-label", "").startswith(
        "Top models: gpt-4o $1.2k, claude-sonnet-4-5 $617.25"
    )


def test_bars_in_the_accent_colour_and_below_zero() -> None:
    root = ET.fromstring(
        str(
            bar_chart(
                [("up", 10), ("down", -5)],
                unit="count",
                chart_id="b",
                title="t",
                colour_by_name=False,
            )
        )
    )
    up, down = bars(root)
    assert "chart-bar-accent" in up.attrib["class"] and up.get("fill") == ACCENT_FALLBACK
    assert float(down.attrib["x"]) + float(down.attrib["width"]) == pytest.approx(
        float(up.attrib["x"]), abs=0.1
    )
    assert float(down.attrib["width"]) == pytest.approx(float(up.attrib["width"]) / 2, abs=0.2)
    assert [t.text for t in texts_of(root, "chart-bar-value")] == ["10", f"{M}5"]


def test_bars_escape_names_and_say_when_empty() -> None:
    hostile = "<script>alert(1)</script>"
    markup = str(bar_chart([(hostile, 3)], unit="count", chart_id="b", title="<b>t</b>"))
    assert "<script" not in markup and "<b>" not in markup
    root = ET.fromstring(markup)
    assert bars(root)[0].get("data-series") == hostile
    empty = ET.fromstring(str(bar_chart([], unit="count", chart_id="e", title="Top keys")))
    assert [t.text for t in texts_of(empty, "chart-empty")] == [EMPTY_TEXT]
    assert bars(empty) == []
    assert bar_chart([("a", 1)], unit="count", chart_id="b", title="t") == bar_chart(
        [("a", 1)], unit="count", chart_id="b", title="t"
    )


def test_sparkline_shape_gaps_and_summary() -> None:
    root = ET.fromstring(str(sparkline([3, 1, None, 4, 1, 5], unit="count", width=100, height=20)))
    assert root.findtext(f"{SVG}title") == "min 1 · max 5 · last 5"
    assert root.get("aria-label") == "min 1 · max 5 · last 5"
    assert (root.get("width"), root.get("height")) == ("100.0", "20.0")
    line = next(p for p in root.iter(f"{SVG}path") if p.get("class") == "sparkline-line")
    assert line.attrib["d"].count("M") == 2
    ys = [float(pair.split()[1]) for pair in line.attrib["d"].replace("M", "L").split("L") if pair]
    assert min(ys) == pytest.approx(2.5) and max(ys) == pytest.approx(17.5)  # max on top
    last = next(root.iter(f"{SVG}circle"))
    assert float(last.attrib["cy"]) == pytest.approx(2.5) and float(
        last.attrib["cx"]
    ) == pytest.approx(97.5)
    latency = ET.fromstring(str(sparkline([800, 1250], unit="ms")))
    assert latency.findtext(f"{SVG}title") == "min 800 ms · max 1.25 s · last 1.25 s"


@pytest.mark.parametrize("values", [[], [None, None]])
def test_sparkline_without_data(values: list[float | None]) -> None:
    root = ET.fromstring(str(sparkline(values, unit="usd")))
    assert root.findtext(f"{SVG}title") == "No data"
    assert [p for p in root.iter(f"{SVG}path")] == []


def test_sparkline_of_one_or_flat_values_sits_in_the_middle() -> None:
    for values in ([7.0], [2.0, 2.0, 2.0]):
        root = ET.fromstring(str(sparkline(values, unit="count", height=28)))
        assert float(next(root.iter(f"{SVG}circle")).attrib["cy"]) == pytest.approx(14)


@pytest.mark.parametrize(
    ("value", "previous", "unit", "higher_is_better", "text", "css"),
    [
        (112.5, 100, "count", True, "+12.5 %", "change-good"),
        (112.5, 100, "count", False, "+12.5 %", "change-bad"),
        (96.9, 100, "usd", False, f"{M}3.1 %", "change-good"),
        (96.9, 100, "ms", True, f"{M}3.1 %", "change-bad"),
        (100.01, 100, "count", True, "0 %", "change-flat"),
        (350, 100, "count", True, "+250 %", "change-good"),
        (5, -10, "usd", True, "+150 %", "change-good"),
        (0.03, 0.02, "percent", False, "+1.0 pp", "change-bad"),
        (0.015, 0.02, "percent", False, f"{M}0.5 pp", "change-good"),
        (None, 100, "count", True, "—", "change-flat"),
        (100, None, "count", True, "—", "change-flat"),
        (100, 0, "count", True, "—", "change-flat"),
        (0, 0, "count", True, "0 %", "change-flat"),
        (float("nan"), 1, "count", True, "—", "change-flat"),
    ],
)
def test_change_against_the_previous_period(
    value: float | None,
    previous: float | None,
    unit: str,
    higher_is_better: bool,
    text: str,
    css: str,
) -> None:
    assert change_text(value, previous, unit, higher_is_better=higher_is_better)[:2] == (text, css)


def test_stat_tile() -> None:
    markup = str(
        stat_tile(
            "Cost <today>",
            1250.5,
            "usd",
            previous=1000,
            sparkline_values=[1, 2, 3],
            higher_is_better=False,
        )
    )
    tile = ET.fromstring(markup)
    parts = {div.get("class"): div for div in tile.iter("div")}
    assert tile.get("class") == "stat-tile"
    assert parts["stat-label"].text == "Cost <today>"
    assert "&lt;today&gt;" in markup
    assert parts["stat-value"].text == "$1.3k" and parts["stat-value"].get("data-v") == "1250.5"
    change = parts["stat-change change-bad"]
    assert change.text == "+25.1 %"
    assert change.get("title") == "Against $1k in the previous period"
    assert len(list(parts["stat-spark"].iter(f"{SVG}svg"))) == 1

    unknown = ET.fromstring(
        str(
            stat_tile(
                "Tokens",
                None,
                "tokens",
                previous=None,
                sparkline_values=None,
                higher_is_better=True,
            )
        )
    )
    found = {div.get("class"): div.text for div in unknown.iter("div")}
    assert found["stat-value"] == "—" and found["stat-change change-flat"] == "—"
    assert "stat-spark" not in found


def test_pages_link_the_chart_assets_through_their_macros() -> None:
    environment = console_environment()
    page = environment.from_string(
        '{% from "charts.html" import chart_styles, chart_script %}'
        "{{ chart_styles() }}{{ chart_script() }}{{ tile }}"
    ).render(
        tile=stat_tile(
            "Requests", 3, "count", previous=2, sparkline_values=[1, 3], higher_is_better=True
        )
    )
    assets = static_assets()
    assert f'<link rel="stylesheet" href="{assets.url("charts.css")}">' in page
    assert f'<script src="{assets.url("charts.js")}" defer></script>' in page
    assert '<div class="stat-change change-good"' in page  # markup, not escaped again
