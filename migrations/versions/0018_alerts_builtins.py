"""Alerts: the built-in rules each workspace was given, what a change is compared with, and
rules and channels that come from the config file.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(
            sa.Column("compare_to", sa.String(16), nullable=False, server_default="previous_window")
        )
        batch.add_column(sa.Column("managed_by", sa.String(16), nullable=True))
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("managed_by", sa.String(16), nullable=True))
    op.create_table(
        "alert_builtin_installs",
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("built_in", sa.String(64), nullable=False),
        sa.Column("installed_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name="fk_alert_builtin_installs_workspace_id_workspaces",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "built_in", name="pk_alert_builtin_installs"),
    )


def downgrade() -> None:
    op.drop_table("alert_builtin_installs")
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("managed_by")
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("managed_by")
        batch.drop_column("compare_to")
