"""Stored responses of the Responses API: kept per workspace for `previous_response_id` and
`GET`/`DELETE /v1/responses/{id}`, removed after `responses.retention_days`.

Writing is off the request path: `save` puts the response in this worker's pending map and on
a bounded queue, and returns; a background task writes the queue in batches (retrying while the
database is away). Reads look at the pending map first, so a worker always finds what it has
just answered. Another worker finds it once the batch is written, normally within milliseconds;
a read that misses an id younger than `RECENT_SECONDS` (its time is in the id) looks again for a
moment before answering 404, so a `GET` right after a `POST` finds the response on any worker
unless the database is unreachable (then a read that needs it is a 503 with `retry-after`).
Reads and deletes are database I/O on their own routes and,
for `previous_response_id`, once before the pipeline starts: the only reads the Responses API
adds to a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import database_unavailable
from telemetry.db_outage import is_unavailable
from telemetry.schema import stored_responses

logger = logging.getLogger("steerway.responses")

RECENT_SECONDS: Final = 2.0
"""How young an unknown id must be for a read to wait for another worker's write."""
_LOOK_AGAIN: Final = (0.05, 0.1, 0.2, 0.4, 0.8)
_BATCH: Final = 200
_RETRY_DELAYS: Final = (0.1, 0.5, 1.0, 2.0, 5.0)
_RETRY_AFTER: Final = "5"


class StoredResponse(msgspec.Struct, kw_only=True):
    response_id: str
    workspace_id: str
    api_key_id: str | None
    model: str
    input_items: list[Any]
    """The whole conversation the response was given."""
    output: list[Any]
    response: dict[str, Any]
    """The response object without its `output`."""
    created_at: datetime
    expires_at: datetime

    def as_response(self) -> dict[str, Any]:
        return {**self.response, "output": self.output}

    def conversation(self) -> list[Any]:
        """What a response continuing from this one starts from: its input, then its output."""
        return [*self.input_items, *self.output]


def stored(
    response: dict[str, Any],
    *,
    workspace_id: str,
    api_key_id: str | None,
    input_items: list[Any],
    retention_days: int,
) -> StoredResponse:
    created = datetime.now(UTC)
    return StoredResponse(
        response_id=response["id"],
        workspace_id=workspace_id,
        api_key_id=api_key_id,
        model=str(response.get("model") or ""),
        input_items=input_items,
        output=list(response.get("output") or []),
        response={name: value for name, value in response.items() if name != "output"},
        created_at=created,
        expires_at=created + timedelta(days=retention_days),
    )


class ResponseStore:
    """One worker's view of the stored responses (see the module's docstring)."""

    def __init__(
        self, engine: AsyncEngine, *, retention_days: int = 30, queue_size: int = 10_000
    ) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self._pending: dict[str, StoredResponse] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        """Responses answered but not kept because the queue was full."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="steerway-stored-responses")

    async def close(self) -> None:
        """Write what is pending (once), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._write(list(self._pending))

    def save(self, response: StoredResponse) -> bool:
        """Keep `response`; never blocks. False when the write queue is full (not kept)."""
        try:
            self._queue.put_nowait(response.response_id)
        except asyncio.QueueFull:
            self.dropped += 1
            logger.warning(
                "stored responses queue full: response %s not kept", response.response_id
            )
            return False
        self._pending[response.response_id] = response
        return True

    async def load(self, workspace_id: str, response_id: str) -> StoredResponse | None:
        """The workspace's response `response_id`, unless it is unknown, another workspace's
        or expired."""
        found = self._pending.get(response_id)
        if found is None:
            found = await self._select(response_id)
            if found is None and _younger_than(response_id, RECENT_SECONDS):
                for delay in _LOOK_AGAIN:
                    await asyncio.sleep(delay)
                    found = self._pending.get(response_id) or await self._select(response_id)
                    if found is not None:
                        break
        if found is None or found.workspace_id != workspace_id:
            return None
        if found.expires_at <= datetime.now(UTC):
            return None
        return found

    async def delete(self, workspace_id: str, response_id: str) -> bool:
        """Remove the workspace's response `response_id`; False when there was none."""
        found = await self.load(workspace_id, response_id)
        if found is None:
            return False
        async with self._writing:
            self._pending.pop(response_id, None)
            try:
                async with self.engine.begin() as connection:
                    await connection.execute(
                        sa.delete(stored_responses).where(
                            stored_responses.c.response_id == response_id,
                            stored_responses.c.workspace_id == workspace_id,
                        )
                    )
            except Exception as error:
                if is_unavailable(error):
                    raise database_unavailable(_RETRY_AFTER) from None
                raise
        return True

    async def _select(self, response_id: str) -> StoredResponse | None:
        table = stored_responses
        try:
            async with self.engine.connect() as connection:
                row = (
                    await connection.execute(
                        sa.select(table).where(table.c.response_id == response_id)
                    )
                ).first()
        except Exception as error:
            if is_unavailable(error):
                raise database_unavailable(_RETRY_AFTER) from None
            raise
        if row is None:
            return None
        return StoredResponse(
            response_id=row.response_id,
            workspace_id=row.workspace_id,
            api_key_id=row.api_key_id,
            model=row.model,
            input_items=row.input_items,
            output=row.output,
            response=row.response,
            created_at=_aware(row.created_at),
            expires_at=_aware(row.expires_at),
        )

    # --- the writer -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_until_done(batch)

    async def _write_until_done(self, ids: list[str]) -> None:
        """Write a batch, waiting out the database's absence; a batch the database refuses
        for what is in it (a row too big for a column, say) is written row by row instead,
        and the rows it still refuses are dropped, so one bad row never stops the writer."""
        attempt = 0
        while True:
            try:
                await self._write(ids)
                return
            except Exception as error:
                if not is_unavailable(error):
                    await self._write_one_by_one(ids)
                    return
                delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
                attempt += 1
                logger.warning(
                    "could not write %d stored responses (%s); retrying in %gs",
                    len(ids),
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _write_one_by_one(self, ids: list[str]) -> None:
        for response_id in ids:
            try:
                await self._write([response_id])
            except Exception as error:
                self._pending.pop(response_id, None)
                self.dropped += 1
                logger.warning(
                    "stored response %s could not be written (%s): not kept",
                    response_id,
                    type(error).__name__,
                )

    async def _write(self, ids: list[str]) -> None:
        async with self._writing:
            rows = [msgspec.structs.asdict(self._pending[i]) for i in ids if i in self._pending]
            if rows:
                async with self.engine.begin() as connection:
                    await connection.execute(sa.insert(stored_responses), rows)
            for response_id in ids:
                self._pending.pop(response_id, None)


def _younger_than(response_id: str, seconds: float) -> bool:
    """Whether the time in a `resp_<uuid7 hex>` id is within `seconds` of now."""
    digits = response_id.removeprefix("resp_")[:12]
    try:
        millis = int(digits, 16)
    except ValueError:
        return False
    return 0 <= time.time() * 1000 - millis <= seconds * 1000


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
