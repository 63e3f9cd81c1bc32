"""Quality: comparisons of two models or system prompts replayed on recorded requests.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemetry.schema import JSONType, Money, Timestamp

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("comparison_id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
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
    )
    op.create_index(
        "ix_comparisons_workspace_id_created_at", "comparisons", ["workspace_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_comparisons_workspace_id_created_at", table_name="comparisons")
    op.drop_table("comparisons")
