"""Initial schema: workspaces, API keys, traces, spans, decisions, AI interactions, usage roll-ups.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types and constants as of this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 10)
DEFAULT_WORKSPACE_ID = "00000000000000000000000000000000"
LATENCY_BUCKET_COUNT = 13


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def upgrade() -> None:
    workspaces = op.create_table(
        "workspaces",
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_workspaces"),
        sa.UniqueConstraint("slug", name="uq_workspaces_slug"),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("display_prefix", sa.String(32), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name="fk_api_keys_workspace_id_workspaces",
        ),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )

    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("end_user", sa.String(256), nullable=True),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=False),
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
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name="pk_traces"),
    )
    _index("traces", "started_at")
    _index("traces", "workspace_id", "started_at")
    _index("traces", "requested_model", "started_at")

    op.create_table(
        "spans",
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.PrimaryKeyConstraint("span_id", name="pk_spans"),
    )
    _index("spans", "trace_id")
    _index("spans", "started_at")

    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=True),
        sa.Column("rule_name", sa.String(256), nullable=True),
        sa.Column("input", JSON, nullable=False),
        sa.Column("output", JSON, nullable=False),
        sa.Column("reasoning", sa.Text, nullable=False),
        sa.Column("evaluation_us", sa.Float, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_decisions"),
    )
    _index("decisions", "trace_id", "sequence")
    _index("decisions", "workspace_id", "created_at")
    _index("decisions", "type", "created_at")

    op.create_table(
        "ai_interactions",
        sa.Column("interaction_id", sa.String(32), nullable=False),
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
        sa.Column("cost_usd", MONEY, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float, nullable=True),
        sa.Column("tokens_per_second", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("finish_reason", sa.String(64), nullable=True),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("prompt", JSON, nullable=True),
        sa.Column("response", JSON, nullable=True),
        sa.PrimaryKeyConstraint("interaction_id", name="pk_ai_interactions"),
    )
    _index("ai_interactions", "trace_id")
    _index("ai_interactions", "started_at")
    _index("ai_interactions", "workspace_id", "started_at")
    _index("ai_interactions", "requested_model", "started_at")

    op.create_table(
        "usage_rollups",
        sa.Column("bucket_start", TIMESTAMP, nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("cache_hits", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", MONEY, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
        *(
            sa.Column(f"latency_bucket_{i}", sa.BigInteger, nullable=False)
            for i in range(LATENCY_BUCKET_COUNT)
        ),
        sa.PrimaryKeyConstraint(
            "bucket_start",
            "workspace_id",
            "api_key_id",
            "provider",
            "model",
            name="pk_usage_rollups",
        ),
    )
    _index("usage_rollups", "workspace_id", "bucket_start")
    _index("usage_rollups", "model", "bucket_start")

    op.bulk_insert(
        workspaces,
        [
            {
                "workspace_id": DEFAULT_WORKSPACE_ID,
                "name": "Default",
                "slug": "default",
                "settings": {},
                "created_at": datetime.now(UTC),
            }
        ],
    )


def downgrade() -> None:
    for table in (
        "usage_rollups",
        "ai_interactions",
        "decisions",
        "spans",
        "traces",
        "api_keys",
        "workspaces",
    ):
        op.drop_table(table)
