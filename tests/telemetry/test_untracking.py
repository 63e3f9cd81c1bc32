"""Queued records leave the cyclic collector's watch, and nothing that could be a cycle does."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.recorder import Recorder
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.trace import RequestTrace
from telemetry.untracking import MAX_DEPTH, release, release_bundle
from tests.telemetry import count, make_bundle

RECORD_TYPES = (
    TraceRecord,
    SpanRecord,
    DecisionRecord,
    InteractionRecord,
    GuardrailViolationRecord,
)


def containers(value: Any) -> Iterator[Any]:
    """Every list, tuple and dict in a record or bundle, however deep."""
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from containers(getattr(value, name))
    elif isinstance(value, dict):
        yield value
        for key, item in value.items():
            yield from containers(key)
            yield from containers(item)
    elif isinstance(value, (list, tuple)):
        yield value
        for item in value:
            yield from containers(item)


def still_tracked(bundle: TraceBundle) -> list[Any]:
    return [c for c in containers(bundle) if gc.is_tracked(c)]


def nested() -> dict[str, Any]:
    """Plain data as deep as records get: lists in dicts in lists, tuples, a tuple key."""
    return {"list": [{"inner": ["a", 1, 2.5, None]}], "tuple": ("b", ["c"]), ("k", 1): [True]}


def every_container_filled(record_type: type[msgspec.Struct], **required: Any) -> Any:
    """A record whose every field that may hold a container holds a nested one."""
    values = dict(required)
    for field in msgspec.structs.fields(record_type):
        if field.name in values:
            continue
        if field.default_factory is not msgspec.NODEFAULT or isinstance(field.default, tuple):
            values[field.name] = [nested(), [nested()]]
        elif field.type is Any:
            values[field.name] = [nested()]
    return record_type(**values)


def test_every_container_field_of_every_record_is_released() -> None:
    """A field added later that holds containers is covered by this test without a change: it
    fills every field with a container default or an `Any` type."""
    ids = {"trace_id": "t", "workspace_id": "w"}
    bundle = TraceBundle(
        trace=every_container_filled(
            TraceRecord, **ids, request_id="r", route="/v1/chat", started_at=1.0, ended_at=2.0
        ),
        spans=[
            every_container_filled(
                SpanRecord, **ids, span_id="s", name="n", component="c", started_at=1, ended_at=2
            )
        ],
        decisions=[
            every_container_filled(
                DecisionRecord,
                **ids,
                decision_id="d",
                sequence=1,
                type="rule_evaluation",
                component="rules",
                created_at=1.0,
            )
        ],
        interactions=[
            every_container_filled(
                InteractionRecord,
                **ids,
                interaction_id="i",
                provider="p",
                requested_model="m",
                provider_model="m",
                deployment="d",
                operation="chat",
                started_at=1.0,
                ended_at=2.0,
            )
        ],
        violations=[
            every_container_filled(
                GuardrailViolationRecord,
                **ids,
                violation_id="v",
                guardrail="g",
                kind="pii",
                direction="input",
                action="mask",
                score=1.0,
                latency_us=1.0,
                created_at=1.0,
            )
        ],
    )
    before = still_tracked(bundle)
    assert len(before) > 40  # the fill reached every record type
    release_bundle(bundle)
    assert still_tracked(bundle) == []


def test_a_record_built_like_the_gateways_own_is_released() -> None:
    bundle = make_bundle()
    assert still_tracked(bundle)
    release_bundle(bundle)
    assert still_tracked(bundle) == []


class Node:
    pass


def test_a_container_holding_an_object_stays_tracked_and_so_does_every_container_above_it() -> None:
    node = Node()
    held = [node]
    above = {"held": held}
    beside = ["plain"]
    value = {"beside": beside, "above": above}
    assert release(value) is False
    assert gc.is_tracked(held) and gc.is_tracked(above) and gc.is_tracked(value)
    assert not gc.is_tracked(beside)  # released before the walk met the object


@pytest.mark.parametrize("kind", [set, frozenset])
def test_containers_other_than_lists_tuples_and_dicts_are_left_alone(kind: type) -> None:
    value = [kind({"a"})]
    assert release(value) is False
    assert gc.is_tracked(value)


def test_a_cycle_stays_visible_to_the_collector() -> None:
    """A list that holds itself ends the walk at `MAX_DEPTH`: it and its holders stay tracked,
    and a collection still frees the cycle once nothing else holds it."""
    cycle: list[Any] = []
    cycle.append(cycle)
    node = Node()
    node.cycle = cycle  # type: ignore[attr-defined]
    cycle.append(node)
    holder = {"cycle": cycle}
    assert release(holder) is False
    assert gc.is_tracked(cycle) and gc.is_tracked(holder)
    gone = weakref.ref(node)
    del cycle, node, holder
    gc.collect()
    assert gone() is None


def test_nesting_deeper_than_the_limit_stays_tracked_shallower_is_released() -> None:
    def depth(levels: int) -> list[Any]:
        value: list[Any] = ["leaf"]
        for _ in range(levels - 1):
            value = [value]
        return value

    deep, shallow = depth(MAX_DEPTH + 1), depth(MAX_DEPTH)
    assert release(deep) is False and gc.is_tracked(deep)
    assert release(shallow) is True and not gc.is_tracked(shallow)


def test_a_released_dict_is_watched_again_once_it_holds_a_container() -> None:
    value: dict[str, Any] = {"items": ["a"]}
    release(value)
    assert not gc.is_tracked(value)
    value["later"] = [Node()]
    assert gc.is_tracked(value)


async def test_the_recorder_queues_released_bundles_and_writes_them_whole(
    engine: AsyncEngine,
) -> None:
    recorder = Recorder(engine, flush_interval=60.0, batch_size=50)
    bundles = [make_bundle() for _ in range(20)]
    for bundle in bundles:
        assert recorder.record(bundle)
    assert all(still_tracked(bundle) == [] for bundle in bundles)
    queued = {id(c) for bundle in bundles for c in containers(bundle)}
    assert not any(id(o) in queued for o in gc.get_objects())
    await recorder.start()
    await recorder.stop()
    assert await count(engine, "traces") == 20
    assert await count(engine, "spans") == 40
    assert await count(engine, "decisions") == 20


def test_a_requests_spans_without_events_hold_no_container_with_events_a_released_one() -> None:
    trace = RequestTrace(None)
    started = time.perf_counter()
    trace.add_span("auth", "gateway", started, started + 0.001)
    trace.add_span("stream", "gateway", started, started + 0.002, events=[{"name": "first"}])
    record = TraceRecord(
        trace_id=trace.trace_id,
        workspace_id="w",
        request_id="r",
        route="/v1/chat/completions",
        started_at=trace.start_wall,
        ended_at=trace.start_wall + 0.003,
    )
    bundle = trace.bundle(record, started + 0.003)
    root, plain, streamed = bundle.spans
    assert root.events == () and plain.events == ()
    assert not gc.is_tracked(root.events) and not gc.is_tracked(plain.events)
    assert streamed.events == ({"name": "first"},)
    release_bundle(bundle)
    assert still_tracked(bundle) == []
