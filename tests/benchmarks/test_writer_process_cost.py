"""The writer-process benchmark's round, small, against a real SQLite file and a real child."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from benchmarks.writer_process_cost import one_round
from migrations import upgrade


async def test_a_round_writes_every_bundle_and_measures_both_sides(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'writer.db'}"
    upgrade(url)
    ours, child, wall = await one_round(url, batches=2, batch_size=200)
    # /proc counts CPU in 10 ms ticks: 400 chat-sized bundles take the child several.
    assert ours > 0 and child > 0 and wall > 0
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT count(*) FROM traces")).scalar_one()
    engine.dispose()
    assert stored == 1 + 2 * 200
