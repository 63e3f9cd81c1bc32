"""Reports: definitions (sections, range, cron schedule in a time zone, recipients, formats),
the instances made from them, and each instance's files.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "report_definitions",
        sa.Column("definition_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sections", JSON, nullable=False),
        sa.Column("range", sa.String(32), nullable=False),
        sa.Column("schedule", sa.String(200), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("recipient_ids", JSON, nullable=False),
        sa.Column("formats", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("built_in", sa.String(64), nullable=True),
        sa.Column("next_run_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name="fk_report_definitions_workspace_id_workspaces",
        ),
        sa.PrimaryKeyConstraint("definition_id", name="pk_report_definitions"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_report_definitions_workspace_id_name"),
        sa.UniqueConstraint(
            "workspace_id", "built_in", name="uq_report_definitions_workspace_id_built_in"
        ),
    )
    op.create_index(
        "ix_report_definitions_enabled_next_run_at",
        "report_definitions",
        ["enabled", "next_run_at"],
    )
    op.create_table(
        "report_instances",
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("definition_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("range_start", TIMESTAMP, nullable=False),
        sa.Column("range_end", TIMESTAMP, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("made_at", TIMESTAMP, nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["report_definitions.definition_id"],
            name="fk_report_instances_definition_id_report_definitions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", name="pk_report_instances"),
    )
    op.create_index(
        "ix_report_instances_definition_id_instance_id",
        "report_instances",
        ["definition_id", "instance_id"],
    )
    op.create_index(
        "ix_report_instances_workspace_id_instance_id",
        "report_instances",
        ["workspace_id", "instance_id"],
    )
    op.create_table(
        "report_files",
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["report_instances.instance_id"],
            name="fk_report_files_instance_id_report_instances",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "format", name="pk_report_files"),
    )


def downgrade() -> None:
    op.drop_table("report_files")
    op.drop_table("report_instances")
    op.drop_table("report_definitions")
