"""Quality: evaluators, the evaluation queue, evaluations, and why an interaction was made.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemetry.schema import JSONType, Money, Timestamp

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_interactions") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(16), nullable=False, server_default="request")
        )
    op.create_table(
        "evaluators",
        sa.Column("evaluator_id", sa.String(32), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(32),
            sa.ForeignKey("workspaces.workspace_id"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    op.create_table(
        "evaluation_queue",
        sa.Column("queue_id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("evaluator_id", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("interaction_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("claimed_until", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.UniqueConstraint("evaluator_id", "interaction_id"),
    )
    op.create_index(
        "ix_evaluation_queue_status_next_attempt_at",
        "evaluation_queue",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_evaluation_queue_workspace_id_created_at",
        "evaluation_queue",
        ["workspace_id", "created_at"],
    )
    op.create_table(
        "evaluations",
        sa.Column("evaluation_id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("evaluator_id", sa.String(32), nullable=False),
        sa.Column("evaluator_name", sa.String(200), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("interaction_id", sa.String(32), nullable=False),
        sa.Column("requested_model", sa.String(256), nullable=True),
        sa.Column("provider_model", sa.String(256), nullable=True),
        sa.Column("judge_model", sa.String(256), nullable=False),
        sa.Column("judge_trace_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scores", JSONType, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("rationale", sa.Text, nullable=True),
        sa.Column("flags", JSONType, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=True),
        sa.Column("completion_tokens", sa.BigInteger, nullable=True),
        sa.Column("cost_usd", Money(), nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    for columns in (
        ["workspace_id", "created_at"],
        ["evaluator_id", "created_at"],
        ["trace_id"],
        ["interaction_id"],
    ):
        op.create_index(f"ix_evaluations_{'_'.join(columns)}", "evaluations", columns)


def downgrade() -> None:
    op.drop_table("evaluations")
    op.drop_table("evaluation_queue")
    op.drop_table("evaluators")
    with op.batch_alter_table("ai_interactions") as batch:
        batch.drop_column("purpose")
