"""The growth benchmark writes every bundle it times, with the span ids it says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks import writer as writer_bench
from benchmarks.writer_growth import grow, main, ordered_span_ids
from telemetry.ids import span_id_hex


def span_ids_in_insert_order(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT span_id FROM spans ORDER BY rowid")]


@pytest.mark.parametrize("ids", ["random", "ordered"])
async def test_every_step_is_written_whole(tmp_path: Path, ids: str) -> None:
    path = tmp_path / "growth.db"
    steps = await grow(path, bundles=500, step=200, batch_size=64, cache_kib=4096, ids=ids)
    assert [step.bundles for step in steps] == [200, 400, 500]
    assert all(step.per_second > 0 and step.file_mb > 0 for step in steps)
    with sqlite3.connect(path) as connection:
        (traces,) = connection.execute("SELECT count(*) FROM traces").fetchone()
    assert traces == 500
    spans = span_ids_in_insert_order(path)
    assert len(spans) == 2 * 500
    if ids == "ordered":
        assert spans == sorted(spans)
    else:
        assert spans != sorted(spans)
    assert writer_bench.span_id_hex is span_id_hex  # put back


def test_ordered_ids_are_span_ids_that_grow() -> None:
    next_id = ordered_span_ids()
    values = [next_id() for _ in range(1000)]
    assert all(len(value) == 16 and int(value, 16) >= 0 for value in values)
    assert values == sorted(values) and len(set(values)) == len(values)


def test_the_command_prints_each_step_and_the_slowdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bundles", "300", "--step", "150", "--batch-size", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["cache default KiB, random span ids"] * 3
    assert "      150 bundles" in lines[0] and "      300 bundles" in lines[1]
    assert lines[2].endswith("x the first")


def test_unknown_span_ids_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--span-ids", "sequential"])
    assert "--span-ids takes random and ordered" in capsys.readouterr().err
