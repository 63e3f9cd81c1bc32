"""Limits on keys (allowed models, rpm, tpm, parallelism, budgets, default tags), the cost a cache
hit saved, and the spend kept per budget and window.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 10)
EMPTY_LIST = sa.text("'[]'")

KEY_COLUMNS = (
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budgets",
    "default_tags",
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("allowed_models", JSON, nullable=True))
        batch.add_column(sa.Column("rpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tpm_limit", sa.Integer, nullable=True))
        batch.add_column(sa.Column("max_parallel", sa.Integer, nullable=True))
        batch.add_column(sa.Column("budgets", JSON, nullable=False, server_default=EMPTY_LIST))
        batch.add_column(sa.Column("default_tags", JSON, nullable=False, server_default=EMPTY_LIST))

    with op.batch_alter_table("ai_interactions") as batch:
        batch.add_column(sa.Column("cost_saved_usd", MONEY, nullable=True))

    op.create_table(
        "budget_spend",
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("spent_micros", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint(
            "scope", "subject", "window", "window_start", name="pk_budget_spend"
        ),
    )


def downgrade() -> None:
    op.drop_table("budget_spend")
    with op.batch_alter_table("ai_interactions") as batch:
        batch.drop_column("cost_saved_usd")
    with op.batch_alter_table("api_keys") as batch:
        for column in reversed(KEY_COLUMNS):
            batch.drop_column(column)
