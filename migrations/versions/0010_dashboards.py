"""Saved dashboards: a named list of panels per workspace, shared or private to its owner.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("dashboard_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("owner_user_id", sa.String(32), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("panels", JSON, nullable=False),
        sa.Column("shared", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name="fk_dashboards_workspace_id_workspaces",
        ),
        sa.PrimaryKeyConstraint("dashboard_id", name="pk_dashboards"),
    )
    op.create_index(
        "ix_dashboards_workspace_id_dashboard_id", "dashboards", ["workspace_id", "dashboard_id"]
    )
    op.create_index("ix_dashboards_owner_user_id", "dashboards", ["owner_user_id"])


def downgrade() -> None:
    op.drop_table("dashboards")
