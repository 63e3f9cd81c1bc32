"""Spill files: exact round trips, exclusive claims, damaged lines set aside."""

from __future__ import annotations

import resource
import signal
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from telemetry.records import TraceBundle
from telemetry.spill import QUARANTINE_SUFFIX, SPILL_SUFFIX, SpillFile, spill_files
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


def _undecodable_lines(bundle: TraceBundle) -> list[bytes]:
    """Lines that fail to decode in each of the ways a damaged or foreign file can."""
    encoded = msgspec.json.encode(bundle)
    assert b'"user-7"' in encoded
    return [
        encoded.replace(b'"user-7"', b'"user-\xff\xfe"') + b"\n",  # invalid UTF-8 in a string
        b"\xc3\x28 not json either\n",  # invalid UTF-8 outside a string
        b'{"trace": {"trace_id": \n',  # malformed JSON
        b'{"not": "a bundle"}\n',  # JSON of the wrong shape
        b"[1, 2, 3]\n",
        encoded.replace(b'"trace_id"', b'"trace_id":' * 2000, 1) + b"\n",  # nested absurdly
    ]


def test_undecodable_lines_are_set_aside_in_a_quarantine_file(tmp_path: Path) -> None:
    good = [make_bundle() for _ in range(3)]
    bad = _undecodable_lines(make_bundle())
    spill = SpillFile.create(tmp_path)
    spill.append(good[:1])
    spill.release()
    with spill.path.open("ab") as file:
        file.write(b"".join(bad[:3]))
    other = SpillFile.claim(spill.path)
    assert other is not None
    other.append(good[1:2])
    other.release()
    with spill.path.open("ab") as file:
        file.write(b"".join(bad[3:]))
    other = SpillFile.claim(spill.path)
    assert other is not None
    other.append(good[2:])
    other.release()
    cut_short = b'{"trace": {"trace_id": "cut sho'  # the tail of a write cut short by a crash
    with spill.path.open("ab") as file:
        file.write(cut_short)

    claimed = SpillFile.claim(spill.path)
    assert claimed is not None
    read: list[TraceBundle] = []
    while True:
        bundles, claimed.offset = claimed.read(1)
        if not bundles and claimed.offset == spill.path.stat().st_size:
            break
        read.extend(bundles)
    assert read == good
    assert claimed.quarantined == len(bad) + 1
    assert claimed.quarantine_path == spill.path.with_name(
        spill.path.name.removesuffix(SPILL_SUFFIX) + QUARANTINE_SUFFIX
    )
    assert claimed.quarantine_path.read_bytes() == b"".join(bad) + cut_short + b"\n"
    claimed.delete()
    assert spill_files(tmp_path) == []  # the quarantine file is never replayed
    assert claimed.quarantine_path.exists()  # but kept for an operator


def test_reading_a_file_again_rebuilds_its_quarantine_file_rather_than_doubling_it(
    tmp_path: Path,
) -> None:
    """A process that dies mid-replay leaves the file to the next one, which reads it again."""
    spill = SpillFile.create(tmp_path)
    spill.append([make_bundle()])
    spill.release()
    bad = _undecodable_lines(make_bundle())[0]
    with spill.path.open("ab") as file:
        file.write(bad)
    for _ in range(2):
        claimed = SpillFile.claim(spill.path)
        assert claimed is not None
        assert len(claimed.read(10)[0]) == 1
        assert claimed.quarantined == 1
        claimed.release()
        assert claimed.quarantine_path.read_bytes() == bad


def test_a_failed_append_leaves_no_partial_line_behind(tmp_path: Path) -> None:
    spill = SpillFile.create(tmp_path)
    first = make_bundle()
    spill.append([first])
    size = spill.path.stat().st_size
    huge = make_bundle()
    huge.trace.metadata = {"blob": "x" * 4096}
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 1024, resource.RLIM_INFINITY))
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with pytest.raises(OSError):
            spill.append([huge])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, previous)
    assert spill.path.stat().st_size == size
    second = make_bundle()
    spill.append([second])
    assert spill.read(10)[0] == [first, second]
    assert not spill.quarantine_path.exists()
    spill.release()


def test_a_chunk_read_again_is_not_set_aside_twice(tmp_path: Path) -> None:
    """The recorder reads a chunk again when its write failed; the damaged line in it was
    already set aside."""
    good = make_bundle()
    bad = _undecodable_lines(make_bundle())[0]
    spill = SpillFile.create(tmp_path)
    spill.release()
    with spill.path.open("ab") as file:
        file.write(bad + msgspec.json.encode(good) + b"\n")
    claimed = SpillFile.claim(spill.path)
    assert claimed is not None
    assert claimed.read(10)[0] == [good]
    assert claimed.read(10)[0] == [good]  # offset not moved on: the write failed
    assert claimed.quarantined == 1
    assert claimed.quarantine_path.read_bytes() == bad
    claimed.release()
