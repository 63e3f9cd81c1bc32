"""Prometheus metrics: OpenTelemetry GenAI histograms in Prometheus form plus `steerway_*` series.

Label sets stay bounded: routes are the gateway's own (any other path is `unmatched`), models
the configured public names (anything else is `unknown`), providers, deployments, rules and
guardrails the configured ones, reasons and error types from fixed sets; no per-key or per-user
label, and nothing a client chooses reaches a label unmapped. With several workers the serve
command sets `PROMETHEUS_MULTIPROC_DIR` before any worker starts, and `/metrics` sums across them.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

# Bucket bounds recommended by the OpenTelemetry GenAI semantic conventions.
OPERATION_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_USAGE_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
TIME_TO_FIRST_TOKEN_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
OVERHEAD_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.002,
    0.003,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)

_GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

operation_duration = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of GenAI operations as seen by the gateway's client to the provider.",
    [*_GENAI_LABELS, "error_type"],
    buckets=OPERATION_DURATION_BUCKETS,
)
token_usage = Histogram(
    "gen_ai_client_token_usage",
    "Tokens used per GenAI operation, by token type (input, output).",
    [*_GENAI_LABELS, "gen_ai_token_type"],
    buckets=TOKEN_USAGE_BUCKETS,
)
time_to_first_token = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time from sending a streaming request to receiving its first token.",
    list(_GENAI_LABELS),
    buckets=TIME_TO_FIRST_TOKEN_BUCKETS,
)
UNMATCHED_ROUTE = "unmatched"
"""The `route` label of every path that is not one of the gateway's routes."""
REFUSAL_REASONS = frozenset(
    {"missing_api_key", "invalid_api_key", "unknown_url", "method_not_allowed"}
)
"""`reason` labels of `steerway_unauthenticated_requests_total`; any other is `other`."""

