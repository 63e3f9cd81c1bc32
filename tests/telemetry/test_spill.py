"""Spill files: exact round trips, exclusive claims, damaged tails."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from telemetry.spill import SPILL_SUFFIX, SpillFile, spill_files
from tests.telemetry import make_bundle


def test_bundles_round_trip_exactly(tmp_path: Path) -> None:
    bundles = [
        make_bundle(cost=Decimal("0.00000123456789012345678901")),
        make_bundle(cost=None, started_at=1_700_000_000.123456789),
    ]
    spill = SpillFile.create(tmp_path)
    assert spill.append(bundles) == 2
    assert spill.path.name.endswith(SPILL_SUFFIX)
    read, offset = spill.read(10)
    assert read == bundles
    assert read[0].interactions[0].cost_usd == Decimal("0.00000123456789012345678901")
    assert read[1].interactions[0].cost_usd is None
    assert offset == spill.path.stat().st_size
    spill.release()


def test_reads_continue_from_the_offset(tmp_path: Path) -> None:
    bundles = [make_bundle() for _ in range(5)]
    spill = SpillFile.create(tmp_path)
    spill.append(bundles[:3])
    spill.append(bundles[3:])
    first, spill.offset = spill.read(2)
    second, spill.offset = spill.read(2)
    third, spill.offset = spill.read(2)
    assert first + second + third == bundles
    assert spill.read(2)[0] == []
    spill.delete()
    assert spill_files(tmp_path) == []


def test_a_file_is_claimed_by_one_holder_at_a_time(tmp_path: Path) -> None:
    writer = SpillFile.create(tmp_path)
    writer.append([make_bundle()])
    assert SpillFile.claim(writer.path) is None  # still being written
    writer.release()

    claimed = SpillFile.claim(writer.path)
    assert claimed is not None
    assert SpillFile.claim(writer.path) is None  # already being replayed
    claimed.delete()
    assert SpillFile.claim(writer.path) is None  # gone


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    good = [make_bundle(), make_bundle()]
    spill = SpillFile.create(tmp_path)
    spill.append(good[:1])
    spill.release()
    with spill.path.open("ab") as file:
        file.write(b'{"not": "a bundle"}\n\n')
    other = SpillFile.claim(spill.path)
    assert other is not None
    other.append(good[1:])
    other.release()
    with spill.path.open("ab") as file:
        file.write(b'{"trace": {"trace_id": "cut sho')  # a write cut short by a crash

    claimed = SpillFile.claim(spill.path)
    assert claimed is not None
    read, _ = claimed.read(10)
    assert read == good
    claimed.release()


def test_spill_files_lists_oldest_first(tmp_path: Path) -> None:
    names = []
    for _ in range(3):
        spill = SpillFile.create(tmp_path)
        names.append(spill.path)
        spill.release()
    (tmp_path / "unrelated.txt").write_text("x")
    assert spill_files(tmp_path) == names
    assert spill_files(tmp_path / "missing") == []
