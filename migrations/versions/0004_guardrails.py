"""Guardrails: the guardrails a key applies to its requests, and the violations they found.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("guardrails", JSON, nullable=False, server_default=EMPTY_LIST))

    op.create_table(
        "guardrail_violations",
        sa.Column("violation_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("guardrail", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("entities", JSON, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("latency_us", sa.Float, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("violation_id", name="pk_guardrail_violations"),
    )
    op.create_index("ix_guardrail_violations_trace_id", "guardrail_violations", ["trace_id"])
    op.create_index(
        "ix_guardrail_violations_workspace_id_created_at",
        "guardrail_violations",
        ["workspace_id", "created_at"],
    )
    op.create_index(
        "ix_guardrail_violations_guardrail_created_at",
        "guardrail_violations",
        ["guardrail", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("guardrail_violations")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("guardrails")