requests_total = Counter(
    "steerway_requests_total",
    "Requests answered by the gateway, by route (unknown paths: `unmatched`), model and HTTP "
    "status.",
    ["route", "model", "status_code"],
)
unauthenticated_requests = Counter(
    "steerway_unauthenticated_requests_total",
    "Requests refused before a key was accepted (no key, a wrong key, an unknown path or "
    "method), by route and reason; only a configured few a minute are stored as traces.",
    ["route", "reason"],
)
gateway_overhead = Histogram(
    "steerway_gateway_overhead_seconds",
    "Time the gateway itself adds to a request (total minus the provider's time).",
    ["route"],
    buckets=OVERHEAD_BUCKETS,
)
cost_total = Counter(
    "steerway_cost_usd_total",
    "Provider cost in US dollars, from the price table (unknown prices add nothing).",
    ["provider", "model"],
)
upstream_errors = Counter(
    "steerway_upstream_errors_total",
    "Failed provider attempts, by provider and error type.",
    ["provider", "error_type"],
)
streams_cancelled = Counter(
    "steerway_streams_cancelled_total",
    "Streams ended because the client disconnected; the upstream request is cancelled.",
    ["model"],
)
retries_total = Counter(
    "steerway_retries_total", "Provider attempts retried, by public model.", ["model"]
)
fallbacks_total = Counter(
    "steerway_fallbacks_total",
    "Requests moved to a fallback model, by the model they left and the one they went to.",
    ["from_model", "to_model"],
)
cooldowns_total = Counter(
    "steerway_cooldowns_total",
    "Times a deployment was taken out of rotation after repeated failures.",
    ["deployment"],
)
deployment_up = Gauge(
    "steerway_deployment_up",
    "1 while a deployment is in rotation, 0 while it cools down after failures.",
    ["deployment"],
    multiprocess_mode="min",
)
rule_matches_total = Counter(
    "steerway_rule_matches_total",
    "Requests a steering rule matched, by rule id (bounded by the rules defined).",
    ["rule"],
)
rule_evaluation_seconds = Histogram(
    "steerway_rule_evaluation_seconds",
    "Time to evaluate the steering rules for one request.",
    buckets=(5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3),
)
rules_denied_total = Counter(
    "steerway_rules_denied_total", "Requests refused by a steering rule's deny action.", ["rule"]
)
rules_loaded = Gauge(
    "steerway_rules_loaded",
    "Steering rules in force in this worker (enabled ones).",
    multiprocess_mode="max",
)
guardrail_verdicts_total = Counter(
    "steerway_guardrail_verdicts_total",
    "Guardrail verdicts by guardrail (bounded by the config) and what was done: block, mask, "
    "log when something was found, pass when nothing was, error when the check failed.",
    ["guardrail", "action"],
)
guardrail_check_seconds = Histogram(
    "steerway_guardrail_check_seconds",
    "Time one guardrail took over one request's input or one answer.",
    ["guardrail", "direction"],
    buckets=(1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.25),
)
otlp_ingested_spans = Counter(
    "steerway_otlp_ingested_spans_total",
    "Spans received at POST /v1/traces: accepted (recorded as an interaction), ignored (not a "
    "GenAI model call) or rejected (invalid, out of the time window, or too large).",
    ["result"],
)
otlp_requests = Counter(
    "steerway_otlp_requests_total",
    "Requests to POST /v1/traces by HTTP status.",
    ["status_code"],
)
telemetry_enqueued = Counter(
    "steerway_telemetry_enqueued_total", "Trace bundles accepted by the recorder's queue."
)
telemetry_dropped = Counter(
    "steerway_telemetry_dropped_total",
    "Trace bundles dropped because the recorder's queue was full.",
)
traces_sampled_out = Counter(
    "steerway_traces_sampled_out_total",
    "Requests written as their trace row and figures only, without spans, decisions or "
    "content (telemetry.sampling).",
)
telemetry_queue_depth = Gauge(
    "steerway_telemetry_queue_depth",
    "Trace bundles waiting in the recorder's queue.",
    multiprocess_mode="livesum",
)
event_loop_lag = Histogram(
    "steerway_event_loop_lag_seconds",
    "How late the event loop's lag probe woke from a 10 ms sleep: time the loop was held by "
    "other work.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
)
event_loop_lag_max = Gauge(
    "steerway_event_loop_lag_max_seconds",
    "The worst event-loop lag seen since the worker started (the highest of any worker).",
    multiprocess_mode="max",
)
telemetry_rows_written = Counter(
    "steerway_telemetry_rows_written_total", "Rows written by the recorder, by table.", ["table"]
)
telemetry_batch_seconds = Histogram(
    "steerway_telemetry_batch_seconds",
    "Time to write one recorder batch.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
telemetry_spilled = Counter(
    "steerway_telemetry_spilled_total",
    "Trace bundles written to the local spill file while the database was unavailable.",
)
telemetry_spill_quarantined = Counter(
    "steerway_telemetry_spill_quarantined_total",
    "Spill file lines that did not decode, set aside in a quarantine file instead of replayed.",
)
telemetry_journal_sync_seconds = Histogram(
    "steerway_telemetry_journal_sync_seconds",
    "spill-first durability: time to write and fsync one group of bundles to the journal.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
telemetry_journal_failures = Counter(
    "steerway_telemetry_journal_failures_total",
    "spill-first durability: bundles the journal could not write (answered without waiting).",
)
telemetry_write_failures = Counter(
    "steerway_telemetry_write_failures_total", "Failed recorder batch writes (retried or spilled)."
)

retention_rows_removed = Counter(
    "steerway_retention_rows_removed_total",
    "Rows the retention job removed as expired, by kind (traces, spans, decisions, "
    "interactions, violations, rollup_minute, rollup_hour, rollup_day; content: interactions "
    "whose prompt and answer were cleared).",
    ["kind"],
)
retention_partitions_dropped = Counter(
    "steerway_retention_partitions_dropped_total",
    "Postgres: day partitions the retention job dropped as expired, by table.",
    ["table"],
)
retention_partitions_created = Counter(
    "steerway_retention_partitions_created_total",
    "Postgres: day partitions the retention job made (ahead of their day, or late with the "
    "rows moved out of the default partition), by table.",
    ["table"],
)
retention_rows_moved = Counter(
    "steerway_retention_rows_moved_total",
    "Postgres: rows moved out of a default partition into the day partition made late for "
    "them, by table.",
    ["table"],
)


class Labelled:
    """`metric.labels(...)` remembered per label tuple: label sets are bounded, lookups are hot."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


def render() -> tuple[bytes, str]:
    """The exposition text for `/metrics`, summed across workers when running multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class PrometheusRecorderObserver:
    """Feeds the recorder's events into the `steerway_telemetry_*` series."""

    def enqueued(self, depth: int) -> None:
        # The depth gauge is set when the writer takes a batch (`queue_depth`), not per request.
        telemetry_enqueued.inc()

    def dropped(self, count: int) -> None:
        telemetry_dropped.inc(count)

    def written(self, table: str, rows: int) -> None:
        telemetry_rows_written.labels(table).inc(rows)

    def batch_written(self, seconds: float, bundles: int) -> None:
        telemetry_batch_seconds.observe(seconds)

    def spilled(self, bundles: int) -> None:
        telemetry_spilled.inc(bundles)

    def quarantined(self, lines: int) -> None:
        telemetry_spill_quarantined.inc(lines)

    def write_failed(self, error: BaseException) -> None:
        telemetry_write_failures.inc()

    def journal_synced(self, seconds: float, bundles: int) -> None:
        telemetry_journal_sync_seconds.observe(seconds)

    def journal_failed(self, bundles: int) -> None:
        telemetry_journal_failures.inc(bundles)

    def queue_depth(self, depth: int) -> None:
        telemetry_queue_depth.set(depth)

    def sampled_out(self, traces: int) -> None:
        traces_sampled_out.inc(traces)


# --- shared by the Redis-backed cache, budgets and rate limits ----------------------------------

redis_errors_total = Counter(
    "steerway_redis_errors_total",
    "Redis calls that failed or timed out, by concern (cache, budgets, rate_limit).",
    ["concern"],
)

# --- response cache ---------------------------------------------------------------------------

cache_requests_total = Counter(
    "steerway_cache_requests_total",
    "Requests by cache outcome (hit, miss, bypass), by operation (chat, embeddings).",
    ["operation", "result"],
)
cache_bytes = Gauge(
    "steerway_cache_bytes",
    "Bytes held by the in-process response cache (entries' encodings plus keys).",
    multiprocess_mode="livesum",
)
cache_saved_usd_total = Counter(
    "steerway_cache_saved_usd_total",
    "Provider cost in US dollars that cache hits avoided, from the stored answers' cost.",
    ["provider", "model"],
)

# --- rate limits ------------------------------------------------------------------------------

rate_limited_total = Counter(
    "steerway_rate_limited_total",
    "Requests refused by a rate limit, by scope (key, workspace) and kind (requests, tokens, "
    "parallel).",
    ["scope", "kind"],
)

# --- budgets ----------------------------------------------------------------------------------

budget_denied_total = Counter(
    "steerway_budget_denied_total",
    "Requests refused because a budget had no room for their maximum cost, by budget scope "
    "(key, workspace, end_user, bucket).",
    ["scope"],
)
budget_soft_limit_total = Counter(
    "steerway_budget_soft_limit_total",
    "Budgets whose settled spend crossed their soft limit, by budget scope.",
    ["scope"],
)

# --- client connections -----------------------------------------------------------------------

connections_open = Gauge(
    "steerway_connections_open",
    "Client connections open, summed over workers.",
    multiprocess_mode="livesum",
)
connections_closed = Counter(
    "steerway_connections_closed_total",
    "Client connections the gateway closed on its own, by reason: header_timeout, "
    "body_timeout, write_timeout (a deadline passed), headers_too_large, shed (replaced at the "
    "connection cap), refused (at the cap with every connection busy).",
    ["reason"],
)

# --- the live feed ----------------------------------------------------------------------------

live_viewers = Gauge(
    "steerway_live_viewers",
    "Clients connected to the live feed (GET /admin/api/live), summed over workers.",
    multiprocess_mode="livesum",
)
live_viewers_dropped_total = Counter(
    "steerway_live_viewers_dropped_total",
    "Live feed viewers dropped because their queue was full (they read too slowly).",
)
live_summaries_total = Counter(
    "steerway_live_summaries_total",
    "Traces summarised for the live feed; none while nobody watches.",
)
live_relay_messages_total = Counter(
    "steerway_live_relay_messages_total",
    "Batches of live summaries sent to or received from other workers through Redis.",
    ["direction"],
)
