"""Whole requests recorded at a chosen time, their ids minted then too (UUIDv7 ids carry their
time, which is what the day partitions of Postgres go by)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from telemetry.ids import uuid7_hex
from telemetry.records import GuardrailViolationRecord, TraceBundle
from tests.telemetry import make_bundle


def id_at(moment: datetime) -> str:
    """A UUIDv7 minted at `moment`."""
    millis = int(moment.timestamp() * 1000)
    return f"{millis:012x}{uuid7_hex()[12:]}"


def request_at(at: datetime) -> TraceBundle:
    """One request made `at`: its trace, two spans, a decision, an interaction with its prompt,
    a guardrail violation, every id minted at that time."""
    bundle = make_bundle(started_at=at.timestamp())
    trace_id = id_at(at)
    return TraceBundle(
        trace=msgspec.structs.replace(bundle.trace, trace_id=trace_id),
        spans=[msgspec.structs.replace(span, trace_id=trace_id) for span in bundle.spans],
        decisions=[
            msgspec.structs.replace(d, trace_id=trace_id, decision_id=id_at(at))
            for d in bundle.decisions
        ],
        interactions=[
            msgspec.structs.replace(i, trace_id=trace_id, interaction_id=id_at(at))
            for i in bundle.interactions
        ],
        violations=[
            GuardrailViolationRecord(
                violation_id=id_at(at),
                trace_id=trace_id,
                workspace_id=bundle.trace.workspace_id,
                api_key_id=bundle.trace.api_key_id,
                guardrail="pii",
                kind="pii",
                direction="input",
                action="mask",
                entities={"EMAIL_ADDRESS": 1},
                score=1.0,
                latency_us=10.0,
                created_at=at.timestamp(),
            )
        ],
    )
