"""The analytics pages' pure parts: the page range and step from the URL, the drill path, the
token cost split, budget projections and table numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from markupsafe import Markup

from admin_ui.analytics_filters import FilterLinks, PageFilters, read_filters
from admin_ui.analytics_range import (
    InvalidRange,
    range_picker,
    read_page_range,
    read_step,
    step_text,
)
from admin_ui.dashboard_model import Dashboard, Panel
from admin_ui.dashboard_render import (
    NO_SPEND_TEXT,
    DashboardView,
    NothingLeft,
    PanelView,
    fit_step,
    narrowed,
    render_view,
)
from admin_ui.panel_budgets import project
from admin_ui.panel_costs import apportion
from admin_ui.table_values import money, table_value
from providers.pricing import ModelPrice
from telemetry.analytics import MAX_POINTS, AnalyticsQuery, InvalidQuery

NOW = datetime(2026, 12, 8, 10, 7, 30, tzinfo=UTC)


def test_a_preset_range_ends_with_the_step_that_holds_now() -> None:
    page = read_page_range([("last", "24h")], NOW)
    assert page.step == 3600  # choose_step: hour rows past 12 hours
    assert page.end == datetime(2026, 12, 8, 11, 0, tzinfo=UTC)
    assert page.end - page.start == timedelta(hours=24)
    assert page.label == "Last 24 hours" and not page.custom
    previous = page.previous()
    assert previous.end == page.start and previous.start == page.start - timedelta(hours=24)
    assert previous.step == page.step
    assert page.url_items() == [("last", "24h")]


def test_without_a_range_the_page_shows_the_last_24_hours() -> None:
    assert read_page_range([], NOW) == read_page_range([("last", "24h")], NOW)
    assert read_page_range([("last", "")], NOW).last == "24h"


@pytest.mark.parametrize(
    ("last", "step"),
    [("1h", 60), ("6h", 300), ("24h", 3600), ("7d", 10800), ("30d", 86400), ("90d", 86400)],
)
def test_every_preset_gets_a_step_with_whole_steps(last: str, step: int) -> None:
    page = read_page_range([("last", last)], NOW)
    assert page.step == step
    assert page.seconds % step == 0 and page.end.timestamp() % step == 0


def test_from_and_to_give_a_custom_range_and_a_preset_wins_over_them() -> None:
    custom = read_page_range([("from", "2026-12-01T00:00"), ("to", "2026-12-03T00:00Z")], NOW)
    assert custom.custom and custom.last is None
    assert custom.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert custom.end == datetime(2026, 12, 3, tzinfo=UTC)
    assert custom.url_items() == [("from", "2026-12-01T00:00:00Z"), ("to", "2026-12-03T00:00:00Z")]
    assert "2026-12-01 00:00" in custom.label
    chosen = read_page_range(
        [("last", "custom"), ("from", "2026-12-01T00:00"), ("to", "2026-12-02T00:00")], NOW
    )
    assert chosen.custom and chosen.seconds == 86400
    preset = read_page_range([("last", "7d"), ("from", "2026-12-01T00:00")], NOW)
    assert preset.last == "7d"
    only_from = read_page_range([("from", str(int((NOW - timedelta(hours=2)).timestamp())))], NOW)
    assert only_from.end == NOW


@pytest.mark.parametrize(
    ("parameters", "parameter"),
    [
        ([("last", "2y")], "last"),
        ([("from", "yesterday")], "from"),
        ([("from", "2026-12-03T00:00"), ("to", "2026-12-01T00:00")], "to"),
        ([("to", "2026-12-03T00:00")], "from"),
        ([("last", "custom")], "from"),
        ([("from", "2020-01-01T00:00")], "from"),
        ([("step", "90s")], "step"),
        ([("step", "fast")], "step"),
    ],
)
def test_a_range_the_page_cannot_show_names_its_parameter(
    parameters: list[tuple[str, str]], parameter: str
) -> None:
    with pytest.raises(InvalidRange) as refused:
        read_page_range(parameters, NOW)
    assert refused.value.parameter == parameter


def test_a_step_with_too_many_points_falls_back_to_the_automatic_one() -> None:
    page = read_page_range([("last", "90d"), ("step", "1m")], NOW)
    assert page.step == 86400 and page.step_asked is None
    assert page.notices and f"{MAX_POINTS:,}" in page.notices[0]
    chosen = read_page_range([("last", "7d"), ("step", "6h")], NOW)
    assert chosen.step == 21600 and chosen.step_asked == 21600
    assert chosen.url_items() == [("last", "7d"), ("step", "6h")]
    assert chosen.absolute_items()[2] == ("step", "6h")


def test_steps_read_and_write_alike() -> None:
    assert read_step("300") == 300 and read_step("5m") == 300 and read_step("1h") == 3600
    assert read_step("") is None and read_step("auto") is None
    assert [step_text(s) for s in (60, 900, 3600, 86400, 604800, 5400)] == [
        "1m",
        "15m",
        "1h",
        "1d",
        "1w",
        "90m",
    ]


def test_the_picker_keeps_the_filters_and_offers_steps_the_range_can_take() -> None:
    page = read_page_range([("last", "1h")], NOW)
    picker = range_picker(
        page, [("last", "1h"), ("model", "gpt-4o"), ("workspace", "acme"), ("refresh", "10")]
    )
    assert picker.kept == [("model", "gpt-4o")] and picker.workspace == "acme"
    assert [c.value for c in picker.presets if c.selected] == ["1h"]
    steps = [c.value for c in picker.steps]
    assert steps[0] == "" and "1m" in steps and "1h" not in steps  # a step shorter than the range
    custom = range_picker(
        read_page_range([("from", "2026-12-01T00:00"), ("to", "2026-12-02T00:00")], NOW), []
    )
    assert custom.custom and custom.presets[-1].selected and custom.from_value == "2026-12-01T00:00"


def test_a_workspace_first_panel_drills_to_keys_then_models() -> None:
    nothing = PageFilters()
    assert nothing.drilled(["workspace"]) == ("workspace",)
    one_workspace = PageFilters(workspace_id="w1")
    assert one_workspace.drilled(["workspace"]) == ("key",)
    one_key = PageFilters(values={"key": ("k1",)}, workspace_id="w1")
    assert one_key.drilled(["workspace"]) == ("model",)
    assert one_key.drilled(["workspace", "model"]) == ("model",)
    two_keys = PageFilters(values={"key": ("k1", "k2")}, workspace_id="w1")
    assert two_keys.drilled(["workspace"]) == ("key",)
    assert one_key.drilled(["model"]) == ("model",)  # only workspace-first panels drill


def test_filters_come_from_the_url_and_links_add_and_remove_them() -> None:
    parameters = [("last", "7d"), ("model", "a"), ("model", "b"), ("model", "a"), ("page", "x")]
    assert read_filters(parameters) == {"model": ("a", "b")}
    with pytest.raises(InvalidQuery):
        read_filters([("model", "x" * 300)])
    links = FilterLinks("/admin/analytics", parameters)
    assert links.adding("key", "k 1") == (
        "/admin/analytics?last=7d&model=a&model=b&model=a&page=x&key=k+1"
    )
    assert links.removing("model", "b") == "/admin/analytics?last=7d&model=a&model=a&page=x"
    assert links.without("model", "page") == "/admin/analytics?last=7d"


def test_page_filters_narrow_panels_that_can_take_them_only() -> None:
    start = NOW - timedelta(days=1)
    query = AnalyticsQuery("guardrail_verdicts", start, NOW, 3600, ("action",))
    filters = PageFilters(values={"model": ("gpt-4o",), "key": ("k1",)})
    narrowed_query, ignored = narrowed(query, filters)
    assert ignored == ["model"] and narrowed_query.filters == {"key": ("k1",)}
    own = AnalyticsQuery("errors", start, NOW, 900, filters={"status": ("error",)})
    assert narrowed(own, PageFilters(values={"status": ("error", "ok")}))[0].filters == {
        "status": ("error",)
    }
    with pytest.raises(NothingLeft):
        narrowed(own, PageFilters(values={"status": ("ok",)}))


def test_queries_only_the_hourly_breakdowns_answer_take_whole_hours() -> None:
    start = NOW - timedelta(days=1)
    assert fit_step(AnalyticsQuery("requests", start, NOW, 900, ("tag",)), 900).step == 3600
    assert fit_step(AnalyticsQuery("requests", start, NOW, 900, ("model",)), 900).step == 900
    assert fit_step(AnalyticsQuery("rule_matches", start, NOW, 7200), 7200).step == 7200


def test_a_deployments_cost_is_split_by_what_its_list_price_charges_for_each_kind() -> None:
    price = ModelPrice(Decimal("2.50"), Decimal("10.00"), Decimal("1.25"))
    # 1000 prompt tokens of which 200 cached, 500 completion: weights 2000, 250, 5000 (per 1e6)
    split = apportion(1000, 200, 500, Decimal("0.00725"), price)
    assert split == (Decimal("0.002"), Decimal("0.00025"), Decimal("0.005"))
    # a recorded cost other than the list price is split in the same proportions, exactly
    other = apportion(1000, 200, 500, Decimal("1"), price)
    assert other is not None and sum(other) == Decimal("1")
    no_cached_price = ModelPrice(Decimal("1"), Decimal("1"))
    assert apportion(100, 100, 0, Decimal("3"), no_cached_price) == (0, Decimal("3"), 0)
    assert apportion(100, 0, 0, Decimal("1"), None) is None
    assert apportion(0, 0, 0, Decimal("0"), price) is None


def test_a_budget_is_projected_at_its_average_rate_to_the_window_end() -> None:
    assert project(1_000_000, 0, 86_400, 21_600) == 4_000_000
    assert project(1_000_000, 0, None, 21_600) is None  # "total" never ends
    assert project(1_000_000, 0, 86_400, 30) is None  # too early to say
    assert project(1_000_000, 0, 86_400, 90_000) == 1_000_000  # a window past its end


def test_table_numbers_are_whole_and_money_readable() -> None:
    assert money(Decimal("1234.5678")) == "$1,234.57"
    assert money(Decimal("0.0435638")) == "$0.04356"
    assert money(Decimal("0.000000123456")) == "$0.0000001235"
    assert money(Decimal(0)) == "$0.00" and money(None) == "—"
    assert table_value(1_234_567, "count") == "1,234,567"
    assert table_value(0.012345, "percent") == "1.23 %"
    assert table_value(1500.0, "ms") == "1.50 s" and table_value(12.3, "ms") == "12.3 ms"


def test_forecast_and_anomaly_panels_draw_their_own_body() -> None:
    panels = [Panel(title="Month-end spend", kind="forecast"), Panel(title="Odd", kind="anomalies")]
    views = [
        PanelView(
            index=1,
            panel=panels[0],
            title=panels[0].title,
            kind="forecast",
            chart="forecast",
            width="full",
            empty=True,
            empty_text=NO_SPEND_TEXT,
            body=Markup('<p id="never-shown">drawn</p>'),
        ),
        PanelView(
            index=2,
            panel=panels[1],
            title=panels[1].title,
            kind="anomalies",
            chart="anomalies",
            width="full",
            body=Markup('<ol id="anomalies-drawn"></ol>'),
        ),
    ]
    html = render_view(
        DashboardView(
            dashboard=Dashboard(name="Later", panels=panels),
            panels=views,
            page_range=read_page_range([], NOW),
            chips=[],
            links=FilterLinks("/admin/analytics", []),
        )
    )
    assert NO_SPEND_TEXT in html and "never-shown" not in html  # an empty panel says so
    assert 'id="anomalies-drawn"' in html
    assert 'id="panel-2"' in html and 'data-kind="anomalies"' in html
