"""Reports: each instance keeps how its delivery to each recipient went.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-16
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the schema's type as of this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("report_instances") as batch:
        batch.add_column(sa.Column("deliveries", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_instances") as batch:
        batch.drop_column("deliveries")
