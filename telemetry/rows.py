"""Records to table rows: epoch floats become UTC timestamps, properties become columns.

Rows are tuples in each table's column order (the `*_COLUMNS` constants), the form Postgres
`COPY` takes; `as_dicts` turns them into parameter sets for executemany inserts. JSON columns
hold Python values here; each writer encodes them as its driver needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from telemetry.escaping import escape_bundle
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.schema import metadata
from telemetry.summary import SUMMARY_COLUMNS, decision_outcome, summarise
from telemetry.trace_sampling import TraceSampling, interaction_without_content

Row = tuple[Any, ...]
_R = TypeVar(
    "_R", TraceRecord, SpanRecord, DecisionRecord, InteractionRecord, GuardrailViolationRecord
)

TRACE_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "workspace_id",
    "api_key_id",
    "request_id",
    "end_user",
    "route",
    "method",
    "started_at",
    "ended_at",
    "duration_ms",
    "status",
    "http_status",
    "requested_model",
    "provider",
    "provider_model",
    "stream",
    "error_type",
    "error_message",
    "overhead_ms",
    "tags",
    "metadata",
    "features",
    "parent_trace_id",
    "parent_span_id",
    "escaped",
    "source",
    "sampled_out",
    *SUMMARY_COLUMNS,
)
SPAN_COLUMNS: tuple[str, ...] = (
    "span_id",
    "trace_id",
    "workspace_id",
    "parent_span_id",
    "name",
    "component",
    "started_at",
    "ended_at",
    "duration_ms",
    "status",
    "attributes",
    "events",
)
DECISION_COLUMNS: tuple[str, ...] = (
    "decision_id",
    "trace_id",
    "workspace_id",
    "sequence",
    "type",
    "component",
    "rule_id",
    "rule_name",
    "input",
    "output",
    "reasoning",
    "evaluation_us",
    "created_at",
    "outcome",
)
INTERACTION_COLUMNS: tuple[str, ...] = (
    "interaction_id",
    "trace_id",
    "workspace_id",
    "span_id",
    "api_key_id",
    "provider",
    "requested_model",
    "provider_model",
    "deployment",
    "attempt",
    "operation",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "total_tokens",
    "usage_estimated",
    "cost_usd",
    "cost_saved_usd",
    "started_at",
    "ended_at",
    "latency_ms",
    "ttft_ms",
    "tokens_per_second",
    "status",
    "http_status",
    "finish_reason",
    "error_type",
    "error_message",
    "cache_hit",
    "prompt",
    "response",
    "purpose",
)
VIOLATION_COLUMNS: tuple[str, ...] = (
    "violation_id",
    "workspace_id",
    "trace_id",
    "api_key_id",
    "guardrail",
    "kind",
    "direction",
    "action",
    "entities",
    "score",
    "latency_us",
    "created_at",
)


def utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def trace_row(bundle: TraceBundle, *, sampled_out: bool = False) -> Row:
    """The trace's row: its own fields, then the summary of what lies under it (worked out
    from the whole bundle, also when sampling keeps only the trace's figures)."""
    t = bundle.trace
    status, summary = summarise(bundle)
    return (
        t.trace_id,
        t.workspace_id,
        t.api_key_id,
        t.request_id,
        t.end_user,
        t.route,
        t.method,
        utc(t.started_at),
        utc(t.ended_at),
        t.duration_ms,
        status,
        t.http_status,
        t.requested_model,
        t.provider,
        t.provider_model,
        t.stream,
        t.error_type,
        t.error_message,
        t.overhead_ms,
        t.tags,
        t.metadata,
        t.features,
        t.parent_trace_id,
        t.parent_span_id,
        t.escaped,
        t.source,
        sampled_out,
        *summary,
    )


def span_row(s: SpanRecord) -> Row:
    return (
        s.span_id,
        s.trace_id,
        s.workspace_id,
        s.parent_span_id,
        s.name,
        s.component,
        utc(s.started_at),
        utc(s.ended_at),
        s.duration_ms,
        s.status,
        s.attributes,
        s.events,
    )


