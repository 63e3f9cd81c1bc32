"""The console's server-drawn charts, in one place to import from.

- `time_chart`: values over time as lines, areas or stacked areas (chart_time.py)
- `bar_chart`: named values as horizontal bars (chart_bars.py)
- `sparkline` and `stat_tile`: the overview's tiles (chart_tiles.py)

Each returns `markupsafe.Markup` for a template. Colours come from `series_color`
(chart_colors.py), numbers and times from chart_units.py; the page links `charts.css` for the
themes and `charts.js` for the crosshair and tooltip of time charts.
"""

from __future__ import annotations

from admin_ui.chart_bars import bar_chart
from admin_ui.chart_parts import EMPTY_TEXT, Series
from admin_ui.chart_tiles import change_text, sparkline, stat_tile
from admin_ui.chart_time import Kind, time_chart

__all__ = [
    "EMPTY_TEXT",
    "Kind",
    "Series",
    "bar_chart",
    "change_text",
    "sparkline",
    "stat_tile",
    "time_chart",
]
