"""Trace context: W3C traceparent parsing, ids, and what a request's trace hands the recorder."""

from __future__ import annotations

import os
import random
import re
import time

import pytest

from telemetry import ids
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


def test_ids_spell_the_drawn_words_in_big_endian_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_pool", iter([0, 0xAB, 0x0123_4567_89AB_CDEF]))
    assert span_id_hex() == "00000000000000ab"  # a zero word is skipped, the next one padded
    assert span_id_hex() == "0123456789abcdef"
    monkeypatch.setattr(ids, "_pool", iter([0xFFFF_FFFF_FFFF_FFFF, 0x0000_0000_0000_0001]))
    assert uuid7_hex()[12:] == "7fff8000000000000001"


def _random_part(uuid7: str) -> int:
    """The 74 random bits of a UUIDv7 (the time prefix differs from one millisecond to the next)."""
    return int(uuid7, 16) & ((0xFFF << 64) | 0x3FFF_FFFF_FFFF_FFFF)


def test_ids_do_not_come_from_the_random_module() -> None:
    """Ids are handed to clients: resetting `random` to a known seed must not replay them."""
    drawn = []
    for _ in range(2):
        random.seed(20240613)
        drawn.append(
            (
                [span_id_hex() for _ in range(50)],
                [_random_part(uuid7_hex()) for _ in range(50)],
                RequestTrace(VALID).root_span_id,
                _random_part(RequestTrace(VALID).trace_id),
            )
        )
    (spans_a, uuids_a, root_a, trace_a), (spans_b, uuids_b, root_b, trace_b) = drawn
    assert not set(spans_a) & set(spans_b)
    assert not set(uuids_a) & set(uuids_b)
    assert (root_a, trace_a) != (root_b, trace_b)


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    """Bits read ahead before a fork are never handed out by both processes."""
    span_id_hex()  # the pool now holds words read ahead
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(writer, "".join(span_id_hex() for _ in range(20)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(child, 0)
    in_child = {text[i : i + 16] for i in range(0, len(text), 16)}
    in_parent = {span_id_hex() for _ in range(20)}
    assert len(in_child) == 20
    assert not in_child & in_parent


# --- RequestTrace -----------------------------------------------------------------------------


def test_a_request_without_traceparent_starts_a_trace() -> None:
    trace = RequestTrace(None)
    assert HEX32.fullmatch(trace.trace_id)
    assert (trace.parent_trace_id, trace.parent_span_id) == (None, None)
    assert trace.flags == "01"
    assert HEX16.fullmatch(trace.root_span_id)
    assert RequestTrace(None).trace_id != trace.trace_id
    span_id = span_id_hex()
    assert trace.traceparent_for(span_id) == f"00-{trace.trace_id}-{span_id}-01"


def test_a_request_with_traceparent_gets_its_own_id_and_keeps_the_callers_as_parent() -> None:
    trace = RequestTrace(f"00-{TRACE_ID}-{PARENT_ID}-00")
    assert HEX32.fullmatch(trace.trace_id) and trace.trace_id != TRACE_ID
    assert (trace.parent_trace_id, trace.parent_span_id) == (TRACE_ID, PARENT_ID)
    again = RequestTrace(f"00-{TRACE_ID}-{PARENT_ID}-00")
    assert again.trace_id not in (trace.trace_id, TRACE_ID)
    span_id = span_id_hex()
    assert trace.traceparent_for(span_id) == f"00-{TRACE_ID}-{span_id}-00"


def test_an_invalid_traceparent_starts_a_fresh_trace() -> None:
    trace = RequestTrace(f"00-{'0' * 32}-{PARENT_ID}-01")
    assert trace.trace_id != "0" * 32
    assert HEX32.fullmatch(trace.trace_id)
    assert (trace.parent_trace_id, trace.parent_span_id) == (None, None)


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
    assert {s.trace_id for s in bundle.spans} == {trace.trace_id}
    assert {d.trace_id for d in bundle.decisions} == {trace.trace_id}
    assert trace.trace_id != TRACE_ID


def test_a_fresh_trace_has_a_root_span_without_parent() -> None:
    trace = RequestTrace(None)
    bundle = trace.bundle(_trace_record(trace, "ws"), trace.start + 0.001)
    assert len(bundle.spans) == 1
    assert bundle.spans[0].parent_span_id is None
    assert bundle.trace.trace_id == trace.trace_id
