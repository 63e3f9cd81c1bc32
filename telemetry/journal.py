"""The journal of `telemetry.durability: spill-first`: every bundle on disk before its answer ends.

`append` is the request path's part: it adds the bundle to the next group and returns. One task
writes the groups in order to a spill file of its own (`telemetry.spill`'s format and locking)
and fsyncs each in a worker thread; while one group is on its way to the disk the next one
fills, so however many requests arrive meanwhile share one fsync (group commit). `synced()` is
what an answer waits for before its last bytes go out.

The journal is a safety copy: the recorder still writes every bundle to the database from
memory. It tells the journal how far that has got (`settled`), in the recorder's own count of
accepted bundles, and a journal file whose bundles are all settled is deleted (the one taking
new groups once it is `SEGMENT_SECONDS` old). A file that also
holds a bundle the recorder could not accept (its queue was full) is not deleted but handed
over for replay, which skips what is stored already. After a crash, the next start finds the
journal files, unlocked, and replays them the same way: nothing is lost, and nothing is
counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from telemetry.records import TraceBundle
from telemetry.redaction import Redact, has_content, redact_bundles
from telemetry.spill import SpillFile

logger = logging.getLogger("steerway.telemetry.journal")

SEGMENT_BYTES = 8 * 1024 * 1024
"""A journal file is closed for new groups once it holds this much."""
SEGMENT_SECONDS = 5.0
"""The file taking new groups is deleted once its bundles are written and it is this old, not
sooner: at a low request rate every batch would otherwise cost a new file."""


@dataclass
class _Segment:
    spill: SpillFile
    opened_at: float = field(default_factory=time.monotonic)
    size: int = 0
    settles_at: int = 0
    """The recorder's count of accepted bundles once everything in this file is accepted."""
    keep: bool = False
    """It holds a bundle the recorder did not accept: replay it rather than delete it."""
    sealed: bool = False


@dataclass
class _Group:
    bundles: list[TraceBundle] = field(default_factory=list)
    settles_at: int = 0
    keep: bool = False


class Journal:
    """Bundles appended to spill files in `directory` and flushed to disk, many to one flush."""

    def __init__(
        self,
        directory: Path,
        *,
        redact: Redact | None = None,
        observer: object | None = None,
        on_handover: Callable[[], None] | None = None,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self._directory = directory
        self._redact = redact
        # Optional hooks of the recorder's observer: journal_synced(seconds, bundles) and
        # journal_failed(bundles).
        self._observer = observer
        self._on_handover = on_handover
        self._segment_bytes = segment_bytes
        self._group = _Group()
        self._appended = 0
        self._synced = 0
        self._settled = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._segments: deque[_Segment] = deque()  # oldest first; the last one takes new groups
        self._wake = asyncio.Event()
        self._closing = False
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    def append(self, bundle: TraceBundle, *, settles_at: int | None) -> None:
        """Add a bundle to the next group. `settles_at` is the recorder's count of accepted
        bundles with this one; None when the recorder did not accept it."""
        group = self._group
        group.bundles.append(bundle)
        if settles_at is None:
            group.keep = True
        else:
            group.settles_at = settles_at
        self._appended += 1
        self._wake.set()

    async def synced(self) -> None:
        """Wait until everything appended so far is on disk (or could not be written)."""
        target = self._appended
        if self._synced >= target or self._task is None or self._task.done():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        await waiter

    def settled(self, settled: int) -> None:
        """The recorder has stored (or spilled, or given up on) its first `settled` bundles."""
        self._settled = settled
        if self._segments and self._segments[0].settles_at <= settled:
            self._wake.set()

    @property
    def accepting(self) -> bool:
        return self._task is not None and not self._closing

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="steerway-telemetry-journal"
            )

    async def close(self) -> None:
        """Write what is waiting, then retire every file whose bundles are settled; the others
        (the recorder could not store them) stay for the next start to replay."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.shield(self._task)
        for segment in self._segments:
            segment.spill.release()
        self._segments.clear()

    # -- the writing task ------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._group.bundles:
                    await self._write_group()
                retiring = self._retirable()
                if retiring:
                    await self._retire_in_thread(retiring)
                if self._closing and not self._group.bundles:
                    return
        finally:
            self._release_waiters(self._appended)

    async def _write_group(self) -> None:
        group, self._group = self._group, _Group()
        target = self._appended
        started = time.perf_counter()
        try:
            segment = await asyncio.to_thread(self._write, group.bundles)
        except Exception as error:
            if not self._failing:
                logger.error(
                    "telemetry: cannot write the journal in %s (%s); answers go out without "
                    "waiting for the disk until it can",
                    self._directory,
                    type(error).__name__,
                )
                self._failing = True
            self._observe("journal_failed", len(group.bundles))
        else:
            if self._failing:
                logger.warning("telemetry: the journal is writable again")
                self._failing = False
            segment.settles_at = max(segment.settles_at, group.settles_at)
            if group.keep:  # bundles in no queue: closed at once, to be replayed soon
                segment.keep = segment.sealed = True
            self._observe("journal_synced", time.perf_counter() - started, len(group.bundles))
        self._release_waiters(target)

    def _write(self, bundles: list[TraceBundle]) -> _Segment:
        """In a worker thread: redact, encode, append and fsync; returns the file written to."""
        if self._redact is not None and has_content(bundles):
            bundles, _ = redact_bundles(bundles, self._redact)
        segment = self._segments[-1] if self._segments else None
        if segment is None or segment.sealed:
            segment = _Segment(SpillFile.create(self._directory))
            self._segments.append(segment)
        try:
            segment.spill.append(bundles)
        except OSError:
            segment.sealed = True  # the next group starts a new file
            segment.keep = True  # whatever did get in is replayed, not deleted
            raise
        segment.size = segment.spill.path.stat().st_size
        if segment.size >= self._segment_bytes:
            segment.sealed = True
        return segment

    def _retirable(self) -> list[_Segment]:
        """Files whose bundles are all settled, oldest first; the one taking new groups only
        once it is `SEGMENT_SECONDS` old (or when the journal closes)."""
        retiring: list[_Segment] = []
        segments = self._segments
        while segments and segments[0].settles_at <= self._settled:
            oldest = segments[0]
            taking_groups = len(segments) == 1 and not oldest.sealed and not self._closing
            if taking_groups and time.monotonic() - oldest.opened_at < SEGMENT_SECONDS:
                break
            retiring.append(segments.popleft())
        return retiring

    async def _retire_in_thread(self, segments: list[_Segment]) -> None:
        try:
            handed_over = await asyncio.to_thread(self._retire, segments)
        except Exception as error:  # the files stay; the next start replays them
            logger.error("telemetry: cannot retire journal files (%s)", type(error).__name__)
            return
        if handed_over and self._on_handover is not None:
            self._on_handover()

    def _retire(self, segments: list[_Segment]) -> bool:
        """In a worker thread: delete the files, or release those to replay (then True)."""
        handed_over = False
        for segment in segments:
            if segment.keep:
                segment.spill.release()
                handed_over = True
            else:
                try:
                    segment.spill.delete()
                except OSError as error:
                    logger.error(
                        "telemetry: cannot delete journal file %s (%s); the next start "
                        "replays it, skipping what is stored",
                        segment.spill.path.name,
                        type(error).__name__,
                    )
                    segment.spill.release()
        return handed_over

    def _release_waiters(self, target: int) -> None:
        self._synced = max(self._synced, target)
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._synced:
            _, waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if self._task is not None and self._task.done():
            for _, waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            waiters.clear()

    def _observe(self, event: str, *values: float) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                getattr(self._observer, event)(*values)
