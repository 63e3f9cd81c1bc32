"""Trace parents and escaped values: every request keeps its own trace id; the caller's W3C
trace id and parent span are kept beside it, and a trace notes when a value it carried had to
be escaped to be stored (NUL characters, which Postgres text and JSONB cannot hold).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("parent_trace_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("parent_span_id", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("escaped", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_index("ix_traces_parent_trace_id", "traces", ["parent_trace_id"])


def downgrade() -> None:
    op.drop_index("ix_traces_parent_trace_id", table_name="traces")
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("escaped")
        batch.drop_column("parent_span_id")
        batch.drop_column("parent_trace_id")
