"""A batch write reports its progress chunk by chunk, on SQLite (inserts) and Postgres (COPY):
what lets the recorder's held requests go while the batch is still being written."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.writers import CHUNK_ROWS, BatchWriter
from tests.telemetry import count, make_bundle


async def test_the_share_written_rises_chunk_by_chunk_to_the_whole(engine: AsyncEngine) -> None:
    bundles = [make_bundle() for _ in range(3 * CHUNK_ROWS + 5)]
    shares: list[float] = []
    counts = await BatchWriter(engine).write(bundles, progress=shares.append)
    rows = sum(n for table, n in counts.items() if not table.startswith("usage_"))
    assert counts["traces"] == len(bundles)
    assert shares == sorted(shares) and len(set(shares)) == len(shares)
    assert shares[-1] == 1.0
    # One report for each chunk of each table: at least four for the traces alone.
    assert len(shares) >= -(-rows // CHUNK_ROWS) >= 4
    assert shares[0] <= CHUNK_ROWS / rows
    assert await count(engine, "traces") == len(bundles)


async def test_a_careful_write_reports_nothing(engine: AsyncEngine) -> None:
    shares: list[float] = []
    await BatchWriter(engine).write(
        [make_bundle(), make_bundle()], skip_existing=True, progress=shares.append
    )
    assert shares == []
