"""Append-only spill files: where trace bundles wait while the database is unavailable.

One file is msgspec JSON lines of `TraceBundle` (Decimal costs as strings, so they round-trip
exactly). A process holds an exclusive `flock` on every file it is writing or replaying, so
several workers can share one spill folder: a file is replayed by exactly one of them, and never
while its writer is still appending. A file is created under a temporary name, locked, then
renamed, so no other process can claim it before its writer holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from telemetry.records import TraceBundle

SPILL_SUFFIX = ".spill.jsonl"
_TEMPORARY_SUFFIX = ".spill.new"

logger = logging.getLogger("steerway.telemetry.spill")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TraceBundle)


class SpillFile:
    """A spill file this process holds the lock on."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._reader: BinaryIO | None = None
        self.offset = 0  # bytes of the file already replayed

    @classmethod
    def create(cls, directory: Path) -> SpillFile:
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        temporary = directory / f"{stem}{_TEMPORARY_SUFFIX}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            final = directory / f"{stem}{SPILL_SUFFIX}"
            os.rename(temporary, final)
        except BaseException:
            os.close(fd)
            raise
        return cls(final, fd)

    @classmethod
    def claim(cls, path: Path) -> SpillFile | None:
        """Lock a spill file for replay; None when another writer or replayer holds it or it is gone."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same_file = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same_file = False
        if not same_file:  # replayed and deleted by another process while we waited
            os.close(fd)
            return None
        return cls(path, fd)

    def append(self, bundles: Sequence[TraceBundle]) -> int:
        """Write the bundles durably (one fsync); returns how many could be encoded and written."""
        lines = []
        for bundle in bundles:
            try:
                lines.append(_encoder.encode(bundle))
            except (TypeError, ValueError, OverflowError, RecursionError) as error:
                logger.error(
                    "telemetry bundle for trace %s cannot be spilled (%s); dropped",
                    getattr(bundle.trace, "trace_id", "?"),
                    type(error).__name__,
                )
        if not lines:
            return 0
        data = memoryview(b"\n".join(lines) + b"\n")
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        os.fsync(self._fd)
        return len(lines)

    def read(self, limit: int) -> tuple[list[TraceBundle], int]:
        """Up to `limit` bundles from `offset` on, and the offset just past them.

        A line that does not decode (the tail of a write cut short by a crash) is skipped.
        """
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115 - kept open across calls
        self._reader.seek(self.offset)
        bundles: list[TraceBundle] = []
        while len(bundles) < limit:
            line = self._reader.readline()
            if not line:
                break
            if not line.endswith(b"\n"):
                logger.warning("spill file %s ends with a partial line; skipped", self.path.name)
            elif line.strip():
                try:
                    bundles.append(_decoder.decode(line))
                except msgspec.DecodeError as error:
                    logger.warning(
                        "unreadable line in spill file %s skipped (%s)", self.path.name, error
                    )
        return bundles, self._reader.tell()

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.release()

    def release(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._fd >= 0:
            os.close(self._fd)  # also drops the lock
            self._fd = -1


def spill_files(directory: Path) -> list[Path]:
    """The folder's spill files, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SPILL_SUFFIX}"))
