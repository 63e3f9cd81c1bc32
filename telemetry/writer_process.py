"""The recorder's database writes in a process of their own (`telemetry.writer: process`).

Turning bundles into rows and handing them to the driver is Python work: done in the serving
process it holds the GIL and the event loop for as long as a batch takes, and requests wait
behind it. Here the serving process only encodes each batch (msgpack, in C) and sends it over a
socket to a child process, which runs the usual `BatchWriter` on its own engine and answers
with the rows written or with what went wrong. Everything else stays with the recorder in the
serving process: the queue and its backpressure, retries, spill files and their replay, the
journal, the live feed, the OTLP export.

A write the child refuses for its content comes back as `WriterRowProblem`, which the
recorder's careful path treats as the database's own refusal would be treated; any other
failure is `WriterUnavailable`, a failed write the recorder retries or spills. A child that
exits, or a write that is given up on (the recorder's write timeout), ends the child: the
database rolls its open transaction back, and the next write starts a new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from telemetry.escaping import escape_bundles
from telemetry.evaluation.picking import EvaluationPicker
from telemetry.records import TraceBundle

if TYPE_CHECKING:
    from telemetry.writers import Progress

logger = logging.getLogger("steerway.telemetry")

_HEADER = struct.Struct("!I")
START_TIMEOUT = 60.0
"""Seconds a new child has to import and connect to its database before the write fails."""
STOP_TIMEOUT = 5.0


class WriterUnavailable(ConnectionError):
    """The writer process could not write the batch (the database is away, the child died)."""


class WriterRowProblem(ValueError):
    """The database refused the batch's content; the careful path writes it bundle by bundle."""


class _Request(msgspec.Struct, array_like=True):
    skip_existing: bool
    bundles: list[TraceBundle]


class _Reply(msgspec.Struct, array_like=True):
    counts: dict[str, int] | None = None
    problem: str | None = None
    """`rows` (the content was refused) or `unavailable`."""
    description: str = ""


@dataclass(frozen=True)
class WriterSpec:
    """What the child needs to build its `BatchWriter`, pickled to it when it starts.

    `make_writer` is a module-level function (pickled by name) or a `functools.partial` of
    one, called in the child with the child's own engine."""

    database_url: str
    make_writer: Callable[[Any], Any]


