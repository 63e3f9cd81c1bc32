"""The database tables, as SQLAlchemy Core. One schema for SQLite and Postgres alike.

Ids are strings: trace ids are 32 hex digits (W3C, time-ordered when we mint them), span ids 16,
every other id a UUIDv7 in hex. Times are timezone-aware UTC timestamps.

On Postgres the trace tables (`traces`, `spans`, `decisions`, `ai_interactions`,
`guardrail_violations`) are partitioned by day over `trace_id`, and the children's primary keys
there are (`trace_id`, own id): migration 0019 and `telemetry.retention.partitions`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from telemetry.retention.partitions import is_partition_name

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)

MONEY_SCALE = 10  # decimal places kept: 1e-10 USD


class Money(sa.TypeDecorator[Decimal]):
    """US dollars as an exact Decimal with ten decimal places.

    Postgres keeps NUMERIC(20, 10). SQLite has no exact decimal type (NUMERIC there means a
    float once a fraction appears), so the value is stored as an integer count of 1e-10 USD:
    sums stay exact in SQL too, and reading through this type gives the Decimal back.
    """

    impl = sa.Numeric(20, MONEY_SCALE)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return int(Decimal(value).scaleb(MONEY_SCALE).to_integral_value())

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_SCALE)
        return Decimal(value)


def for_dialect(dialect_name: str) -> Callable[..., bool]:
    """An Alembic `include_object` hook: indexes made for another database only (`ddl_if`)
    are left out when the schema is compared with a database of `dialect_name`, and so are the
    day and default partitions of the trace tables on Postgres (migration 0019), which the
    retention job makes and drops."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and reflected and name is not None and is_partition_name(name):
            return False
        if type_ != "index" or reflected:
            return True
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, dialect_name)

    return include


def money_from_sql(value: Any, dialect_name: str) -> Decimal | None:
    """A money value read with plain SQL (no column type attached), as a Decimal."""
    if value is None:
        return None
    if dialect_name == "sqlite":
        return Decimal(int(value)).scaleb(-MONEY_SCALE)
    return Decimal(value)


def _partial_index(name: str, columns: tuple[str, ...], where: str) -> sa.Index:
    """An index of the rows that meet `where`, on both databases."""
    return sa.Index(name, *columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))


DEFAULT_WORKSPACE_ID = "00000000000000000000000000000000"
EMPTY_JSON_LIST = sa.text("'[]'")

# Upper bounds in milliseconds of the histogram buckets kept in the roll-ups, for latency and
# for time to first token alike; one more bucket holds everything above the last bound. Each bound
# is at most about 1.5 times the one before, so a percentile read from the buckets is within a
# bucket's width of the exact one (docs/analytics.md gives the error measured on demo data).
ROLLUP_LATENCY_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500,
    600, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7500, 10000, 12500, 15000,
    20000, 25000, 30000, 40000, 50000, 60000, 90000, 120000, 180000, 300000,
)  # fmt: skip


def _bucket_columns(prefix: str) -> tuple[str, ...]:
    return (*(f"{prefix}_le_{bound}" for bound in ROLLUP_LATENCY_BOUNDS_MS), f"{prefix}_le_inf")


ROLLUP_BUCKET_COLUMNS: tuple[str, ...] = _bucket_columns("latency")
ROLLUP_TTFT_BUCKET_COLUMNS: tuple[str, ...] = _bucket_columns("ttft")
ROLLUP_GRAINS: tuple[str, ...] = ("minute", "hour", "day")

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("workspace_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("slug", sa.String(100), nullable=False, unique=True),
    sa.Column("settings", JSONType, nullable=False, default=dict),
    sa.Column("created_at", Timestamp, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(32),
        sa.ForeignKey("workspaces.workspace_id"),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),  # SHA-256 hex
    sa.Column("display_prefix", sa.String(32), nullable=False),
    sa.Column("role", sa.String(20), nullable=False, default="user"),  # user | master
    sa.Column("metadata", JSONType, nullable=False, default=dict),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Column("expires_at", Timestamp, nullable=True),
    # Limits (gateway.keys.limits). allowed_models: fnmatch patterns, NULL = every model.
    sa.Column("allowed_models", JSONType, nullable=True),
    sa.Column("rpm_limit", sa.Integer, nullable=True),
    sa.Column("tpm_limit", sa.Integer, nullable=True),
    sa.Column("max_parallel", sa.Integer, nullable=True),
    # [{"limit_usd": "10.00", "window": "monthly", "soft_percent": 80}, ...]
    sa.Column("budgets", JSONType, nullable=False, default=list, server_default=EMPTY_JSON_LIST),
    sa.Column(
        "default_tags", JSONType, nullable=False, default=list, server_default=EMPTY_JSON_LIST
    ),
    # Names of the config's guardrails applied to every request of the key.
    sa.Column("guardrails", JSONType, nullable=False, default=list, server_default=EMPTY_JSON_LIST),
)

