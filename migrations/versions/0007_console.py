"""The console: a summary of each trace on its own row (so lists and filters read one row), and
the tables behind sign-in: users, their roles per workspace, sessions, one-time links and the
audit log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from telemetry.schema import EMPTY_JSON_LIST, JSONType, Money, Timestamp

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMMARY_COLUMNS = (
    "deployment",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "ttft_ms",
    "cache_hit",
    "rules_matched",
    "guardrail_action",
    "guardrails_triggered",
)


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("deployment", sa.String(256), nullable=True))
        batch.add_column(sa.Column("prompt_tokens", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("completion_tokens", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("total_tokens", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("cost_usd", Money(), nullable=True))
        batch.add_column(sa.Column("ttft_ms", sa.Float, nullable=True))
        batch.add_column(
            sa.Column("cache_hit", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("rules_matched", JSONType, nullable=False, server_default=EMPTY_JSON_LIST)
        )
        batch.add_column(sa.Column("guardrail_action", sa.String(8), nullable=True))
        batch.add_column(
            sa.Column(
                "guardrails_triggered", JSONType, nullable=False, server_default=EMPTY_JSON_LIST
            )
        )

    op.create_table(
        "users",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=True),
        sa.Column("is_operator", sa.Boolean, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("password_changed_at", Timestamp, nullable=True),
        sa.Column("last_sign_in_at", Timestamp, nullable=True),
        sa.Column("disabled_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name="fk_memberships_user_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name="fk_memberships_workspace_id_workspaces",
        ),
        sa.PrimaryKeyConstraint("user_id", "workspace_id", name="pk_memberships"),
    )
    op.create_index("ix_memberships_workspace_id", "memberships", ["workspace_id"])
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name="fk_console_sessions_user_id_users"
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_console_sessions"),
    )
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "signin_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_signin_links"),
    )
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("actor_kind", sa.String(8), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(128), nullable=False),
        sa.Column("before", JSONType, nullable=True),
        sa.Column("after", JSONType, nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name="pk_audit_log"),
    )
    op.create_index(
        "ix_audit_log_workspace_id_created_at", "audit_log", ["workspace_id", "created_at"]
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("signin_links")
    op.drop_table("console_sessions")
    op.drop_table("memberships")
    op.drop_table("users")
    with op.batch_alter_table("traces") as batch:
        for column in reversed(SUMMARY_COLUMNS):
            batch.drop_column(column)