async def _send_frame(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(_HEADER.pack(len(payload)))
    writer.write(payload)
    await writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return await reader.readexactly(size)


class ProcessWriter:
    """The `BatchWriter` interface (`write`, `mark_for_evaluation`) over a child process."""

    def __init__(self, spec: WriterSpec, *, picker: EvaluationPicker | None = None) -> None:
        self._spec = spec
        self._picker = picker
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(_Reply)
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._starting = False
        self.started = 0
        """Children started so far (the first at `start`, one more after each that ended)."""

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the child now, so that its imports are done before the first batch."""
        async with self._lock:
            if self._process is not None:
                return
            try:
                await self._spawn()
            except (WriterUnavailable, OSError) as error:
                logger.warning("telemetry: the writer process did not start (%s)", error)
                await self._end_child(kill=True)

    async def write(
        self,
        bundles: Sequence[TraceBundle],
        *,
        skip_existing: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, int]:
        try:
            request = self._encoder.encode(_Request(skip_existing, list(bundles)))
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form: escaped here as the database write would
            # escape it (`telemetry.escaping`), the rest of the batch unchanged.
            request = self._encoder.encode(_Request(skip_existing, escape_bundles(bundles)))
        async with self._lock:
            process = self._process
            if process is not None and process.returncode is not None:
                logger.warning(
                    "telemetry: the writer process ended (exit status %s); starting another",
                    process.returncode,
                )
                await self._end_child()
            try:
                if self._process is None:
                    await self._spawn()
                if self._starting:
                    await self._wait_until_ready()
                assert self._reader is not None and self._writer is not None
                await _send_frame(self._writer, request)
                if progress is not None:
                    progress(1.0)  # this process's part is done; the child's runs beside it
                reply = self._decoder.decode(await _read_frame(self._reader))
            except WriterUnavailable:
                await self._end_child(kill=True)
                raise
            except (OSError, asyncio.IncompleteReadError) as error:
                await self._end_child(kill=True)
                raise WriterUnavailable(
                    f"the writer process ended ({type(error).__name__})"
                ) from None
            except BaseException:
                # Given up on mid-write (the recorder's timeout, a shutdown), or a child that
                # did not start: it may be stuck, and an answer it still sends would be read
                # as the next batch's.
                await self._end_child(kill=True)
                raise
        if reply.counts is not None:
            return reply.counts
        if reply.problem == "rows":
            raise WriterRowProblem(reply.description)
        raise WriterUnavailable(reply.description or "the writer process failed")

    async def mark_for_evaluation(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
        """As `BatchWriter.mark_for_evaluation`, with a picker of the serving process's own: the
        child's marks the same bundles (the pick is a hash of evaluator and trace)."""
        if self._picker is None:
            return list(bundles)
        await self._picker.refresh_if_due()
        return self._picker.mark(bundles)

    async def close(self) -> None:
        async with self._lock:
            await self._end_child()

    async def _spawn(self) -> None:
        """Start a child on this interpreter and path. It gets its end of a socket pair by file
        descriptor and the spec (the database URL among it) over the socket, never in its
        command line, which other users of the machine can read. Its readiness is awaited by
        the first write, so a worker's start does not wait for the child's imports."""
        ours, theirs = socket.socketpair()
        code = f"from telemetry.writer_process import child_main; child_main({theirs.fileno()})"
        # The child imports what this process imports, from where it imports it.
        path = os.pathsep.join(entry for entry in sys.path if entry)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                code,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env={**os.environ, "PYTHONPATH": path},
            )
        except OSError:
            ours.close()
            raise WriterUnavailable("the writer process could not be started") from None
        finally:
            theirs.close()
        self._process = process
        self._starting = True
        self.started += 1
        self._reader, self._writer = await asyncio.open_connection(sock=ours)
        await _send_frame(self._writer, pickle.dumps(self._spec))

    async def _wait_until_ready(self) -> None:
        assert self._reader is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                ready = self._decoder.decode(await _read_frame(self._reader))
        except (TimeoutError, asyncio.IncompleteReadError):
            raise WriterUnavailable("the writer process did not start") from None
        if ready.counts is None:
            raise WriterUnavailable(ready.description or "the writer process did not start")
        self._starting = False

    async def _end_child(self, *, kill: bool = False) -> None:
        """Close the socket (a healthy child then exits) and wait for the child; `kill`: stop
        it at once, its open transaction rolled back by the database."""
        process, self._process = self._process, None
        self._starting = False
        writer, self._writer = self._writer, None
        self._reader = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if process is None or process.returncode is not None:
            return
        if kill:
            process.kill()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


def child_main(fd: int) -> None:
    """The child: write each batch it is sent until the serving process goes away."""
    import uvloop

    uvloop.run(_serve(socket.socket(fileno=fd)))


async def _serve(sock: socket.socket) -> None:
    from telemetry.db import create_engine
    from telemetry.recorder import describe_error
    from telemetry.writers import is_row_problem

    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(_Request)
    reader, writer = await asyncio.open_connection(sock=sock)
    spec: WriterSpec = pickle.loads(await _read_frame(reader))
    engine = create_engine(spec.database_url)
    try:
        batch_writer = spec.make_writer(engine)
        await _send_frame(writer, encoder.encode(_Reply(counts={})))
        while True:
            try:
                frame = await _read_frame(reader)
            except (asyncio.IncompleteReadError, OSError):
                return  # the serving process closed its end or went away
            request = decoder.decode(frame)
            try:
                counts = await batch_writer.write(
                    request.bundles, skip_existing=request.skip_existing
                )
                reply = _Reply(counts=counts)
            except Exception as error:
                problem = "rows" if is_row_problem(error) else "unavailable"
                reply = _Reply(problem=problem, description=describe_error(error))
            await _send_frame(writer, encoder.encode(reply))
    finally:
        writer.close()
        await engine.dispose()
