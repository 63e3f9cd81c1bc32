"""Charts with bands: the interval is shaded between its bounds, the value axis covers it, its
bounds' markers are for the hover only, marked stretches are drawn, and an empty chart says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from admin_ui.chart_band import Band, Drawn, Span, band_chart
from admin_ui.chart_parts import EMPTY_TEXT, Series

START = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def chart(**extra: object) -> str:
    spent = [(START + n * DAY, 10.0 + n) for n in range(5)]
    ahead = [(START + n * DAY, 15.0) for n in range(5, 10)]
    defaults: dict[str, object] = {
        "bands": [Band("80 % interval", [(at, 12.0, 40.0) for at, _ in ahead], "#2f6fe4")],
        "spans": [Span(START + 2 * DAY, START + 3 * DAY, "Anomaly")],
        "start": START,
        "end": START + 10 * DAY,
        "step_seconds": 86400,
        "unit": "usd",
        "chart_id": "c",
        "title": "Spend",
    }
    defaults.update(extra)
    return str(
        band_chart(
            [
                Drawn(Series("Spent", spent), "#2f6fe4"),
                Drawn(Series("Forecast", ahead), "#2f6fe4", dashed=True),
            ],
            **defaults,  # type: ignore[arg-type]
        )
    )


def test_the_band_is_shaded_and_the_axis_covers_it() -> None:
    svg = chart()
    assert svg.count('class="chart-band-range"') == 1
    ticks = [float(t) for t in re.findall(r'data-tick="([0-9.]+)"', svg)]
    assert max(ticks) >= 40  # the band's top, above every line
    assert 'stroke-dasharray="5 4"' in svg and 'class="chart-line chart-line-dashed"' in svg
    assert svg.count('class="chart-span"') == 1 and "<title>Anomaly</title>" in svg
    assert "80 % interval" in svg and "$12.00 to $40.00" in svg  # the legend's last range


def test_only_measured_values_show_their_markers() -> None:
    svg = chart()
    groups = re.findall(
        r'<g( class="chart-points-dense")?>(.*?)</g>',
        "".join(svg.split('class="chart-points"')[1:]),
    )
    shown = [body for dense, body in groups if not dense]
    hidden = [body for dense, body in groups if dense]
    assert sum(body.count('data-series="Spent"') for body in shown) == 5
    assert all('data-series="Forecast"' not in body for body in shown)
    assert sum(body.count("80 % interval, high") for body in hidden) == 5 * 2  # marker and title


def test_a_chart_with_nothing_to_draw_says_so() -> None:
    svg = str(
        band_chart(
            [Drawn(Series("Spent", []))],
            start=START,
            end=START + DAY,
            step_seconds=3600,
            unit="usd",
            chart_id="e",
            title="Nothing",
        )
    )
    assert EMPTY_TEXT in svg and "chart-band-range" not in svg
