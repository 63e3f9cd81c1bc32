"""Query parameters of the list endpoints read into filters; every bad one is a 400 naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from admin_ui.search_params import (
    DECISIONS,
    INTERACTIONS,
    TRACES,
    VIOLATIONS,
    ListQuery,
    ListSpec,
    parse_list_query,
)
from gateway.errors import GatewayError
from telemetry.search import Cursor, TraceFilter

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


def parse(spec: ListSpec[Any], query: str = "", **kwargs: Any) -> ListQuery[Any]:
    pairs = [item.partition("=") for item in query.split("&") if item]
    return parse_list_query(spec, [(name, value) for name, _, value in pairs], now=NOW, **kwargs)


def test_no_parameters_lists_everything_newest_first() -> None:
    query = parse(TRACES)
    assert query.filters == TraceFilter()
    assert (query.sort, query.limit, query.cursor, query.workspace) == ("newest", 50, None, None)


def test_every_trace_filter_is_read() -> None:
    query = parse(
        TRACES,
        "since=2026-12-01T00:00:00Z&until=1798000000&workspace=acme&key=k1&key=k2"
        "&trace_id=01ABcd&end_user=alice&model=gpt-4o&model=gpt-4o-mini&served_model=s"
        "&provider=openai&deployment=east&status=error&status=denied&error_type=upstream_error"
        "&http_status=502&tag=prod,eu&tag=beta&metadata=team=search&metadata=tier=2"
        "&min_duration_ms=100&max_duration_ms=2500.5&min_cost=0.001&max_cost=2"
        "&cache_hit=false&guardrail_triggered=true&guardrail=pii&guardrail_action=block"
        "&rule=r-eu&request_id=req-1&stream=yes&sort=cost&limit=200",
    )
    f = query.filters
    assert f.since == datetime(2026, 12, 1, tzinfo=UTC)
    assert f.until == datetime.fromtimestamp(1798000000, UTC)
    assert f.as_of is None
    assert query.workspace == "acme" and f.workspace_ids == ()
    assert f.api_key_ids == ("k1", "k2") and f.trace_id_prefix == "01abcd"
    assert f.models == ("gpt-4o", "gpt-4o-mini") and f.statuses == ("error", "denied")
    assert f.tags_all == ("prod", "eu", "beta") and f.tags_any == ()
    assert f.metadata == (("team", "search"), ("tier", "2"))
    assert (f.min_duration_ms, f.max_duration_ms) == (100.0, 2500.5)
    assert (f.min_cost_usd, f.max_cost_usd) == (Decimal("0.001"), Decimal("2"))
    assert (f.cache_hit, f.guardrail_triggered, f.stream) == (False, True, True)
    assert (f.guardrails, f.guardrail_actions, f.rules) == (("pii",), ("block",), ("r-eu",))
    assert (f.http_statuses, f.request_ids, f.end_users) == ((502,), ("req-1",), ("alice",))
    assert (f.served_models, f.providers, f.deployments) == (("s",), ("openai",), ("east",))
    assert f.error_types == ("upstream_error",)
    assert (query.sort, query.limit) == ("cost", 200)


def test_a_relative_range_is_measured_from_now_and_kept_by_the_cursor() -> None:
    first = parse(TRACES, "last=15m&tag=beta&tag_match=any")
    assert first.filters.since == NOW - timedelta(minutes=15)
    assert first.filters.as_of == NOW and first.filters.tags_any == ("beta",)
    earlier = NOW - timedelta(hours=1)
    cursor = Cursor("newest", NOW.isoformat(), "ab" * 16, earlier, "d" * 16).encode()
    later = parse(TRACES, f"last=2w&cursor={cursor}")
    assert later.filters.since == earlier - timedelta(weeks=2)
    assert later.filters.as_of == earlier
    assert later.cursor is not None and later.cursor.id == "ab" * 16


def test_the_other_lists_read_their_own_filters() -> None:
    interactions = parse(
        INTERACTIONS, "status=cancelled&attempt=2&operation=chat&min_ttft_ms=5&usage_estimated=1"
    ).filters
    assert (interactions.statuses, interactions.attempts) == (("cancelled",), (2,))
    assert (interactions.operations, interactions.min_ttft_ms) == (("chat",), 5.0)
    assert interactions.usage_estimated is True
    decisions = parse(DECISIONS, "type=retry&outcome=denied&rule=r1&component=rules").filters
    assert (decisions.types, decisions.outcomes) == (("retry",), ("denied",))
    assert (decisions.rules, decisions.components) == (("r1",), ("rules",))
    violations = parse(
        VIOLATIONS, "guardrail=pii&kind=pii&entity_type=EMAIL_ADDRESS&action=mask&direction=input"
    ).filters
    assert violations.entity_types == ("EMAIL_ADDRESS",) and violations.actions == ("mask",)
    assert violations.directions == ("input",)


def test_a_pages_own_parameters_can_be_passed_over() -> None:
    assert parse(TRACES, "refresh=30&model=m", ignore=("refresh",)).filters.models == ("m",)


BAD: list[tuple[ListSpec[Any], str, str]] = [
    (TRACES, "modle=gpt-4o", "modle"),
    (TRACES, "since=yesterday", "since"),
    (TRACES, "until=2026-13-01", "until"),
    (TRACES, "since=2026-12-02&until=2026-12-01", "until"),
    (TRACES, "since=99999999999999", "since"),
    (TRACES, "last=15", "last"),
    (TRACES, "last=0m", "last"),
    (TRACES, "last=15m&since=2026-01-01", "last"),
    (TRACES, "last=9999999w", "last"),
    (TRACES, "status=failed", "status"),
    (TRACES, "status=", "status"),
    (TRACES, "http_status=99", "http_status"),
    (TRACES, "http_status=abc", "http_status"),
    (TRACES, "min_duration_ms=-1", "min_duration_ms"),
    (TRACES, "max_duration_ms=nan", "max_duration_ms"),
    (TRACES, "min_duration_ms=500&max_duration_ms=100", "max_duration_ms"),
    (TRACES, "min_cost=1e999", "min_cost"),
    (TRACES, "max_cost=-0.5", "max_cost"),
    (TRACES, "min_cost=2&max_cost=1", "max_cost"),
    (TRACES, "cache_hit=maybe", "cache_hit"),
    (TRACES, "stream=", "stream"),
    (TRACES, "guardrail_action=warn", "guardrail_action"),
    (TRACES, "metadata=team", "metadata"),
    (TRACES, "metadata==search", "metadata"),
    (TRACES, "tag=,", "tag"),
    (TRACES, "tag=a&tag_match=some", "tag_match"),
    (TRACES, "trace_id=xyz", "trace_id"),
    (TRACES, "trace_id=" + "a" * 33, "trace_id"),
    (TRACES, "sort=oldest", "sort"),
    (TRACES, "limit=0", "limit"),
    (TRACES, "limit=201", "limit"),
    (TRACES, "limit=ten", "limit"),
    (TRACES, "limit=5&limit=6", "limit"),
    (TRACES, "cursor=not-a-cursor", "cursor"),
    (TRACES, "model=" + "m" * 257, "model"),
    (TRACES, "workspace=", "workspace"),
    (TRACES, "key=", "key"),
    (TRACES, "&".join(f"model=m{n}" for n in range(51)), "model"),
    (INTERACTIONS, "status=denied", "status"),
    (INTERACTIONS, "attempt=0", "attempt"),
    (INTERACTIONS, "rule=r1", "rule"),
    (DECISIONS, "outcome=great", "outcome"),
    (DECISIONS, "sort=duration", "sort"),
    (VIOLATIONS, "action=warn", "action"),
    (VIOLATIONS, "direction=both", "direction"),
    (VIOLATIONS, "model=x", "model"),
]


@pytest.mark.parametrize(("spec", "query", "param"), BAD, ids=[q[:40] for _, q, _ in BAD])
def test_a_bad_parameter_is_a_400_naming_it(spec: ListSpec[Any], query: str, param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse(spec, query)
    error = caught.value
    assert (error.status, error.param) == (400, param), error.message
    assert f"'{param}'" in error.message or param in error.message
    assert len(error.message) < 600


def test_a_changed_cursor_is_refused() -> None:
    cursor = Cursor("newest", NOW.isoformat(), "ab" * 16, None, "d" * 16).encode()
    changed = cursor[:20] + ("A" if cursor[20] != "A" else "B") + cursor[21:]
    for value in (changed, cursor[:-2], cursor + "AA", "=" * 8, "a" * 600):
        with pytest.raises(GatewayError) as caught:
            parse(TRACES, f"cursor={value}")
        assert (caught.value.param, caught.value.code) == ("cursor", "invalid_cursor")


def test_the_openapi_description_lists_every_parameter_read() -> None:
    for spec in (TRACES, INTERACTIONS, DECISIONS, VIOLATIONS):
        described = {query.name for query in spec.openapi()}
        assert {p.name for p in spec.params} <= described
        assert {"since", "until", "last", "workspace", "key", "cursor", "limit"} <= described
