"""Records to rows: every column covered, strings fitted to their columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from telemetry.rows import (
    DECISION_COLUMNS,
    INTERACTION_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    BatchRecords,
    fit_to_columns,
)
from telemetry.schema import metadata
from tests.telemetry import make_bundle


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("traces", TRACE_COLUMNS),
        ("spans", SPAN_COLUMNS),
        ("decisions", DECISION_COLUMNS),
        ("ai_interactions", INTERACTION_COLUMNS),
    ],
)
def test_rows_fill_every_column_of_their_table(table: str, columns: tuple[str, ...]) -> None:
    assert sorted(columns) == sorted(c.name for c in metadata.tables[table].columns)


def test_rows_carry_utc_times_and_derived_durations() -> None:
    bundle = make_bundle(latency_ms=250.0)
    tables = {
        name: (columns, rows)
        for name, columns, rows in BatchRecords.from_bundles([bundle]).table_rows()
    }
    columns, (row,) = tables["ai_interactions"]
    values = dict(zip(columns, row, strict=True))
    assert values["started_at"] == datetime.fromtimestamp(bundle.interactions[0].started_at, UTC)
    assert values["started_at"].tzinfo is UTC
    assert values["latency_ms"] == pytest.approx(250.0)
    assert len(tables["spans"][1]) == 2


def test_fit_to_columns_cuts_only_what_is_too_long() -> None:
    bundle = make_bundle()
    assert fit_to_columns(bundle) is None
    bundle.interactions[0].finish_reason = "f" * 100
    fitted = fit_to_columns(bundle)
    assert fitted is not None
    assert fitted.interactions[0].finish_reason == "f" * 64
    assert fitted.trace is bundle.trace
    assert bundle.interactions[0].finish_reason == "f" * 100  # the original is untouched
