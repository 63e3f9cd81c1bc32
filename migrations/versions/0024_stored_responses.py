"""Stored responses of the Responses API (`previous_response_id`, `GET /v1/responses/{id}`).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemetry.schema import JSONType, Timestamp

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("response_id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("input_items", JSONType, nullable=False),
        sa.Column("output", JSONType, nullable=False),
        sa.Column("response", JSONType, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
    )
    op.create_index(
        "ix_stored_responses_workspace_id_created_at",
        "stored_responses",
        ["workspace_id", "created_at"],
    )
    op.create_index("ix_stored_responses_expires_at", "stored_responses", ["expires_at"])


def downgrade() -> None:
    op.drop_table("stored_responses")