traces = sa.Table(
    "traces",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("api_key_id", sa.String(32), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("end_user", sa.String(256), nullable=True),
    sa.Column("route", sa.String(128), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("requested_model", sa.String(256), nullable=True),
    sa.Column("provider", sa.String(128), nullable=True),
    sa.Column("provider_model", sa.String(256), nullable=True),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("error_type", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("overhead_ms", sa.Float, nullable=True),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("features", JSONType, nullable=False),
    # The caller's own W3C trace context, when it sent one: kept as the parent, never our key.
    sa.Column("parent_trace_id", sa.String(32), nullable=True),
    sa.Column("parent_span_id", sa.String(16), nullable=True),
    # A value of this request held characters the database cannot store and was escaped.
    sa.Column("escaped", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # How the trace reached us: proxy (a request the gateway served), otlp, evaluation.
    sa.Column("source", sa.String(16), nullable=False, default="proxy", server_default="proxy"),
    # Sampling (`telemetry.sampling`) kept the trace's figures only: its spans, decisions and
    # content were not written.
    sa.Column("sampled_out", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # A summary of what lies under the trace, written with it so lists and filters read one row:
    # the last attempt's deployment, tokens and cost summed over attempts, the first token's wait,
    # whether the cache answered, the rule ids that matched, and the strongest guardrail action
    # (block > mask > log) with the names of the guardrails that found something.
    sa.Column("deployment", sa.String(256), nullable=True),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
    sa.Column("completion_tokens", sa.BigInteger, nullable=True),
    sa.Column("total_tokens", sa.BigInteger, nullable=True),
    sa.Column("cost_usd", Money(), nullable=True),
    sa.Column("ttft_ms", sa.Float, nullable=True),
    sa.Column("cache_hit", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column(
        "rules_matched", JSONType, nullable=False, default=list, server_default=EMPTY_JSON_LIST
    ),
    sa.Column("guardrail_action", sa.String(8), nullable=True),
    sa.Column(
        "guardrails_triggered",
        JSONType,
        nullable=False,
        default=list,
        server_default=EMPTY_JSON_LIST,
    ),
    sa.Index(None, "started_at"),
    sa.Index(None, "workspace_id", "started_at"),
    sa.Index(None, "requested_model", "started_at"),
    sa.Index(None, "parent_trace_id"),
    # What the console's lists filter and sort by (migration 0008; telemetry.search). Every
    # index costs each insert, so those on values most requests lack are partial: an ok
    # request adds nothing to the status and error type indexes.
    sa.Index(None, "api_key_id", "started_at"),
    _partial_index("ix_traces_status_started_at", ("status", "started_at"), "status <> 'ok'"),
    _partial_index(
        "ix_traces_end_user_started_at", ("end_user", "started_at"), "end_user IS NOT NULL"
    ),
    _partial_index(
        "ix_traces_error_type_started_at", ("error_type", "started_at"), "error_type IS NOT NULL"
    ),
    sa.Index(None, "request_id"),
    sa.Index(None, "duration_ms"),
    sa.Index(None, "cost_usd"),
    *(
        sa.Index(
            f"ix_traces_{name}_gin",
            name,
            postgresql_using="gin",
            postgresql_ops={name: "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql")
        for name in ("tags", "metadata", "rules_matched", "guardrails_triggered")
    ),
)

# Keyed by trace first (migration 0026; on Postgres since 0019): a trace id is time-ordered, so
# new spans land at the end of the key's index, where random span ids alone would scatter them.
# The key's index serves reads by trace: no index on `trace_id` alone.
spans = sa.Table(
    "spans",
    metadata,
    sa.Column("span_id", sa.String(16), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("parent_span_id", sa.String(16), nullable=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("component", sa.String(64), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attributes", JSONType, nullable=False),
    sa.Column("events", JSONType, nullable=False),
    sa.PrimaryKeyConstraint("trace_id", "span_id"),
    sa.Index(None, "started_at"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(32), primary_key=True),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("component", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(128), nullable=True),
    sa.Column("rule_name", sa.String(256), nullable=True),
    sa.Column("input", JSONType, nullable=False),
    sa.Column("output", JSONType, nullable=False),
    sa.Column("reasoning", sa.Text, nullable=False),
    sa.Column("evaluation_us", sa.Float, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # One word for what the decision came to (telemetry.summary.decision_outcome); NULL on
    # decisions recorded before migration 0008.
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Index(None, "trace_id", "sequence"),
    sa.Index(None, "workspace_id", "created_at"),
    sa.Index(None, "type", "created_at"),
    sa.Index(None, "created_at"),
    _partial_index(
        "ix_decisions_rule_id_created_at", ("rule_id", "created_at"), "rule_id IS NOT NULL"
    ),
)

ai_interactions = sa.Table(
    "ai_interactions",
    metadata,
    sa.Column("interaction_id", sa.String(32), primary_key=True),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("span_id", sa.String(16), nullable=True),
    sa.Column("api_key_id", sa.String(32), nullable=True),
    sa.Column("provider", sa.String(128), nullable=False),
    sa.Column("requested_model", sa.String(256), nullable=False),
    sa.Column("provider_model", sa.String(256), nullable=False),
    sa.Column("deployment", sa.String(256), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
    sa.Column("completion_tokens", sa.BigInteger, nullable=True),
    sa.Column("cached_tokens", sa.BigInteger, nullable=True),
    sa.Column("total_tokens", sa.BigInteger, nullable=True),
    # The provider reported no usage (a stream cut short): the tokens are the gateway's guess.
    sa.Column("usage_estimated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cost_usd", Money(), nullable=True),
    sa.Column("cost_saved_usd", Money(), nullable=True),  # what a cache hit saved
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("ttft_ms", sa.Float, nullable=True),
    sa.Column("tokens_per_second", sa.Float, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("finish_reason", sa.String(64), nullable=True),
    sa.Column("error_type", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Column("prompt", JSONType, nullable=True),
    sa.Column("response", JSONType, nullable=True),
    # Why the call was made: `request` (a client's), `evaluation` (a judge's, left out of the
    # users' analytics by default), `moderation` (a moderation guardrail's check).
    sa.Column(
        "purpose", sa.String(16), nullable=False, default="request", server_default="request"
    ),
    sa.Index(None, "trace_id"),
    sa.Index(None, "started_at"),
    sa.Index(None, "workspace_id", "started_at"),
    sa.Index(None, "requested_model", "started_at"),
)

# What dashboards and alerts read, so their cost grows with time and variety, not with the
# number of requests: one row per grain (minute, hour, day), bucket and combination of the
# dimensions, with sums added in by the writer in the same transaction as the raw rows
# (telemetry.rollups). A request counts once, under the attempt that answered it (or the last).
usage_rollups = sa.Table(
    "usage_rollups",
    metadata,
    sa.Column("grain", sa.String(8), nullable=False),  # minute | hour | day
    sa.Column("bucket_start", Timestamp, nullable=False),  # UTC
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("api_key_id", sa.String(32), nullable=False),  # "" when no key
    sa.Column("source", sa.String(16), nullable=False),  # proxy | otlp | evaluation
    sa.Column("provider", sa.String(128), nullable=False),  # "" when no provider was called
    sa.Column("model", sa.String(256), nullable=False),  # the requested (public) model
    sa.Column("served_model", sa.String(256), nullable=False),  # the provider's model
    sa.Column("deployment", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # ok | error | denied | cancelled
    sa.Column("error_type", sa.String(64), nullable=False),  # "" when none
    sa.Column("cache_hit", sa.Boolean, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("cache_hits", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.BigInteger, nullable=False),
    sa.Column("retries", sa.BigInteger, nullable=False),
    sa.Column("fallbacks", sa.BigInteger, nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", Money(), nullable=False),
    sa.Column("cost_saved_usd", Money(), nullable=False),
    sa.Column("unpriced", sa.BigInteger, nullable=False),  # requests with an unpriced attempt
    sa.Column("latency_ms_sum", sa.Float, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in ROLLUP_BUCKET_COLUMNS),
    sa.Column("ttft_count", sa.BigInteger, nullable=False),
    sa.Column("ttft_ms_sum", sa.Float, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in ROLLUP_TTFT_BUCKET_COLUMNS),
    sa.Column("overhead_count", sa.BigInteger, nullable=False),
    sa.Column("overhead_ms_sum", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint(
        "grain",
        "bucket_start",
        "workspace_id",
        "api_key_id",
        "source",
        "provider",
        "model",
        "served_model",
        "deployment",
        "status",
        "error_type",
        "cache_hit",
    ),
    sa.Index(None, "workspace_id", "grain", "bucket_start"),
)

# Breakdowns by values a request may have many of, or too many different ones to be a roll-up
# dimension: tags and end users (the first `telemetry.rollups` caps per workspace keep their
# names, the rest count as "(other)"), matched rules, guardrail verdicts and the entity types
# they found. Hour and day grains only.
usage_breakdowns = sa.Table(
    "usage_breakdowns",
    metadata,
    sa.Column("grain", sa.String(8), nullable=False),  # hour | day
    sa.Column("bucket_start", Timestamp, nullable=False),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("api_key_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # tag | end_user | rule | guardrail | entity
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("detail", sa.String(64), nullable=False),  # a guardrail's action, an entity type
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", Money(), nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint(
        "grain", "bucket_start", "workspace_id", "api_key_id", "kind", "name", "detail"
    ),
    sa.Index(None, "workspace_id", "grain", "kind", "bucket_start"),
    # Every workspace's rows of one kind over a range (an operator's ranking, reading a few
    # day and hour rows instead of the table), and the hours of a few names (a top-N's kept
    # end users or tags, instead of every name's).
    sa.Index(None, "kind", "grain", "bucket_start"),
    sa.Index(None, "kind", "grain", "name", "bucket_start"),
)

# The hours whose minute roll-ups (and hour breakdowns) changed since their hour and day rows were
# last summed from them. On Postgres the recorder adds the finest rows and marks their hours here,
# in the same transaction; `telemetry.rollup_folding` sums the marked hours and days again and
# clears the marks, and analytics read a marked hour from its finer rows until then.
usage_pending = sa.Table(
    "usage_pending",
    metadata,
    sa.Column("hour_start", Timestamp, primary_key=True),
    sa.Column("marked_at", Timestamp, nullable=False),
)

# Steering rules edited through the admin API. A rule is never removed (`deleted_at` marks it), so
# its history in rule_versions always has a rule to belong to.
rules = sa.Table(
    "rules",
    metadata,
    sa.Column("rule_id", sa.String(128), primary_key=True),
    sa.Column("workspace_id", sa.String(32), nullable=False, default=DEFAULT_WORKSPACE_ID),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("document", JSONType, nullable=False),  # the full normalised rule
    sa.Column("version", sa.Integer, nullable=False),  # 1 on creation, +1 on each change
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=True),
    sa.Column("deleted_at", Timestamp, nullable=True),
    sa.Index(None, "workspace_id", "priority"),
)

rule_versions = sa.Table(
    "rule_versions",
    metadata,
    sa.Column("version_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("rule_id", sa.String(128), sa.ForeignKey("rules.rule_id"), nullable=False),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # see rules.store.ACTIONS
    sa.Column("document", JSONType, nullable=False),  # the rule after the change
    sa.Column("diff", JSONType, nullable=False),  # {key: {"from": old, "to": new}}
    sa.Column("author", sa.String(256), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "rule_id", "version", unique=True),
)

# Money spent per budget and window, in micro-dollars: what a restart must not lose. `scope` is
# key | workspace | end_user | bucket and `subject` the key id, workspace id, end user or bucket
# name; `window_start` is the UTC instant the window began (1970-01-01 for "total").
budget_spend = sa.Table(
    "budget_spend",
    metadata,
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("window", sa.String(16), nullable=False),
    sa.Column("window_start", Timestamp, nullable=False),
    sa.Column("spent_micros", sa.BigInteger, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("scope", "subject", "window", "window_start"),
)

# One row per guardrail verdict that found something (block, mask or log). Kinds and counts of
# what was found, never the matched text.
guardrail_violations = sa.Table(
    "guardrail_violations",
    metadata,
    sa.Column("violation_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("api_key_id", sa.String(32), nullable=True),
    sa.Column("guardrail", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # pii | prompt_injection | ...
    sa.Column("direction", sa.String(8), nullable=False),  # input | output
    sa.Column("action", sa.String(8), nullable=False),  # block | mask | log
    sa.Column("entities", JSONType, nullable=False),  # {"EMAIL_ADDRESS": 2, ...}
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("latency_us", sa.Float, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "trace_id"),
    sa.Index(None, "workspace_id", "created_at"),
    sa.Index(None, "guardrail", "created_at"),
    sa.Index(None, "created_at"),
)

# People who sign in to the console. The email is kept lowercased; a user without a password
# hash has not finished signing up (a one-time link sets it). `is_operator` gives the global
# powers the master key has: rules, simulate, replay and every workspace.
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=True),  # Argon2id, PHC string
    sa.Column("is_operator", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("password_changed_at", Timestamp, nullable=True),
    sa.Column("last_sign_in_at", Timestamp, nullable=True),
    sa.Column("disabled_at", Timestamp, nullable=True),
)

# A user's role in a workspace: owner (everything, users included), admin (keys and settings),
# viewer (read only).
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("user_id", "workspace_id"),
    sa.Index(None, "workspace_id"),
)

# Server-side console sessions. Only a SHA-256 of the cookie's token is stored, so a copy of the
# table signs nobody in.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_seen_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),  # the absolute expiry
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(256), nullable=True),
    sa.Index(None, "user_id"),
    sa.Index(None, "expires_at"),
)

# One-time links: the first owner's sign-up, password resets. Only the token's SHA-256 is kept.
signin_links = sa.Table(
    "signin_links",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),  # first_owner | reset
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
)

# Every change made through the console, the admin API or the CLI: who, when, what, and the
# object before and after (secrets never included).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("workspace_id", sa.String(32), nullable=True),  # None: a gateway-wide change
    sa.Column("actor", sa.String(320), nullable=False),  # an email, a key's name, "master", "cli"
    sa.Column("actor_kind", sa.String(8), nullable=False),  # user | key | cli
    sa.Column("action", sa.String(64), nullable=False),  # key.create, rule.update, user.disable...
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("before", JSONType, nullable=True),
    sa.Column("after", JSONType, nullable=True),
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "workspace_id", "created_at"),
    sa.Index(None, "created_at"),
)

# Saved dashboards (`admin_ui.dashboard_model`): a named list of panels per workspace. A shared
# one is seen by the whole workspace, a private one by its owner only (`owner_user_id`; NULL when
# an admin key made it: the workspace's admin keys own it). `version` is 1 on creation and +1 on
# each change; a change names the version it was made from.
dashboards = sa.Table(
    "dashboards",
    metadata,
    sa.Column("dashboard_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("owner_user_id", sa.String(32), nullable=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("panels", JSONType, nullable=False),  # [Panel, ...] as JSON
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index(None, "workspace_id", "dashboard_id"),
    sa.Index(None, "owner_user_id"),
)

# Alert rules (`telemetry.alerts.rule`): what to watch, when it breaches, whom to tell. Thresholds
# are in the metric's unit as the analytics answer it (a rate is a ratio, 0.05 for 5 %); for
# `change_pct`, in percent. `built_in` names a rule the gateway made (editable), NULL otherwise.
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("rule_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("anomaly_kind", sa.String(16), nullable=True),  # of metric anomaly_score
    sa.Column("filters", JSONType, nullable=False),  # {"model": ["gpt-4o"], ...}
    sa.Column("group_by", JSONType, nullable=False),  # ["model"]
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("condition", sa.String(16), nullable=False),  # above | below | change_pct
    sa.Column("warning_threshold", sa.Float, nullable=True),
    sa.Column("critical_threshold", sa.Float, nullable=True),
    sa.Column("for_s", sa.Integer, nullable=False),
    sa.Column("min_requests", sa.Integer, nullable=False),
    sa.Column("no_data", sa.String(16), nullable=False),  # ok | alerting | keep
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("channel_ids", JSONType, nullable=False),
    sa.Column("renotify_s", sa.Integer, nullable=False),  # 0: never again while firing
    sa.Column("notify_on_resolve", sa.Boolean, nullable=False),
    sa.Column("muted", sa.Boolean, nullable=False),
    sa.Column("built_in", sa.String(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # previous_window | last_week: what a change_pct rule compares its window with
    sa.Column("compare_to", sa.String(16), nullable=False, server_default="previous_window"),
    sa.Column("managed_by", sa.String(16), nullable=True),  # config: from the config file
    sa.UniqueConstraint("workspace_id", "name"),
    sa.UniqueConstraint("workspace_id", "built_in"),
)

# The built-in rules each workspace was given once (`telemetry.alerts.builtin_rules`), so a
# built-in rule a user deleted is never made again.
alert_builtin_installs = sa.Table(
    "alert_builtin_installs",
    metadata,
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("built_in", sa.String(64), nullable=False),
    sa.Column("installed_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "built_in"),
)

# Where notifications go (`telemetry.alerts.channel_config`). `secrets` holds only ${ENV}
# references and sealed values, never a secret in plain text.
notification_channels = sa.Table(
    "notification_channels",
    metadata,
    sa.Column("channel_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("kind", sa.String(16), nullable=False),  # webhook | slack | email | pagerduty
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("settings", JSONType, nullable=False),
    sa.Column("secrets", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("managed_by", sa.String(16), nullable=True),  # config: from the config file
    sa.UniqueConstraint("workspace_id", "name"),
)

ALERT_OPEN_STATES = "state IN ('pending', 'firing')"

# One row per episode of a rule's group (fingerprint): from the condition first holding to its
# end, so the rows are the alert's history. An episode is open while `pending` or `firing`; one
# that ends is `resolved` (it fired) or `inactive` (it cleared while pending, never notified).
# At most one open episode per rule and fingerprint (a partial unique index).
alert_instances = sa.Table(
    "alert_instances",
    metadata,
    sa.Column("instance_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("rule_id", sa.String(32), sa.ForeignKey("alert_rules.rule_id"), nullable=False),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | firing | resolved | inactive
    sa.Column("severity", sa.String(16), nullable=False),  # warning | critical
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("fired_at", Timestamp, nullable=True),
    sa.Column("resolved_at", Timestamp, nullable=True),
    sa.Column("last_notified_at", Timestamp, nullable=True),
    sa.Column("acknowledged_at", Timestamp, nullable=True),
    sa.Column("acknowledged_by", sa.String(320), nullable=True),
    sa.Column("last_evaluated_at", Timestamp, nullable=False),
    # The silence that held the alert back at its last evaluation (migration 0016).
    sa.Column("silenced_by", sa.String(32), nullable=True),
    sa.Index(
        "uq_alert_instances_open_rule_id_fingerprint",
        "rule_id",
        "fingerprint",
        unique=True,
        postgresql_where=sa.text(ALERT_OPEN_STATES),
        sqlite_where=sa.text(ALERT_OPEN_STATES),
    ),
    sa.Index(None, "workspace_id", "state", "instance_id"),
    sa.Index(None, "rule_id", "fingerprint", "instance_id"),
)

# Every change of an instance's state (and of a firing one's severity), for its timeline.
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("event_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "instance_id",
        sa.String(32),
        sa.ForeignKey("alert_instances.instance_id"),
        nullable=False,
    ),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("from_state", sa.String(16), nullable=False),  # inactive for a new instance
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index(None, "instance_id", "event_id"),
    sa.Index(None, "workspace_id", "at"),
)

# The delivery log: one row per notification and channel, as `deliver` reported it.
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "instance_id",
        sa.String(32),
        sa.ForeignKey("alert_instances.instance_id"),
        nullable=False,
    ),
    sa.Column("channel_id", sa.String(32), nullable=False),  # kept when the channel is deleted
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("smtp_reply", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index(None, "instance_id", "delivery_id"),
    sa.Index(None, "workspace_id", "at"),
)

# Silences: notifications of instances whose labels match every matcher are held back between
# `starts_at` and `ends_at` (`telemetry.alerts.silence`).
silences = sa.Table(
    "silences",
    metadata,
    sa.Column("silence_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("matchers", JSONType, nullable=False),  # [{"label", "op", "value"}, ...]
    sa.Column("starts_at", Timestamp, nullable=False),
    sa.Column("ends_at", Timestamp, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "workspace_id", "ends_at"),
)

# Report definitions (`telemetry.reports.definition`): what a report holds, over which range, on
# which schedule (a 5-field cron expression in `time_zone`), in which formats, to whom
# (`recipient_ids`: notification channels of the workspace). `built_in` names a definition the
# gateway made for every workspace (the weekly summary), NULL otherwise.
report_definitions = sa.Table(
    "report_definitions",
    metadata,
    sa.Column("definition_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("sections", JSONType, nullable=False),  # ["summary", "cost", ...]
    sa.Column("range", sa.String(32), nullable=False),  # previous_week | last_7d | ...
    sa.Column("schedule", sa.String(200), nullable=False),  # "0 8 * * mon"
    sa.Column("time_zone", sa.String(64), nullable=False),  # IANA, "Europe/Paris"
    sa.Column("recipient_ids", JSONType, nullable=False),
    sa.Column("formats", JSONType, nullable=False),  # ["pdf", "csv"]
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("built_in", sa.String(64), nullable=True),
    sa.Column("next_run_at", Timestamp, nullable=True),  # NULL: not scheduled (disabled)
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
    sa.UniqueConstraint("workspace_id", "built_in"),
    sa.Index(None, "enabled", "next_run_at"),
)

# One row per report made, scheduled or asked for; its files are in `report_files`, so that
# listing instances never reads a file's bytes.
report_instances = sa.Table(
    "report_instances",
    metadata,
    sa.Column("instance_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "definition_id",
        sa.String(32),
        sa.ForeignKey("report_definitions.definition_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("range_start", Timestamp, nullable=False),
    sa.Column("range_end", Timestamp, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # scheduled | manual
    sa.Column("status", sa.String(16), nullable=False),  # done | failed
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("made_at", Timestamp, nullable=False),
    sa.Column("files", JSONType, nullable=False),  # [{"format", "size", "sha256", ...}]
    # [{"channel_id", "channel_name", "kind", "status", "attempts", ...}], after delivery
    sa.Column("deliveries", JSONType, nullable=True),
    sa.Index(None, "definition_id", "instance_id"),
    sa.Index(None, "workspace_id", "instance_id"),
)

# A report instance's file in one format: the bytes themselves.
report_files = sa.Table(
    "report_files",
    metadata,
    sa.Column(
        "instance_id",
        sa.String(32),
        sa.ForeignKey("report_instances.instance_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("format", sa.String(8), primary_key=True),  # csv | json | pdf
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)

# An evaluator: which interactions a judge model scores, on which criteria, at what rate and
# for how much a day (telemetry.evaluation). `origin` is `config` for those the YAML defines
# (one row per workspace, rewritten at start) or `api` for those made in the console or API.
evaluators = sa.Table(
    "evaluators",
    metadata,
    sa.Column("evaluator_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column(
        "workspace_id", sa.String(32), sa.ForeignKey("workspaces.workspace_id"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # config | api
    sa.Column("enabled", sa.Boolean, nullable=False),
    # {"condition", "sampling_rate", "judge", "criteria", "daily_cap_usd", ...}
    sa.Column("definition", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# The durable queue between the recorder, which picks interactions as it writes them, and the
# judge's workers: a row is claimed with a lease (`claimed_until`), so a worker that dies lets
# another take it, and retried after `next_attempt_at` until `attempts` reaches the limit.
evaluation_queue = sa.Table(
    "evaluation_queue",
    metadata,
    sa.Column("queue_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("evaluator_id", sa.String(32), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("interaction_id", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),  # sampled | on_demand
    sa.Column("status", sa.String(16), nullable=False),  # pending | running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("claimed_until", Timestamp, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # What the judge's failed attempts of this row spent so far (each attempt is a call that
    # may be paid); the evaluation written at the end carries it plus its last attempt's.
    sa.Column("spent_usd", Money(), nullable=True),
    sa.Column("spent_prompt_tokens", sa.BigInteger, nullable=True),
    sa.Column("spent_completion_tokens", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("evaluator_id", "interaction_id"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "workspace_id", "created_at"),
)

# One judge's verdict on one interaction: scores 0-100 per criterion, the mean of them, the
# judge's rationale and flags, and what the judge's call cost. The judged interaction's model
# is copied here so dashboards group scores by model without a join. `status`: ok | failed |
# no_content (the interaction's content was not stored) | over_cap (the daily cap was spent).
evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("evaluation_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("evaluator_id", sa.String(32), nullable=False),
    sa.Column("evaluator_name", sa.String(200), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("interaction_id", sa.String(32), nullable=False),
    sa.Column("requested_model", sa.String(256), nullable=True),
    sa.Column("provider_model", sa.String(256), nullable=True),
    sa.Column("judge_model", sa.String(256), nullable=False),
    # The trace that recorded the judge's own call (`traces.source = 'evaluation'`), if any.
    sa.Column("judge_trace_id", sa.String(32), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("scores", JSONType, nullable=False),  # {"accuracy": 90, ...}
    sa.Column("score", sa.Float, nullable=True),  # the mean of `scores`; NULL unless ok
    sa.Column("rationale", sa.Text, nullable=True),
    sa.Column("flags", JSONType, nullable=False),  # ["hallucination", ...]
    sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
    sa.Column("completion_tokens", sa.BigInteger, nullable=True),
    sa.Column("cost_usd", Money(), nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "workspace_id", "created_at"),
    sa.Index(None, "evaluator_id", "created_at"),
    sa.Index(None, "trace_id"),
    sa.Index(None, "interaction_id"),
)

# A comparison of two variants (a public model, optionally with a system prompt of its own) on a
# set of recorded requests, each replayed to both and judged (telemetry.comparison). `status`:
# pending | running | done | failed | cancelled; `results` holds one entry per request with both
# variants' replay traces, tokens, cost, latency and scores. A running comparison is leased:
# `claimed_by` (the runner's id) renews `claimed_until` as it goes; once that has passed, another
# runner takes it over and resumes it from the requests without a result.
comparisons = sa.Table(
    "comparisons",
    metadata,
    sa.Column("comparison_id", sa.String(32), primary_key=True),  # time-ordered
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("definition", JSONType, nullable=False),  # {"filter", "variants", "evaluator"}
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("estimate", JSONType, nullable=False),
    sa.Column("actual_cost_usd", Money(), nullable=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("completed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("results", JSONType, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("claimed_by", sa.String(32), nullable=True),
    sa.Column("claimed_until", Timestamp, nullable=True),
    sa.Index(None, "workspace_id", "created_at"),
)

# A response of `POST /v1/responses` kept so that `previous_response_id` can continue from it
# and `GET /v1/responses/{id}` can return it (gateway.inbound.responses_store). `input_items`
# is the whole conversation the response was given (the items of the responses it continued
# included), `output` its output items, `response` the rest of the response object. Rows expire
# at `expires_at` (the retention job removes them; reads never return them after).
stored_responses = sa.Table(
    "stored_responses",
    metadata,
    sa.Column("response_id", sa.String(64), primary_key=True),  # resp_ + time-ordered hex
    sa.Column("workspace_id", sa.String(32), nullable=False),
    sa.Column("api_key_id", sa.String(32), nullable=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("input_items", JSONType, nullable=False),
    sa.Column("output", JSONType, nullable=False),
    sa.Column("response", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Index(None, "workspace_id", "created_at"),
    sa.Index(None, "expires_at"),
)
