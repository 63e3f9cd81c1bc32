"""Hour and day roll-ups summed after the fact: the hours whose finer rows changed since their hour
and day rows were last summed from them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "usage_pending",
        sa.Column("hour_start", TIMESTAMP, nullable=False),
        sa.Column("marked_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("hour_start", name="pk_usage_pending"),
    )


def downgrade() -> None:
    op.drop_table("usage_pending")
