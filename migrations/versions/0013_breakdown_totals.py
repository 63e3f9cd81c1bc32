"""Tags and end users summed over every name, per key and bucket (kinds `tag_total` and
`end_user_total`, name and detail empty): a top-N's `(other)` group per hour reads those rows
instead of every end user's. Written from the rows already stored; a total a newer writer
already began (one writing while this runs) is replaced by the sum of its names.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOTAL_KINDS = {"tag": "tag_total", "end_user": "end_user_total"}


def upgrade() -> None:
    for kind, total_kind in TOTAL_KINDS.items():
        op.execute(
            "INSERT INTO usage_breakdowns (grain, bucket_start, workspace_id, api_key_id, kind,"
            " name, detail, events, errors, cost_usd, tokens)"
            f" SELECT grain, bucket_start, workspace_id, api_key_id, '{total_kind}', '', '',"
            " SUM(events), SUM(errors), SUM(cost_usd), SUM(tokens)"
            f" FROM usage_breakdowns WHERE kind = '{kind}'"
            " GROUP BY grain, bucket_start, workspace_id, api_key_id"
            " ON CONFLICT (grain, bucket_start, workspace_id, api_key_id, kind, name, detail)"
            " DO UPDATE SET events = excluded.events, errors = excluded.errors,"
            " cost_usd = excluded.cost_usd, tokens = excluded.tokens"
        )


def downgrade() -> None:
    kinds = ", ".join(f"'{kind}'" for kind in TOTAL_KINDS.values())
    op.execute(f"DELETE FROM usage_breakdowns WHERE kind IN ({kinds})")
