"""Trace context: W3C traceparent parsing, ids, and what a request's trace hands the recorder."""

from __future__ import annotations

import re
import time

import pytest

from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import TraceRecord
from telemetry.trace import RequestTrace, parse_traceparent

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


# --- parse_traceparent ------------------------------------------------------------------------


def test_a_valid_traceparent() -> None:
    assert parse_traceparent(VALID) == (TRACE_ID, PARENT_ID, "01")
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-00") == (TRACE_ID, PARENT_ID, "00")
    assert parse_traceparent(f"  {VALID}\t") == (TRACE_ID, PARENT_ID, "01")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param(f"00-{TRACE_ID}-{PARENT_ID}", id="three-fields"),
        pytest.param(f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", id="short-trace-id"),
        pytest.param(f"00-{TRACE_ID}0-{PARENT_ID}-01", id="long-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{PARENT_ID[:-1]}-01", id="short-parent-id"),
        pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-1", id="short-flags"),
        pytest.param(f"0-{TRACE_ID}-{PARENT_ID}-01", id="short-version"),
        pytest.param(f"00-{'g' * 32}-{PARENT_ID}-01", id="not-hex"),
        pytest.param(f"00_{TRACE_ID}_{PARENT_ID}_01", id="wrong-separator"),
        pytest.param(f"00-{'0' * 32}-{PARENT_ID}-01", id="zero-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{'0' * 16}-01", id="zero-parent-id"),
        pytest.param(f"ff-{TRACE_ID}-{PARENT_ID}-01", id="version-ff"),
        pytest.param(f"{VALID}-extra", id="trailing-field"),
        pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-01\n00-{TRACE_ID}", id="two-lines"),
    ],
)
def test_invalid_traceparents_are_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


# --- ids --------------------------------------------------------------------------------------


def test_uuid7_layout() -> None:
    value = uuid7_hex()
    assert HEX32.fullmatch(value)
    number = int(value, 16)
    assert (number >> 76) & 0xF == 7
    assert (number >> 62) & 0b11 == 0b10
    millis = number >> 80
    assert abs(millis - time.time() * 1000) < 5_000


def test_uuid7_orders_by_time_and_is_unique() -> None:
    first = uuid7_hex()
    time.sleep(0.002)
    second = uuid7_hex()
    assert first < second
    many = {uuid7_hex() for _ in range(5_000)}
    assert len(many) == 5_000


def test_span_ids() -> None:
    ids = {span_id_hex() for _ in range(2_000)}
    assert len(ids) == 2_000
    assert all(HEX16.fullmatch(i) and i != "0" * 16 for i in ids)


# --- RequestTrace -----------------------------------------------------------------------------


def test_a_request_without_traceparent_starts_a_trace() -> None:
    trace = RequestTrace(None)
    assert HEX32.fullmatch(trace.trace_id)
    assert trace.parent_span_id is None
    assert trace.flags == "01"
    assert HEX16.fullmatch(trace.root_span_id)
    assert RequestTrace(None).trace_id != trace.trace_id


def test_a_request_with_traceparent_continues_it() -> None:
    trace = RequestTrace(f"00-{TRACE_ID}-{PARENT_ID}-00")
    assert trace.trace_id == TRACE_ID
    assert trace.parent_span_id == PARENT_ID
    span_id = span_id_hex()
    assert trace.traceparent_for(span_id) == f"00-{TRACE_ID}-{span_id}-00"


def test_an_invalid_traceparent_starts_a_fresh_trace() -> None:
    trace = RequestTrace(f"00-{'0' * 32}-{PARENT_ID}-01")
    assert trace.trace_id != "0" * 32
    assert HEX32.fullmatch(trace.trace_id)
    assert trace.parent_span_id is None


def test_wall_times_follow_the_request_clock() -> None:
    trace = RequestTrace(None)
    assert trace.wall(trace.start) == trace.start_wall
    assert trace.wall(trace.start + 1.5) == pytest.approx(trace.start_wall + 1.5)


def _trace_record(trace: RequestTrace, workspace: str, status: str = "ok") -> TraceRecord:
    return TraceRecord(
        trace_id=trace.trace_id,
        workspace_id=workspace,
        request_id="req-1",
        route="/v1/chat/completions",
        started_at=trace.start_wall,
        ended_at=trace.start_wall + 0.01,
        status=status,
        http_status=200 if status == "ok" else 502,
    )


def test_bundle_has_a_root_span_parenting_every_span() -> None:
    trace = RequestTrace(VALID)
    started = trace.start
    auth = trace.add_span("auth", "gateway", started, started + 0.001)
    given = span_id_hex()
    provider = trace.add_span(
        "provider.chat",
        "provider",
        started + 0.001,
        started + 0.010,
        status="error",
        span_id=given,
        attributes={"gen_ai.provider.name": "mock"},
    )
    assert provider == given
    trace.add_decision(
        "model_selection",
        "router",
        input={"requested_model": "m"},
        output={"provider": "mock"},
        reasoning="the only deployment of this model",
        evaluation_us=3.0,
    )
    trace.add_decision("retry", "router", input={}, output={}, reasoning="again", evaluation_us=1.0)

    bundle = trace.bundle(_trace_record(trace, "ws-1", status="error"), started + 0.02)
    root, *children = bundle.spans
    assert root.span_id == trace.root_span_id
    assert root.name == "gateway.request"
    assert root.parent_span_id == PARENT_ID
    assert root.status == "error"
    assert root.attributes == {"http.route": "/v1/chat/completions", "http.status_code": 502}
    assert root.ended_at - root.started_at == pytest.approx(0.02, abs=1e-5)
    assert [s.span_id for s in children] == [auth, given]
    assert all(s.parent_span_id == root.span_id for s in children)
    assert children[1].status == "error"
    assert children[1].duration_ms == pytest.approx(9.0, abs=0.01)
    assert [d.sequence for d in bundle.decisions] == [1, 2]
    assert {s.workspace_id for s in bundle.spans} == {"ws-1"}
    assert {d.workspace_id for d in bundle.decisions} == {"ws-1"}
    assert {s.trace_id for s in bundle.spans} == {TRACE_ID}


def test_a_fresh_trace_has_a_root_span_without_parent() -> None:
    trace = RequestTrace(None)
    bundle = trace.bundle(_trace_record(trace, "ws"), trace.start + 0.001)
    assert len(bundle.spans) == 1
    assert bundle.spans[0].parent_span_id is None
    assert bundle.trace.trace_id == trace.trace_id
