"""The recorder: one non-blocking call per request, a background task that writes batches.

`Recorder.record` appends the request's `TraceBundle` to a bounded in-memory queue and returns;
it never blocks, never raises, and tells the caller with `False` when the queue is full. The
writer task takes up to `batch_size` bundles (or what arrived within `flush_interval`) and writes
them in one transaction.

When the database is unavailable a batch is retried with exponential backoff; if it still fails
(or the queue fills up meanwhile, or a write got no answer within `write_timeout`) the batch
goes to an append-only spill file in `spill_dir`
and the writer carries on, probing the database now and then. Once a write succeeds again the
spill files (also those a previous process left behind) are replayed and deleted. Without a
`spill_dir` a failing batch is retried in memory; the queue then fills and new bundles are
counted as dropped. `stop()` writes or spills everything accepted.

With `durability="spill-first"` each bundle is also appended to a journal file in `spill_dir`
(`telemetry.journal`) and `durable()` waits until it is fsynced: a request that waits for it
before its answer ends survives a crash of the process, however far behind the writer is. The
writer still writes from memory; journal files are deleted once what they hold is written.

With `also_to` (the OTLP exporter), each batch the writer takes is also handed to it, from the
writer task: the request path does not change, and the consumer keeps its own bounded queue so
that it never holds the writer up.

With a `redact` function (`telemetry.store_content: redacted`) each batch's prompts and
responses are rewritten in a worker thread before they are written or spilled, so the scan never
holds up the event loop. Bundles read back from spill files are redacted again, since a file may
come from a process that stored content in full or was cancelled before redacting: `redact`
should leave text it already redacted as it is.

With `sampling` (`telemetry.trace_sampling`) the writer keeps only the figures of the traces the
policy does not keep whole; the observer's optional `sampled_out(count)` hears how many, once
they are written; with `redact` too, the content of those is left out before redaction rather
than scanned for nothing. A replay of a spill file or the journal decides the same.

With `picker` (`telemetry.evaluation.picking`) the writer queues the interactions evaluators
pick, in the batch's transaction, and marks their bundles so sampling keeps them whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.backpressure import Backpressure, BatchProgress
from telemetry.batch_waits import SettledWaiters, wait_to_fill
from telemetry.evaluation.picking import EvaluationPicker
from telemetry.journal import Journal
from telemetry.records import TraceBundle
from telemetry.redaction import Redact, has_content, redact_bundles
from telemetry.rows import fit_to_columns
from telemetry.spill import SpillFile, spill_files
from telemetry.trace_sampling import TraceSampling
from telemetry.untracking import release_bundle
from telemetry.writers import SAMPLED_OUT, BatchWriter, Progress, is_row_problem, root_cause

logger = logging.getLogger("steerway.telemetry.recorder")

_SPILL_WHEN_QUEUE_FULLER_THAN = 0.8
# A password ends at `@` and holds no `/` (RFC 3986 escapes it); stopping at `/` keeps the search
# linear in a message that repeats `x://` without an `@`.
_URL_PASSWORD = re.compile(r"(\w://[^:/@\s]*:)[^@\s/]*@")


ROOM_WAIT_LIMIT = 5.0
ROOM_AGAIN_AT = 1.0
"""Held requests go on once a take brings the queue down to this share of the high-water mark
(it was 0.75: every hold then lasted as long as the writer took to drain a quarter of the mark)."""
WRITE_TIMEOUT = 10.0
"""A batch write with no answer by then has failed, and the database counts as unavailable at
once: one that stopped answering without dropping its connections would otherwise hold the
writer for the driver's command timeout (60 s) while the queue grows and requests wait."""


class LiveFeed(Protocol):
    """Where the recorder shows each request as it arrives (`telemetry.live.LiveHub`)."""

    watched: bool
    """Read on every request: while False, `publish` is not called."""

    def publish(self, bundle: TraceBundle) -> None: ...


class BatchConsumer(Protocol):
    """Another reader of the bundles the writer takes (`telemetry.otlp_export.OtlpExporter`):
    called from the writer task with each batch, it must return at once and never raise."""

    def offer(self, bundles: Sequence[TraceBundle]) -> None: ...


class RecorderObserver(Protocol):
    """Hook for metrics about the recorder (the gateway feeds Prometheus from it)."""

    def enqueued(self, depth: int) -> None: ...
    def dropped(self, count: int) -> None: ...
    def written(self, table: str, rows: int) -> None: ...
    def batch_written(self, seconds: float, bundles: int) -> None: ...
    def spilled(self, bundles: int) -> None: ...
    def quarantined(self, lines: int) -> None: ...
    def write_failed(self, error: BaseException) -> None: ...


