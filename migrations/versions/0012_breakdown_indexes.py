"""Indexes on the breakdowns by kind: an operator's ranking of end users or tags over a range
reads that kind's day and hour rows in it, and a top-N's series the hours of the names it kept,
instead of every row of the range (end users are most of the table).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_usage_breakdowns_kind_grain_bucket_start": ["kind", "grain", "bucket_start"],
    "ix_usage_breakdowns_kind_grain_name_bucket_start": ["kind", "grain", "name", "bucket_start"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "usage_breakdowns", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="usage_breakdowns")
