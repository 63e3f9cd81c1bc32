"""Searching recorded requests: indexes for the filters and sorts of the console's lists, and
each decision's outcome in a column of its own (filled by the writer from now on).

GIN indexes (`jsonb_path_ops`, for `@>`) on the trace's tags, metadata, matched rules and
triggered guardrails exist on Postgres only; SQLite reads those columns with `json_each`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (table, columns, the rows indexed (None: all))
INDEXES: dict[str, tuple[str, list[str], str | None]] = {
    "ix_traces_api_key_id_started_at": ("traces", ["api_key_id", "started_at"], None),
    "ix_traces_status_started_at": ("traces", ["status", "started_at"], "status <> 'ok'"),
    "ix_traces_end_user_started_at": (
        "traces",
        ["end_user", "started_at"],
        "end_user IS NOT NULL",
    ),
    "ix_traces_error_type_started_at": (
        "traces",
        ["error_type", "started_at"],
        "error_type IS NOT NULL",
    ),
    "ix_traces_request_id": ("traces", ["request_id"], None),
    "ix_traces_duration_ms": ("traces", ["duration_ms"], None),
    "ix_traces_cost_usd": ("traces", ["cost_usd"], None),
    "ix_decisions_created_at": ("decisions", ["created_at"], None),
    "ix_decisions_rule_id_created_at": (
        "decisions",
        ["rule_id", "created_at"],
        "rule_id IS NOT NULL",
    ),
    "ix_guardrail_violations_created_at": ("guardrail_violations", ["created_at"], None),
}
GIN_COLUMNS = ("tags", "metadata", "rules_matched", "guardrails_triggered")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
    for name, (table, columns, where) in INDEXES.items():
        condition = None if where is None else sa.text(where)
        op.create_index(name, table, columns, postgresql_where=condition, sqlite_where=condition)
    if _postgres():
        for column in GIN_COLUMNS:
            op.create_index(
                f"ix_traces_{column}_gin",
                "traces",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "jsonb_path_ops"},
            )


def downgrade() -> None:
    if _postgres():
        for column in reversed(GIN_COLUMNS):
            op.drop_index(f"ix_traces_{column}_gin", table_name="traces")
    for name, (table, _, _) in reversed(INDEXES.items()):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("outcome")