def decision_row(d: DecisionRecord) -> Row:
    return (
        d.decision_id,
        d.trace_id,
        d.workspace_id,
        d.sequence,
        d.type,
        d.component,
        d.rule_id,
        d.rule_name,
        d.input,
        d.output,
        d.reasoning,
        d.evaluation_us,
        utc(d.created_at),
        decision_outcome(d),
    )


def interaction_row(i: InteractionRecord) -> Row:
    return (
        i.interaction_id,
        i.trace_id,
        i.workspace_id,
        i.span_id,
        i.api_key_id,
        i.provider,
        i.requested_model,
        i.provider_model,
        i.deployment,
        i.attempt,
        i.operation,
        i.stream,
        i.prompt_tokens,
        i.completion_tokens,
        i.cached_tokens,
        i.total_tokens,
        i.usage_estimated,
        i.cost_usd,
        i.cost_saved_usd,
        utc(i.started_at),
        utc(i.ended_at),
        i.latency_ms,
        i.ttft_ms,
        i.tokens_per_second,
        i.status,
        i.http_status,
        i.finish_reason,
        i.error_type,
        i.error_message,
        i.cache_hit,
        i.prompt,
        i.response,
        i.purpose,
    )


def violation_row(v: GuardrailViolationRecord) -> Row:
    return (
        v.violation_id,
        v.workspace_id,
        v.trace_id,
        v.api_key_id,
        v.guardrail,
        v.kind,
        v.direction,
        v.action,
        v.entities,
        v.score,
        v.latency_us,
        utc(v.created_at),
    )


@dataclass(slots=True)
class BatchRecords:
    """A batch's records, grouped by the table they go to. Traces are kept as their bundles:
    a trace's row sums up what the bundle holds under it."""

    traces: list[TraceBundle] = field(default_factory=list)
    spans: list[SpanRecord] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    interactions: list[InteractionRecord] = field(default_factory=list)
    violations: list[GuardrailViolationRecord] = field(default_factory=list)
    sampled_out: set[str] = field(default_factory=set)
    """Ids of the traces written without their spans, decisions and content."""

    @classmethod
    def from_bundles(
        cls, bundles: Sequence[TraceBundle], sampling: TraceSampling | None = None
    ) -> BatchRecords:
        """The batch's records; with `sampling`, a bundle it does not keep whole leaves its
        trace (summed up from everything), its interactions without their content and its
        guardrail findings (counts, never text), and nothing else."""
        batch = cls()
        for bundle in bundles:
            batch.traces.append(bundle)
            batch.violations.extend(bundle.violations)
            if sampling is not None and not sampling.keeps(bundle):
                batch.sampled_out.add(bundle.trace.trace_id)
                batch.interactions.extend(
                    interaction_without_content(i) for i in bundle.interactions
                )
                continue
            batch.spans.extend(bundle.spans)
            batch.decisions.extend(bundle.decisions)
            batch.interactions.extend(bundle.interactions)
        return batch

    def without(self, existing: dict[str, set[str]]) -> BatchRecords:
        """The records whose ids are not in `existing` (table name → ids already stored)."""
        return BatchRecords(
            traces=[b for b in self.traces if b.trace.trace_id not in existing.get("traces", ())],
            spans=[s for s in self.spans if s.span_id not in existing.get("spans", ())],
            decisions=[
                d for d in self.decisions if d.decision_id not in existing.get("decisions", ())
            ],
            interactions=[
                i
                for i in self.interactions
                if i.interaction_id not in existing.get("ai_interactions", ())
            ],
            violations=[
                v
                for v in self.violations
                if v.violation_id not in existing.get("guardrail_violations", ())
            ],
            sampled_out=self.sampled_out - existing.get("traces", set()),
        )

    def owners(self) -> dict[str, dict[str, tuple[str, str]]]:
        """Per table: each record's id → the (workspace, trace) it belongs to."""
        return {
            "traces": {
                b.trace.trace_id: (b.trace.workspace_id, b.trace.trace_id) for b in self.traces
            },
            "spans": {s.span_id: (s.workspace_id, s.trace_id) for s in self.spans},
            "decisions": {d.decision_id: (d.workspace_id, d.trace_id) for d in self.decisions},
            "ai_interactions": {
                i.interaction_id: (i.workspace_id, i.trace_id) for i in self.interactions
            },
            "guardrail_violations": {
                v.violation_id: (v.workspace_id, v.trace_id) for v in self.violations
            },
        }

    def tables(self) -> list[TableRecords]:
        """Each append-only table's records and how to turn one into a row, in insert order."""
        return [
            TableRecords(
                "traces",
                TRACE_COLUMNS,
                self.traces,
                self._sampled_trace_row if self.sampled_out else trace_row,
            ),
            TableRecords("spans", SPAN_COLUMNS, self.spans, span_row),
            TableRecords("decisions", DECISION_COLUMNS, self.decisions, decision_row),
            TableRecords(
                "ai_interactions", INTERACTION_COLUMNS, self.interactions, interaction_row
            ),
            TableRecords("guardrail_violations", VIOLATION_COLUMNS, self.violations, violation_row),
        ]

    def _sampled_trace_row(self, bundle: TraceBundle) -> Row:
        return trace_row(bundle, sampled_out=bundle.trace.trace_id in self.sampled_out)

    def table_rows(self) -> list[tuple[str, tuple[str, ...], list[Row]]]:
        """(table, columns, rows) for each append-only table, in insert order."""
        return [(t.name, t.columns, t.rows()) for t in self.tables()]


