"""Query parameters of `GET /admin/api/analytics/{metric}` read into an analytics query, and the
answer's encoding; every bad parameter is a 400 naming it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from admin_ui.analytics_answer import csv_cell, csv_chunks, csv_filename, json_chunks, value_of
from admin_ui.analytics_params import AnalyticsRequest, parse_analytics_request
from gateway.errors import GatewayError
from telemetry.analytics import TARGET_POINTS, AnalyticsResult, Series
from telemetry.analytics_metrics import METRICS

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


def parse(query: str = "", metric: str = "requests", accept: str | None = None) -> AnalyticsRequest:
    pairs = [item.partition("=") for item in query.split("&") if item]
    return parse_analytics_request(
        METRICS[metric], [(name, value) for name, _, value in pairs], now=NOW, accept=accept
    )


def refused(query: str, metric: str = "requests") -> str | None:
    with pytest.raises(GatewayError) as caught:
        parse(query, metric)
    assert caught.value.status == 400
    return caught.value.param


def test_no_parameters_read_the_last_day_in_json() -> None:
    asked = parse()
    query = asked.query
    assert (query.start, query.end) == (NOW - timedelta(hours=24), NOW)
    assert (query.step, query.group_by, dict(query.filters), query.top) == (None, (), {}, None)
    assert (asked.workspace, asked.format) == (None, "json")


def test_every_parameter_is_read() -> None:
    asked = parse(
        "from=2026-12-01T00:00:00Z&to=1796601600&step=1h&group_by=model,key&top=5"
        "&model=gpt-4o&model=gpt-4o-mini&model=gpt-4o&status=error&cache_hit=yes&key=k1"
        "&provider=openai&workspace=acme&format=csv"
    )
    query = asked.query
    assert query.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert query.end == datetime.fromtimestamp(1796601600, UTC)
    assert (query.step, query.group_by, query.top) == (3600, ("model", "key"), 5)
    assert dict(query.filters) == {
        "model": ("gpt-4o", "gpt-4o-mini"),
        "status": ("error",),
        "cache_hit": ("true",),
        "key": ("k1",),
        "provider": ("openai",),
    }
    assert (asked.workspace, asked.format) == ("acme", "csv")


@pytest.mark.parametrize(
    ("step", "seconds"),
    [("60", 60), ("300", 300), ("1m", 60), ("15m", 900), ("6h", 21600), ("1d", 86400)],
)
def test_a_step_is_seconds_or_an_amount_and_unit(step: str, seconds: int) -> None:
    assert parse(f"step={step}&last=1d").query.step == seconds


def test_relative_and_half_open_ranges() -> None:
    assert parse("last=6h").query.start == NOW - timedelta(hours=6)
    only_to = parse("to=2026-12-01T00:00:00Z").query
    assert only_to.start == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse("from=2026-12-07").query.end == NOW


def test_group_by_repeated_and_top_defaulting_to_ten() -> None:
    query = parse("group_by=model&group_by=provider").query
    assert (query.group_by, query.top) == (("model", "provider"), 10)
    assert parse("group_by=tag").query.group_by == ("tag",)


def test_a_long_range_takes_whole_weeks_as_many_as_a_chart_shows() -> None:
    query = parse("from=1970-01-01").query
    assert query.step is not None and query.step % (7 * 86400) == 0
    points = (query.end - query.start).total_seconds() / query.step
    assert TARGET_POINTS / 2 < points <= TARGET_POINTS
    assert parse("last=2w").query.step is None  # the planner's own choice


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "json"),
        ("text/csv", "csv"),
        ("application/json, text/csv;q=0.5", "csv"),
        ("*/*", "json"),
    ],
)
def test_the_accept_header_chooses_csv_unless_format_is_given(
    accept: str | None, expected: str
) -> None:
    assert parse(accept=accept).format == expected
    assert parse("format=json", accept=accept).format == "json"


@pytest.mark.parametrize(
    ("query", "metric", "param"),
    [
        ("last=6x", "requests", "last"),
        ("last=0h", "requests", "last"),
        ("last=1h&to=2026-12-01", "requests", "last"),
        ("from=yesterday", "requests", "from"),
        ("to=1e9", "requests", "to"),
        ("from=2026-12-02&to=2026-12-01", "requests", "to"),
        ("from=2027-01-01", "requests", "from"),
        ("step=0", "requests", "step"),
        ("step=59", "requests", "step"),
        ("step=1.5", "requests", "step"),
        ("step=999999999", "requests", "step"),
        ("step=400d", "requests", "step"),
        ("step=1m&last=30d", "requests", "step"),
        ("step=5m", "rule_matches", "step"),
        ("group_by=tag&step=15m", "requests", "step"),
        ("group_by=", "requests", "group_by"),
        ("group_by=model,", "requests", "group_by"),
        ("group_by=model,model", "requests", "group_by"),
        ("group_by=a,b,c", "requests", "group_by"),
        ("group_by=tag", "latency_p95", "group_by"),
        ("group_by=tag,end_user", "requests", "group_by"),
        ("group_by=model", "guardrail_verdicts", "group_by"),
        ("tag=a&end_user=b", "requests", "tag"),
        ("tag=a", "latency_p50", "tag"),
        ("action=block", "requests", "action"),
        ("top=0", "requests", "top"),
        ("top=ten", "requests", "top"),
        ("top=1&top=2", "requests", "top"),
        ("format=xml", "requests", "format"),
        ("status=fine", "requests", "status"),
        ("cache_hit=perhaps", "requests", "cache_hit"),
        ("model=", "requests", "model"),
        ("model=" + "m" * 300, "requests", "model"),
        ("workspace=", "requests", "workspace"),
        ("metric=cost", "requests", "metric"),
        ("since=2026-12-01", "requests", "since"),
        ("model=" + "&model=".join(str(n) for n in range(51)), "requests", "model"),
    ],
)
def test_bad_parameters_are_refused_naming_them(query: str, metric: str, param: str) -> None:
    assert refused(query, metric) == param


def test_an_unknown_parameter_names_what_is_taken() -> None:
    with pytest.raises(GatewayError) as caught:
        parse("colour=red")
    assert (caught.value.param, caught.value.code) == ("colour", "unknown_parameter")
    assert "group_by" in caught.value.message and "end_user" in caught.value.message


# --- the answer ---------------------------------------------------------------------------------

START = datetime(2024, 3, 1, tzinfo=UTC)


def _result(metric: str, series: list[Series], group_by: tuple[str, ...]) -> AnalyticsResult:
    return AnalyticsResult(
        metric=METRICS[metric],
        start=START,
        end=START + timedelta(hours=2),
        step=3600,
        grain="hour",
        group_by=group_by,
        series=series,
        total=None,
    )


async def _joined(chunks: object) -> bytes:
    return b"".join([chunk async for chunk in chunks])  # type: ignore[attr-defined]


def test_values_are_typed_by_unit() -> None:
    assert value_of(METRICS["cost"], Decimal("0.0012300000")) == "0.00123"
    assert value_of(METRICS["cost"], Decimal(0)) == "0"
    assert value_of(METRICS["requests"], Decimal(12)) == 12
    assert value_of(METRICS["total_tokens"], 7) == 7
    assert value_of(METRICS["latency_p50"], 12.5) == 12.5
    assert value_of(METRICS["latency_mean"], float("nan")) is None
    assert value_of(METRICS["error_rate"], None) is None


def test_json_is_one_chunk_per_series_and_decodes_whole() -> None:
    hours = [START, START + timedelta(hours=1)]
    series = [
        Series(
            {"model": "a"}, [(hours[0], Decimal("1.5")), (hours[1], Decimal(0))], Decimal("1.5")
        ),
        Series(
            {"model": "b"}, [(hours[0], Decimal(0)), (hours[1], Decimal("0.25"))], Decimal("0.25")
        ),
    ]
    result = _result("cost", series, ("model",))
    result.total = Decimal("1.75")

    async def chunks() -> list[bytes]:
        return [chunk async for chunk in json_chunks(result, {"key": {"k1": "one"}})]

    encoded = asyncio.run(chunks())
    assert len(encoded) == 4
    body = json.loads(b"".join(encoded))
    assert body["total"] == "1.75" and body["labels"] == {"key": {"k1": "one"}}
    assert body["series"][1] == {
        "group": {"model": "b"},
        "total": "0.25",
        "points": [["2024-03-01T00:00:00Z", "0"], ["2024-03-01T01:00:00Z", "0.25"]],
    }
    assert (
        json.loads(asyncio.run(_joined(json_chunks(_result("cost", [], ()), {}))))["series"] == []
    )


def test_csv_cells_never_become_formulas() -> None:
    hours = [START, START + timedelta(hours=1)]
    series = [Series({"tag": "=HYPERLINK(1)", "key": "k,1"}, [(hours[0], 3), (hours[1], 0)], 3)]
    result = _result("requests", series, ("tag", "key"))
    text = asyncio.run(_joined(csv_chunks(result))).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["time", "tag", "key", "requests"],
        ["2024-03-01T00:00:00Z", "'=HYPERLINK(1)", "k,1", "3"],
        ["2024-03-01T01:00:00Z", "'=HYPERLINK(1)", "k,1", "0"],
    ]
    assert [csv_cell(v) for v in ("+1", "-x", "@a", "plain", "")] == [
        "'+1",
        "'-x",
        "'@a",
        "plain",
        "",
    ]
    assert csv_filename(result) == "steerway-requests-20240301T000000Z-20240301T020000Z.csv"
