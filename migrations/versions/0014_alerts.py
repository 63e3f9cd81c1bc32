"""Alerts: rules, notification channels, alert instances with their events and deliveries, and
silences.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types as of this revision.
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OPEN_STATES = "state IN ('pending', 'firing')"


def _workspace_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspaces.workspace_id"], name=f"fk_{table}_workspace_id_workspaces"
    )


def _instance_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["instance_id"],
        ["alert_instances.instance_id"],
        name=f"fk_{table}_instance_id_alert_instances",
    )


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("rule_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("anomaly_kind", sa.String(16), nullable=True),
        sa.Column("filters", JSON, nullable=False),
        sa.Column("group_by", JSON, nullable=False),
        sa.Column("window_s", sa.Integer, nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("warning_threshold", sa.Float, nullable=True),
        sa.Column("critical_threshold", sa.Float, nullable=True),
        sa.Column("for_s", sa.Integer, nullable=False),
        sa.Column("min_requests", sa.Integer, nullable=False),
        sa.Column("no_data", sa.String(16), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("channel_ids", JSON, nullable=False),
        sa.Column("renotify_s", sa.Integer, nullable=False),
        sa.Column("notify_on_resolve", sa.Boolean, nullable=False),
        sa.Column("muted", sa.Boolean, nullable=False),
        sa.Column("built_in", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _workspace_key("alert_rules"),
        sa.PrimaryKeyConstraint("rule_id", name="pk_alert_rules"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_alert_rules_workspace_id_name"),
        sa.UniqueConstraint(
            "workspace_id", "built_in", name="uq_alert_rules_workspace_id_built_in"
        ),
    )
    op.create_table(
        "notification_channels",
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("secrets", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _workspace_key("notification_channels"),
        sa.PrimaryKeyConstraint("channel_id", name="pk_notification_channels"),
        sa.UniqueConstraint(
            "workspace_id", "name", name="uq_notification_channels_workspace_id_name"
        ),
    )
    op.create_table(
        "alert_instances",
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("fired_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("last_notified_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_by", sa.String(320), nullable=True),
        sa.Column("last_evaluated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.rule_id"], name="fk_alert_instances_rule_id_alert_rules"
        ),
        sa.PrimaryKeyConstraint("instance_id", name="pk_alert_instances"),
    )
    op.create_index(
        "uq_alert_instances_open_rule_id_fingerprint",
        "alert_instances",
        ["rule_id", "fingerprint"],
        unique=True,
        postgresql_where=sa.text(OPEN_STATES),
        sqlite_where=sa.text(OPEN_STATES),
    )
    op.create_index(
        "ix_alert_instances_workspace_id_state_instance_id",
        "alert_instances",
        ["workspace_id", "state", "instance_id"],
    )
    op.create_index(
        "ix_alert_instances_rule_id_fingerprint_instance_id",
        "alert_instances",
        ["rule_id", "fingerprint", "instance_id"],
    )
    op.create_table(
        "alert_events",
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        _instance_key("alert_events"),
        sa.PrimaryKeyConstraint("event_id", name="pk_alert_events"),
    )
    op.create_index(
        "ix_alert_events_instance_id_event_id", "alert_events", ["instance_id", "event_id"]
    )
    op.create_index("ix_alert_events_workspace_id_at", "alert_events", ["workspace_id", "at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("smtp_reply", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        _instance_key("alert_deliveries"),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_alert_deliveries"),
    )
    op.create_index(
        "ix_alert_deliveries_instance_id_delivery_id",
        "alert_deliveries",
        ["instance_id", "delivery_id"],
    )
    op.create_index(
        "ix_alert_deliveries_workspace_id_at", "alert_deliveries", ["workspace_id", "at"]
    )
    op.create_table(
        "silences",
        sa.Column("silence_id", sa.String(32), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("matchers", JSON, nullable=False),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _workspace_key("silences"),
        sa.PrimaryKeyConstraint("silence_id", name="pk_silences"),
    )
    op.create_index("ix_silences_workspace_id_ends_at", "silences", ["workspace_id", "ends_at"])


def downgrade() -> None:
    op.drop_table("silences")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_events")
    op.drop_table("alert_instances")
    op.drop_table("notification_channels")
    op.drop_table("alert_rules")
