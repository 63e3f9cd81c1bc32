"""A batch write reports its progress as it goes, on SQLite (per statement) and Postgres (per
chunk of a COPY): the batch counts against the recorder's mark until it is written."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.writers import STATEMENT_ROWS, BatchWriter
from tests.telemetry import count, make_bundle


async def test_the_share_written_rises_as_the_rows_go_to_the_whole(engine: AsyncEngine) -> None:
    bundles = [make_bundle() for _ in range(STATEMENT_ROWS + 5)]
    shares: list[float] = []
    counts = await BatchWriter(engine).write(bundles, progress=shares.append)
    rows = sum(n for table, n in counts.items() if not table.startswith("usage_"))
    assert counts["traces"] == len(bundles)
    assert shares == sorted(shares) and len(set(shares)) == len(shares)
    assert shares[-1] == 1.0
    # At least one report per statement (SQLite) or chunk (Postgres): two for the traces alone.
    assert len(shares) >= -(-rows // STATEMENT_ROWS) > 2
    assert shares[0] <= STATEMENT_ROWS / rows
    assert await count(engine, "traces") == len(bundles)


async def test_a_careful_write_reports_nothing(engine: AsyncEngine) -> None:
    shares: list[float] = []
    await BatchWriter(engine).write(
        [make_bundle(), make_bundle()], skip_existing=True, progress=shares.append
    )
    assert shares == []
