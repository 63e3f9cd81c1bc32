"""Quality: what a queued evaluation's failed judge attempts spent, summed on its row.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemetry.schema import Money

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evaluation_queue") as batch:
        batch.add_column(sa.Column("spent_usd", Money(), nullable=True))
        batch.add_column(sa.Column("spent_prompt_tokens", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("spent_completion_tokens", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluation_queue") as batch:
        batch.drop_column("spent_completion_tokens")
        batch.drop_column("spent_prompt_tokens")
        batch.drop_column("spent_usd")
