"""Alert instances: the silence that held an alert's notification back.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_instances") as batch:
        batch.add_column(sa.Column("silenced_by", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_instances") as batch:
        batch.drop_column("silenced_by")
