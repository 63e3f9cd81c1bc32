"""Steering rules edited through the admin API, and every version of each.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=True),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("rule_id", name="pk_rules"),
    )
    op.create_index("ix_rules_workspace_id_priority", "rules", ["workspace_id", "priority"])

    op.create_table(
        "rule_versions",
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("diff", JSON, nullable=False),
        sa.Column("author", sa.String(256), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("version_id", name="pk_rule_versions"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.rule_id"], name="fk_rule_versions_rule_id_rules"
        ),
    )
    op.create_index(
        "ix_rule_versions_rule_id_version", "rule_versions", ["rule_id", "version"], unique=True
    )


def downgrade() -> None:
    op.drop_table("rule_versions")
    op.drop_table("rules")