@dataclass(slots=True, frozen=True)
class TableRecords:
    name: str
    columns: tuple[str, ...]
    records: Sequence[Any]
    to_row: Callable[[Any], Row]

    def rows(self, start: int = 0, stop: int | None = None) -> list[Row]:
        to_row = self.to_row
        return [to_row(record) for record in self.records[start:stop]]


def as_dicts(columns: Sequence[str], rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _string_limits(table: str, record: type[msgspec.Struct]) -> dict[str, int]:
    """The length of each string column the record has a field for (the summary columns are
    worked out from other records, already fitted)."""
    return {
        column.name: column.type.length
        for column in metadata.tables[table].columns
        if isinstance(column.type, sa.String)
        and column.type.length
        and column.name in record.__struct_fields__
    }


_LIMITS = {
    TraceRecord: _string_limits("traces", TraceRecord),
    SpanRecord: _string_limits("spans", SpanRecord),
    DecisionRecord: _string_limits("decisions", DecisionRecord),
    InteractionRecord: _string_limits("ai_interactions", InteractionRecord),
    GuardrailViolationRecord: _string_limits("guardrail_violations", GuardrailViolationRecord),
}


def _fit(record: _R) -> _R:
    changes = {
        name: value[:limit]
        for name, limit in _LIMITS[type(record)].items()
        if isinstance(value := getattr(record, name), str) and len(value) > limit
    }
    return msgspec.structs.replace(record, **changes) if changes else record


def fit_to_columns(bundle: TraceBundle) -> TraceBundle | None:
    """The bundle escaped as the writer stores it, every string cut to its column's length
    (Postgres enforces them); None when nothing is too long."""
    bundle = escape_bundle(bundle)
    fitted = TraceBundle(
        trace=_fit(bundle.trace),
        spans=[_fit(s) for s in bundle.spans],
        decisions=[_fit(d) for d in bundle.decisions],
        interactions=[_fit(i) for i in bundle.interactions],
        violations=[_fit(v) for v in bundle.violations],
        for_evaluation=bundle.for_evaluation,
    )
    unchanged = fitted.trace is bundle.trace and all(
        new is old
        for new, old in zip(
            [*fitted.spans, *fitted.decisions, *fitted.interactions, *fitted.violations],
            [*bundle.spans, *bundle.decisions, *bundle.interactions, *bundle.violations],
            strict=True,
        )
    )
    return None if unchanged else fitted
