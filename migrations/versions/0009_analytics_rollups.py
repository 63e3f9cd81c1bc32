"""Analytics roll-ups: minute, hour and day grains with more dimensions and finer histograms;
breakdowns by tag, end user, rule and guardrail; each trace's source.

`usage_rollups` is rebuilt: its key gains the grain, source, served model, deployment, status,
error type and cache hit; latency buckets get finer bounds (every old bound is one of them) and
time to first token, retries, fallbacks, cost saved and gateway overhead are added. The minute
rows stored so far are carried over (the dimensions they lack left empty, each old latency
bucket counted in the new bucket with the same upper bound) and summed into hour and day rows.

A downgrade drops the new roll-ups and leaves an empty table of the old shape.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's types and constants as of this revision.
TIMESTAMP = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 10)
BOUNDS_MS = (
    1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500,
    600, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7500, 10000, 12500, 15000,
    20000, 25000, 30000, 40000, 50000, 60000, 90000, 120000, 180000, 300000,
)  # fmt: skip
OLD_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
KEY = (
    "grain",
    "bucket_start",
    "workspace_id",
    "api_key_id",
    "source",
    "provider",
    "model",
    "served_model",
    "deployment",
    "status",
    "error_type",
    "cache_hit",
)
COUNTS = (
    "requests",
    "errors",
    "cache_hits",
    "attempts",
    "retries",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "unpriced",
)


def _buckets(prefix: str) -> list[str]:
    return [*(f"{prefix}_le_{bound}" for bound in BOUNDS_MS), f"{prefix}_le_inf"]


LATENCY = _buckets("latency")
TTFT = _buckets("ttft")
SUMS = (
    *COUNTS,
    "cost_usd",
    "cost_saved_usd",
    "latency_ms_sum",
    *LATENCY,
    "ttft_count",
    "ttft_ms_sum",
    *TTFT,
    "overhead_count",
    "overhead_ms_sum",
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False)


def _create_rollups() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("grain", sa.String(8), nullable=False),
        sa.Column("bucket_start", TIMESTAMP, nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("served_model", sa.String(256), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(64), nullable=False),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        *(_count(name) for name in COUNTS),
        sa.Column("cost_usd", MONEY, nullable=False),
        sa.Column("cost_saved_usd", MONEY, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
        *(_count(name) for name in LATENCY),
        _count("ttft_count"),
        sa.Column("ttft_ms_sum", sa.Float, nullable=False),
        *(_count(name) for name in TTFT),
        _count("overhead_count"),
        sa.Column("overhead_ms_sum", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_usage_rollups"),
    )
    op.create_index(
        "ix_usage_rollups_workspace_id_grain_bucket_start",
        "usage_rollups",
        ["workspace_id", "grain", "bucket_start"],
    )


def _create_breakdowns() -> None:
    op.create_table(
        "usage_breakdowns",
        sa.Column("grain", sa.String(8), nullable=False),
        sa.Column("bucket_start", TIMESTAMP, nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        _count("events"),
        _count("errors"),
        sa.Column("cost_usd", MONEY, nullable=False),
        _count("tokens"),
        sa.PrimaryKeyConstraint(
            "grain",
            "bucket_start",
            "workspace_id",
            "api_key_id",
            "kind",
            "name",
            "detail",
            name="pk_usage_breakdowns",
        ),
    )
    op.create_index(
        "ix_usage_breakdowns_workspace_id_grain_kind_bucket_start",
        "usage_breakdowns",
        ["workspace_id", "grain", "kind", "bucket_start"],
    )


def _carried_over() -> dict[str, str]:
    """Each new column of a minute row, as an expression over an old row."""
    old_bucket = {bound: f"latency_bucket_{n}" for n, bound in enumerate(OLD_BOUNDS_MS)}
    values = {name: "0" for name in SUMS}
    values |= {
        "grain": "'minute'",
        "bucket_start": "bucket_start",
        "workspace_id": "workspace_id",
        "api_key_id": "api_key_id",
        "source": "'proxy'",
        "provider": "provider",
        "model": "model",
        "served_model": "''",
        "deployment": "''",
        "status": "''",
        "error_type": "''",
        "cache_hit": "false" if _postgres() else "0",
        "requests": "requests",
        "errors": "errors",
        "cache_hits": "cache_hits",
        "attempts": "requests - cache_hits",
        "prompt_tokens": "prompt_tokens",
        "completion_tokens": "completion_tokens",
        "cached_tokens": "cached_tokens",
        "cost_usd": "cost_usd",
        "latency_ms_sum": "latency_ms_sum",
        "latency_le_inf": f"latency_bucket_{len(OLD_BOUNDS_MS)}",
    }
    values |= {f"latency_le_{bound}": column for bound, column in old_bucket.items()}
    return values


def _truncated(grain: str) -> str:
    if _postgres():
        return f"date_trunc('{grain}', bucket_start)"
    # SQLite stores the time as text, 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC.
    if grain == "hour":
        return "substr(bucket_start, 1, 13) || ':00:00.000000'"
    return "substr(bucket_start, 1, 10) || ' 00:00:00.000000'"


def _carry_over() -> None:
    values = _carried_over()
    names = ", ".join(values)
    op.execute(
        f"INSERT INTO usage_rollups ({names}) "
        f"SELECT {', '.join(values.values())} FROM usage_rollups_0008"
    )
    grouped = ", ".join(name for name in KEY if name not in ("grain", "bucket_start"))
    sums = ", ".join(f"SUM({name})" for name in SUMS)
    for grain in ("hour", "day"):
        start = _truncated(grain)
        op.execute(
            f"INSERT INTO usage_rollups ({', '.join(KEY)}, {', '.join(SUMS)}) "
            f"SELECT '{grain}', {start}, {grouped}, {sums} FROM usage_rollups "
            f"WHERE grain = 'minute' GROUP BY {start}, {grouped}"
        )


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="proxy"))
    op.drop_index("ix_usage_rollups_workspace_id_bucket_start", table_name="usage_rollups")
    op.drop_index("ix_usage_rollups_model_bucket_start", table_name="usage_rollups")
    op.rename_table("usage_rollups", "usage_rollups_0008")
    if _postgres():
        op.execute("ALTER TABLE usage_rollups_0008 RENAME CONSTRAINT pk_usage_rollups TO pk_0008")
    _create_rollups()
    _create_breakdowns()
    _carry_over()
    op.drop_table("usage_rollups_0008")


def downgrade() -> None:
    op.drop_index(
        "ix_usage_breakdowns_workspace_id_grain_kind_bucket_start", table_name="usage_breakdowns"
    )
    op.drop_table("usage_breakdowns")
    op.drop_index("ix_usage_rollups_workspace_id_grain_bucket_start", table_name="usage_rollups")
    op.drop_table("usage_rollups")
    op.create_table(
        "usage_rollups",
        sa.Column("bucket_start", TIMESTAMP, nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        *(
            _count(name)
            for name in (
                "requests",
                "errors",
                "cache_hits",
                "prompt_tokens",
                "completion_tokens",
                "cached_tokens",
            )
        ),
        sa.Column("cost_usd", MONEY, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
        *(_count(f"latency_bucket_{n}") for n in range(len(OLD_BOUNDS_MS) + 1)),
        sa.PrimaryKeyConstraint(
            "bucket_start", "workspace_id", "api_key_id", "provider", "model",
            name="pk_usage_rollups",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_usage_rollups_workspace_id_bucket_start",
        "usage_rollups",
        ["workspace_id", "bucket_start"],
    )
    op.create_index(
        "ix_usage_rollups_model_bucket_start", "usage_rollups", ["model", "bucket_start"]
    )
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("source")
