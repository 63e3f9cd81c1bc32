"""Estimated usage: marks the interactions whose tokens the gateway guessed because the provider
reported none (a stream cut short by the client, a guardrail or a broken connection).

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_interactions") as batch:
        batch.add_column(
            sa.Column("usage_estimated", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_interactions") as batch:
        batch.drop_column("usage_estimated")