class BundleWriter(Protocol):
    """What the recorder writes batches with: `telemetry.writers.BatchWriter` or a stand-in."""

    async def write(
        self,
        bundles: Sequence[TraceBundle],
        *,
        skip_existing: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, int]:
        """`progress` is told, as the batch goes, the share of this process's work on it
        that is done (`telemetry.backpressure.BatchProgress`)."""
        ...

    async def mark_for_evaluation(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]: ...


@dataclass(frozen=True, slots=True)
class RecorderStats:
    enqueued: int
    dropped: int
    written_bundles: int
    spilled_bundles: int
    replayed_bundles: int
    queue_depth: int
    last_error: str | None  # the exception's type name only: messages can carry data


def describe_error(error: BaseException) -> str:
    """A log-safe description: the driver's error type and, unless the error is about the rows
    themselves (whose messages can quote values such as prompts), its message."""
    cause = root_cause(error)
    name = type(cause).__name__
    if is_row_problem(error) or is_row_problem(cause):
        return name
    lines = str(cause).strip().splitlines()
    if not lines:
        return name
    message = _URL_PASSWORD.sub(r"\1***@", lines[0])[:200]
    return f"{name}: {message}"


class Recorder:
    """Batches trace bundles into the database off the request path."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        queue_size: int = 100_000,
        batch_size: int = 256,
        flush_interval: float = 0.2,
        spill_dir: Path | None = None,
        observer: RecorderObserver | None = None,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        retry_attempts: int = 4,
        stop_timeout: float = 30.0,
        redact: Redact | None = None,
        durability: Literal["memory", "spill-first"] = "memory",
        write_timeout: float = WRITE_TIMEOUT,
        live: LiveFeed | None = None,
        sampling: TraceSampling | None = None,
        also_to: BatchConsumer | None = None,
        picker: EvaluationPicker | None = None,
        writer: BundleWriter | None = None,
    ) -> None:
        """`writer`: where batches go (default: a `BatchWriter` on `engine` with `sampling` and
        `picker`; `telemetry.writer_process.ProcessWriter` writes from a child process)."""
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        if durability == "spill-first" and spill_dir is None:
            raise ValueError("spill-first durability needs a spill_dir")
        self._writer: BundleWriter = writer or BatchWriter(engine, sampling=sampling, picker=picker)
        self._sampling = sampling
        self._queue: deque[TraceBundle] = deque()
        self._capacity = queue_size
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._spill_dir = Path(spill_dir) if spill_dir is not None else None
        self._observer = observer
        self._report_depth: Callable[[int], None] | None = getattr(observer, "queue_depth", None)
        self._report_sampled_out: Callable[[int], None] | None = getattr(
            observer, "sampled_out", None
        )
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._retry_attempts = max(1, retry_attempts)
        self._stop_timeout = stop_timeout
        self._write_timeout = write_timeout
        self._redact = redact
        self._live = live
        self._also_to = also_to

        # Above the high-water mark the writer is far behind: `room()` then holds new requests
        # back and lets them go as the writer writes (`telemetry.backpressure`), so memory
        # stays bounded and the request rate settles at what the database takes, instead of
        # the queue growing until it drops records.
        self._high_water = min(queue_size, max(batch_size * 8, queue_size // 20))
        self._backpressure = Backpressure(
            self._high_water, self._queue, open_again_at=ROOM_AGAIN_AT
        )
        self._wake = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._idle = True
        self._stopping = False
        self._stop_deadline = 0.0
        self._task: asyncio.Task[None] | None = None

        self._enqueued = 0
        self._dropped = 0
        self._written = 0
        self._spilled = 0
        self._replayed = 0
        self._done = 0  # accepted bundles that are written, spilled or given up on
        self._last_error: str | None = None
        self._failing = False  # the last write failed: its retries are not logged again
        self._spill_failing = False  # the last spill failed: logged once until one succeeds
        self._unanswered = False  # the last write failed for want of an answer in time
        self._flush_waiters = SettledWaiters()
        self._in_flight: list[TraceBundle] = []

        self._outage = False
        self._outage_delay = retry_initial
        self._next_attempt_at = 0.0
        self._spilling: SpillFile | None = None
        self._replaying: SpillFile | None = None
        self._replay_pending = self._spill_dir is not None
        self._journal = (
            Journal(
                self._spill_dir, redact=redact, observer=observer, on_handover=self._replay_later
            )
            if durability == "spill-first" and self._spill_dir is not None
            else None
        )
        self._left_alone: set[Path] = set()  # spill files this process could not replay
        self._step_errors = 0
        self._last_step_error = ""

    # -- the request path ------------------------------------------------------------------

    def record(self, bundle: TraceBundle) -> bool:
        """Queue one request's records. Never blocks or raises; False when the queue is full
        (with spill-first durability the journal keeps such a bundle for replay: True).
        While someone watches the live feed, the bundle is shown there too, queued or not."""
        live = self._live
        if live is not None and live.watched:
            live.publish(bundle)
        queue = self._queue
        journal = self._journal
        if len(queue) >= self._capacity:
            if journal is not None and journal.accepting:
                journal.append(bundle, settles_at=None)
                return True
            self._dropped += 1
            if self._observer is not None:
                with contextlib.suppress(Exception):
                    self._observer.dropped(1)
            return False
        release_bundle(bundle)
        queue.append(bundle)
        self._enqueued += 1
        if journal is not None:
            journal.append(bundle, settles_at=self._enqueued)
        self._backpressure.filled()
        if self._idle or len(queue) >= self._batch_size:
            self._wake.set()
        if self._observer is not None:
            try:  # noqa: SIM105 - suppress() builds a context manager: 0.3 us a request
                self._observer.enqueued(len(queue))
            except Exception:
                pass
        return True

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def congested(self) -> bool:
        """True while the queue and the batch being written are past the high-water mark."""
        return self._backpressure.congested

    async def room(self) -> None:
        """While congested, wait for a turn: held requests go in arrival order at the pace the
        writer writes (at most `ROOM_WAIT_LIMIT` seconds, so a stuck writer cannot stall
        requests for good); at once otherwise."""
        await self._backpressure.room(ROOM_WAIT_LIMIT)

    async def durable(self) -> None:
        """Wait until every bundle recorded so far is on disk (spill-first durability); at once
        without a journal."""
        if self._journal is not None:
            await self._journal.synced()

    async def start(self) -> None:
        """Start the writer task; spill files found in `spill_dir` are replayed in the background."""
        if self._task is not None:
            return
        if self._journal is not None:
            self._journal.start()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="steerway-telemetry-recorder"
        )

    async def flush(self) -> None:
        """Wait until everything queued so far is written (or spilled, or given up on)."""
        target = self._enqueued
        if self._done >= target:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("the recorder is not running: call start() first")
        await self._flush_waiters.wait(target, self._wake)

    async def stop(self) -> None:
        """Write everything accepted (spilling what the database will not take), then stop.

        Without a spill folder and with the database down, bundles still unwritten after
        `stop_timeout` seconds are counted as dropped.
        """
        if self._task is None:
            if not self._queue:
                self._capacity = 0
                return
            await self.start()
        assert self._task is not None
        self._stopping = True
        self._stop_deadline = time.monotonic() + self._stop_timeout
        self._stop_requested.set()
        self._wake.set()
        await asyncio.shield(self._task)
        if self._journal is not None:
            self._journal.settled(self._done)
            await self._journal.close()

    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            enqueued=self._enqueued,
            dropped=self._dropped,
            written_bundles=self._written,
            spilled_bundles=self._spilled,
            replayed_bundles=self._replayed,
            queue_depth=len(self._queue),
            last_error=self._last_error,
        )

    # -- the writer task -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while await self._step_safely():
                pass
        finally:
            self._capacity = 0
            self._backpressure.open()
            self._spill_leftovers()
            self._release_spill_files()
            self._settle(everything=True)

    def _spill_leftovers(self) -> None:
        """If the task is cancelled rather than stopped, keep what it held on disk if it can."""
        leftovers = self._in_flight + list(self._queue)
        self._in_flight = []
        self._queue.clear()
        if not leftovers:
            return
        if self._spill_dir is None or not self._spill(leftovers):
            logger.error("telemetry: %d bundles lost: the writer was cancelled", len(leftovers))
            self._count_dropped(len(leftovers))

    async def _step_safely(self) -> bool:
        """One step; an unexpected error is logged once (not again while it repeats) and the
        next step waits longer each time, so an error that keeps coming back cannot spin."""
        try:
            working = await self._step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            description = describe_error(error)
            if description != self._last_step_error:
                logger.error("telemetry writer error: %s", description)
                self._last_step_error = description
            self._last_error = type(root_cause(error)).__name__
            delay = min(self._retry_initial * 2**self._step_errors, self._retry_max)
            self._step_errors += 1
            await self._pause(delay)
            return True
        self._step_errors = 0
        self._last_step_error = ""
        return working

    async def _step(self) -> bool:
        """One round of work; False once stopping and nothing is left."""
        worked = False
        if self._queue:
            await self._collect()
            await self._deliver(self._take())
            worked = True
        if (
            self._replay_pending
            and not self._stopping
            and self._may_attempt()
            and len(self._queue) <= self._queue_size // 2
        ):
            await self._replay_chunk()
            worked = True
        if worked:
            return True
        if self._stopping:
            # Decided with no await since the queue was seen empty: nothing can slip in unseen.
            self._capacity = 0
            return False
        await self._wait_for_work()
        return True

    async def _wait_for_work(self) -> None:
        timeout = None
        if self._replay_pending:
            timeout = max(0.0, self._next_attempt_at - time.monotonic())
        self._idle = True
        try:
            if not self._queue and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            self._idle = False
            self._wake.clear()

    async def _collect(self) -> None:
        """Give the batch up to `flush_interval` to fill, unless someone is waiting for it."""
        await wait_to_fill(self._wake, self._batch_ready, self._flush_interval)

    def _batch_ready(self) -> bool:
        return len(self._queue) >= self._batch_size or self._flush_waiters.waiting or self._stopping

    def _take(self) -> list[TraceBundle]:
        queue = self._queue
        size = self._batch_size
        if len(queue) > self._high_water // 2:
            size *= 4  # behind: fewer, larger transactions write more per second
        batch = [queue.popleft() for _ in range(min(size, len(queue)))]
        self._backpressure.taken(len(batch))
        if self._report_depth is not None:
            with contextlib.suppress(Exception):
                self._report_depth(len(queue))
        if self._also_to is not None:
            with contextlib.suppress(Exception):
                self._also_to.offer(batch)
        return batch

    # -- delivering a live batch -----------------------------------------------------------

    async def _deliver(self, batch: list[TraceBundle]) -> None:
        """Write the batch, retrying; spill it when the database stays down. Always settles it."""
        self._in_flight = batch
        progress = BatchProgress(self._backpressure, len(batch))
        try:
            batch = self._in_flight = await self._redacted(batch)
            await self._deliver_until_settled(batch, progress)
        except Exception as error:
            logger.error(
                "telemetry: %d bundles lost to an unexpected error: %s",
                len(batch),
                describe_error(error),
            )
            self._count_dropped(len(batch))
        finally:
            progress.finish()
        self._in_flight = []  # left set on cancellation, for _spill_leftovers
        self._finish(len(batch))

    async def _deliver_until_settled(
        self, batch: list[TraceBundle], progress: BatchProgress
    ) -> None:
        attempt = 0
        while True:
            if self._outage and self._spill_dir is not None:
                if self._may_attempt():
                    if await self._try_write(batch, replay=False, progress=progress):
                        break
                    self._postpone_next_attempt()
                if self._spill(batch):
                    break
            elif await self._try_write(batch, replay=False, progress=progress):
                break
            attempt += 1
            delay = min(self._retry_initial * 2 ** (attempt - 1), self._retry_max)
            if self._spill_dir is not None and self._should_spill(attempt):
                self._enter_outage(delay)
                if self._spill(batch):
                    break
            if self._stopping and time.monotonic() >= self._stop_deadline:
                logger.error(
                    "telemetry: %d bundles could not be written before shutdown; dropped",
                    len(batch),
                )
                self._count_dropped(len(batch))
                break
            await self._pause(delay)

    def _should_spill(self, attempt: int) -> bool:
        return (
            attempt >= self._retry_attempts
            or self._unanswered
            or self._stopping
            or len(self._queue) >= self._queue_size * _SPILL_WHEN_QUEUE_FULLER_THAN
        )

    async def _try_write(
        self, batch: Sequence[TraceBundle], *, replay: bool, progress: BatchProgress | None = None
    ) -> bool:
        """Write the batch; False (error noted) when the database is unavailable. `progress`:
        the live batch's share of the backlog, let go as it is written."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._write_timeout):
                counts, rejected = await self._write(batch, progress)
        except Exception as error:
            self._unanswered = isinstance(error, TimeoutError)
            self._note_failure(error)
            return False
        finally:
            if progress is not None:
                progress.finish()  # a retry after a pause must not hold requests meanwhile
        elapsed = time.perf_counter() - started
        self._failing = False
        self._unanswered = False
        stored = len(batch) - rejected
        if replay:
            self._replayed += stored
        else:
            self._written += stored
        if self._outage:
            logger.warning("telemetry: the database is writable again; replaying spill files")
            self._outage = False
            self._spill_failing = False  # a spill folder still broken is logged next outage
            self._outage_delay = self._retry_initial
            self._seal_spill_file()
        sampled_out = counts.pop(SAMPLED_OUT, 0)
        if self._observer is not None:
            with contextlib.suppress(Exception):
                for table, rows in counts.items():
                    if rows:
                        self._observer.written(table, rows)
                self._observer.batch_written(elapsed, stored)
                if sampled_out and self._report_sampled_out is not None:
                    self._report_sampled_out(sampled_out)
        return True

    async def _write(
        self, batch: Sequence[TraceBundle], progress: Progress | None
    ) -> tuple[dict[str, int], int]:
        """Rows written per table and the number of bundles rejected as unwritable."""
        try:
            return await self._writer.write(batch, progress=progress), 0
        except Exception as error:
            if not is_row_problem(error):
                raise
        return await self._write_carefully(batch)

    async def _write_carefully(self, batch: Sequence[TraceBundle]) -> tuple[dict[str, int], int]:
        """Skip rows already stored; if the batch still fails, write each half the same way,
        down to single bundles, and reject only the bundles the database refuses even with
        their strings cut to fit (one bad bundle among n costs about 2·log2(n) transactions)."""
        try:
            return await self._writer.write(batch, skip_existing=True), 0
        except Exception as error:
            if not is_row_problem(error):
                raise
            if len(batch) == 1:
                fitted = fit_to_columns(batch[0])
                if fitted is not None:
                    return await self._write_carefully([fitted])
                logger.error(
                    "telemetry bundle for trace %s rejected by the database (%s); dropped",
                    getattr(batch[0].trace, "trace_id", "?"),
                    describe_error(error),
                )
                self._count_dropped(1)
                return {}, 1
        middle = len(batch) // 2
        totals, rejected = await self._write_carefully(batch[:middle])
        counts, more_rejected = await self._write_carefully(batch[middle:])
        for table, rows in counts.items():
            totals[table] = totals.get(table, 0) + rows
        return totals, rejected + more_rejected

    async def _redacted(self, batch: list[TraceBundle]) -> list[TraceBundle]:
        """The batch with its content redacted, off the event loop; unchanged without `redact`."""
        redact = self._redact
        if redact is None:
            return batch
        if self._sampling is not None:
            batch = self._sampling.without_unkept_content(
                await self._writer.mark_for_evaluation(batch)
            )
        if not has_content(batch):
            return batch
        redacted, failures = await asyncio.to_thread(redact_bundles, batch, redact)
        if failures:
            logger.error(
                "telemetry: content redaction failed %d times (%s); stored as null",
                len(failures),
                ", ".join(sorted(set(failures))),
            )
        return redacted

    # -- outages, spilling and replay ------------------------------------------------------

    def _may_attempt(self) -> bool:
        return not self._outage or time.monotonic() >= self._next_attempt_at

    def _enter_outage(self, delay: float) -> None:
        if not self._outage:
            logger.warning(
                "telemetry: the database is unavailable (%s); spilling batches to %s",
                self._last_error,
                self._spill_dir,
            )
        self._outage = True
        self._outage_delay = delay
        self._next_attempt_at = time.monotonic() + delay

    def _postpone_next_attempt(self) -> None:
        self._outage_delay = min(self._outage_delay * 2, self._retry_max)
        self._next_attempt_at = time.monotonic() + self._outage_delay

    def _spill(self, batch: list[TraceBundle]) -> bool:
        """Append the batch to this process's spill file; False if the disk refuses it too."""
        assert self._spill_dir is not None
        try:
            if self._spilling is None:
                self._spilling = SpillFile.create(self._spill_dir)
            written = self._spilling.append(batch)
        except OSError as error:
            if not self._spill_failing:
                logger.error(
                    "telemetry: cannot write the spill file in %s (%s); keeping batches in "
                    "memory until it or the database takes them",
                    self._spill_dir,
                    describe_error(error),
                )
            self._spill_failing = True
            return False
        if self._spill_failing:
            logger.warning("telemetry: the spill folder %s takes batches again", self._spill_dir)
            self._spill_failing = False
        self._spilled += written
        self._count_dropped(len(batch) - written)
        self._replay_pending = True
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.spilled(written)
        return True

    def _seal_spill_file(self) -> None:
        """Stop appending to this outage's spill file, making it available for replay."""
        if self._spilling is not None:
            if self._spilling is not self._replaying:
                self._spilling.release()
            self._spilling = None
        self._replay_pending = self._spill_dir is not None

    async def _replay_chunk(self) -> None:
        """Replay the next chunk of spill files; during an outage this is also the probe that
        finds the database back, reading this process's own active spill file if need be."""
        spill = self._replaying
        if spill is None:
            spill = self._claim_next_spill_file() or self._spilling
            if spill is None:
                self._replay_pending = False
                return
            self._replaying = spill
        set_aside = spill.quarantined
        try:
            bundles, next_offset = spill.read(self._batch_size)
        except OSError as error:
            self._leave_alone(spill, "cannot read", error)
            return
        finally:
            self._count_quarantined(spill.quarantined - set_aside)
        bundles = await self._redacted(bundles)
        if not bundles:
            if next_offset > spill.offset:
                spill.offset = next_offset  # only damaged lines in this chunk: read on
                return
            if spill is self._spilling:  # nothing spilled yet that could serve as a probe
                self._replay_pending = False
            else:
                self._replayed_file(spill)
            self._replaying = None
            return
        if await self._try_write(bundles, replay=True):
            spill.offset = next_offset
        elif self._outage:
            self._postpone_next_attempt()
        else:
            self._enter_outage(self._retry_initial)

    def _replayed_file(self, spill: SpillFile) -> None:
        name = spill.path.name
        if spill.quarantined:
            logger.warning(
                "telemetry: spill file %s replayed; %d undecodable line%s set aside in %s",
                name,
                spill.quarantined,
                "" if spill.quarantined == 1 else "s",
                spill.quarantine_path.name,
            )
        else:
            logger.info("telemetry: spill file %s replayed", name)
        try:
            spill.delete()
        except OSError as error:
            # Everything in it is stored: the next start replays it again, skipping what is.
            self._leave_alone(spill, "cannot delete replayed", error)

    def _claim_next_spill_file(self) -> SpillFile | None:
        assert self._spill_dir is not None
        for path in spill_files(self._spill_dir):
            if path in self._left_alone:
                continue
            try:
                claimed = SpillFile.claim(path)
            except OSError as error:
                self._left_alone.add(path)
                logger.error(
                    "telemetry: cannot open spill file %s (%s); left in place until the next start",
                    path.name,
                    describe_error(error),
                )
                continue
            if claimed is not None:
                return claimed
        return None

    def _leave_alone(self, spill: SpillFile, what: str, error: OSError) -> None:
        """Stop replaying a file for the rest of this process's life, saying so once."""
        logger.error(
            "telemetry: %s spill file %s (%s); left in place until the next start",
            what,
            spill.path.name,
            describe_error(error),
        )
        self._left_alone.add(spill.path)
        if spill is not self._spilling:
            spill.release()
        self._replaying = None

    def _release_spill_files(self) -> None:
        for spill in (self._spilling, self._replaying):
            if spill is not None:
                spill.release()
        self._spilling = None
        self._replaying = None

    # -- bookkeeping -----------------------------------------------------------------------

    def _note_failure(self, error: BaseException) -> None:
        self._last_error = type(root_cause(error)).__name__
        if not self._outage and not self._failing:
            logger.warning("telemetry batch write failed: %s", describe_error(error))
        self._failing = True
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.write_failed(error)

    def _count_quarantined(self, lines: int) -> None:
        if lines > 0 and self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.quarantined(lines)

    def _count_dropped(self, count: int) -> None:
        if count <= 0:
            return
        self._dropped += count
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.dropped(count)

    def _finish(self, bundles: int) -> None:
        self._done += bundles
        self._settle()

    def _settle(self, *, everything: bool = False) -> None:
        """Tell flush waiters and the journal how many bundles are written, spilled or given
        up on."""
        self._flush_waiters.settled(self._done, everything=everything)
        if self._journal is not None:
            self._journal.settled(self._done)

    def _replay_later(self) -> None:
        """A journal file holds bundles the queue could not take: replay it like a spill file."""
        self._replay_pending = True
        self._wake.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep; a stop() arriving meanwhile cuts the first such sleep short."""
        if self._stop_requested.is_set():
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), seconds)
