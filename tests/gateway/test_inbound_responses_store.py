"""Stored responses on SQLite and Postgres: read your own writes, workspace scope, deletion,
expiry at read time and by the retention job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import GatewayError
from gateway.inbound.responses_answer import response_id
from gateway.inbound.responses_store import ResponseStore, StoredResponse, stored
from telemetry.db import create_engine
from telemetry.retention.job import run_retention
from telemetry.retention.policy import RetentionConfig
from tests.ports import free_port
from tests.telemetry import count


def _response(workspace: str = "ws-a", days: int = 30) -> StoredResponse:
    body = {
        "id": response_id(),
        "object": "response",
        "model": "m",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hi"}],
            }
        ],
    }
    return stored(
        body,
        workspace_id=workspace,
        api_key_id="k1",
        input_items=[{"type": "message", "role": "user", "content": "hello"}],
        retention_days=days,
    )


async def _written(store: ResponseStore, engine: AsyncEngine, rows: int) -> None:
    """Until the background writer has written `rows` rows (at most ten seconds)."""
    for _ in range(500):
        if await count(engine, "stored_responses") >= rows:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {rows} stored responses were written")


async def test_saved_responses_are_read_back_in_their_workspace_only(
    migrated_database_url: str,
) -> None:
    engine = create_engine(migrated_database_url)
    store = ResponseStore(engine)
    other_worker = ResponseStore(engine)
    await store.start()
    try:
        first = _response()
        assert store.save(first)
        # Before the writer has run: this worker finds it in its pending map.
        found = await store.load("ws-a", first.response_id)
        assert found is not None and found.as_response()["output"] == first.output
        await _written(store, engine, 1)
        again = await other_worker.load("ws-a", first.response_id)
        assert again is not None
        assert again.conversation() == [*first.input_items, *first.output]
        assert again.as_response()["status"] == "completed"
        assert await other_worker.load("ws-b", first.response_id) is None
        assert not await other_worker.delete("ws-b", first.response_id)
        assert await other_worker.delete("ws-a", first.response_id)
        assert await store.load("ws-a", first.response_id) is None
        assert await count(engine, "stored_responses") == 0
    finally:
        await store.close()
        await engine.dispose()


async def test_a_response_deleted_before_it_was_written_is_never_written(
    migrated_database_url: str,
) -> None:
    engine = create_engine(migrated_database_url)
    store = ResponseStore(engine)
    try:
        response = _response()
        store.save(response)
        assert await store.delete("ws-a", response.response_id)
        await store.start()
        kept = _response()
        store.save(kept)
        await _written(store, engine, 1)
        assert await store.load("ws-a", response.response_id) is None
        assert await store.load("ws-a", kept.response_id) is not None
    finally:
        await store.close()
        await engine.dispose()


async def test_expired_responses_are_not_read_and_the_retention_job_removes_them(
    migrated_database_url: str,
) -> None:
    engine = create_engine(migrated_database_url)
    store = ResponseStore(engine)
    await store.start()
    try:
        old, fresh = _response(days=1), _response(days=30)
        store.save(old)
        store.save(fresh)
        await _written(store, engine, 2)
        later = datetime.now(UTC) + timedelta(days=2)
        done = await run_retention(engine, RetentionConfig(), now=later)
        assert done is not None and done.removed["stored_responses"] == 1
        assert await store.load("ws-a", old.response_id) is None
        assert await store.load("ws-a", fresh.response_id) is not None
    finally:
        await store.close()
        await engine.dispose()


async def test_a_full_queue_refuses_rather_than_blocks(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    store = ResponseStore(engine, queue_size=1)
    try:
        assert store.save(_response())
        refused = _response()
        assert not store.save(refused)
        assert store.dropped == 1
        assert await store.load("ws-a", refused.response_id) is None
        await store.close()
        assert await count(engine, "stored_responses") == 1
    finally:
        await store.close()
        await engine.dispose()


async def test_an_unreachable_database_is_a_503_except_for_this_workers_own_responses() -> None:
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    store = ResponseStore(engine)
    try:
        mine = _response()
        store.save(mine)
        assert await store.load("ws-a", mine.response_id) is mine
        with pytest.raises(GatewayError) as away:
            await store.load("ws-a", "resp_" + "0" * 32)
        assert away.value.status == 503 and away.value.headers["retry-after"]
    finally:
        await engine.dispose()


async def test_a_row_the_database_refuses_is_dropped_and_the_rest_written(
    migrated_database_url: str,
) -> None:
    engine = create_engine(migrated_database_url)
    store = ResponseStore(engine)
    await store.start()
    try:
        first = _response()
        store.save(first)
        await _written(store, engine, 1)
        again = _response()
        again.response_id = first.response_id  # a second row with the same key
        store.save(again)
        after = _response()
        store.save(after)
        await _written(store, engine, 2)
        assert await store.load("ws-a", after.response_id) is not None
        assert store.dropped == 1
    finally:
        await store.close()
        await engine.dispose()
