"""Spans keyed by (`trace_id`, `span_id`) on SQLite, as on Postgres since 0019; the spans'
`trace_id` index dropped on both, the key's index serving its reads.

A span id is random. Keyed by it alone, each new span went into the key's index at a random
place, so as the file grew every batch touched more of the index and the recorder's writer
slowed: to 0.62x its first rate after 600,000 chat requests (`python -m benchmarks
writer_growth`), and a soak of 1,000,000 requests served 0.72x at the end of what it served at
the start. A trace id is time-ordered (UUIDv7): keyed by it first, a request's spans go in
together at the index's end. A span id needs to be unique only within its trace, which is
OpenTelemetry's own rule and all that spans ingested from other tracers promise.

Every read of spans by trace (`WHERE trace_id = ...`) is served by the key's index, whose first
column is the trace id, so the index on `trace_id` alone is one more index each span is written
to for nothing: dropped.

SQLite cannot change a table's primary key in place: the table is rebuilt with its rows, under
the database's write lock, so on a large file run it while the gateway is stopped
(docs/operations.md). On Postgres only the index is dropped (from every partition with it).
Downgrade puts both back; on SQLite it fails, changing nothing, if two traces hold the same
span id.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRACE_INDEX = "ix_spans_trace_id"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_index(TRACE_INDEX, table_name="spans")
        return
    with op.batch_alter_table("spans", recreate="always") as batch:
        batch.drop_index(TRACE_INDEX)
        batch.drop_constraint("pk_spans", type_="primary")
        batch.create_primary_key("pk_spans", ["trace_id", "span_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.create_index(TRACE_INDEX, "spans", ["trace_id"])
        return
    with op.batch_alter_table("spans", recreate="always") as batch:
        batch.drop_constraint("pk_spans", type_="primary")
        batch.create_primary_key("pk_spans", ["span_id"])
        batch.create_index(TRACE_INDEX, ["trace_id"])
