"""A gateway killed with SIGKILL: with `telemetry.durability: spill-first`, every request it
answered is recorded once it is started again, even when its writer was far behind."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import openai

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

SERVED_BEFORE_THE_KILL = 40
CLIENTS = 6


@contextlib.asynccontextmanager
async def writer_held_back(database: Database) -> AsyncIterator[None]:
    """Another session's lock on `traces`: the gateway's writer cannot commit while it lasts."""
    if database.url.startswith("sqlite"):
        blocker = sqlite3.connect(database.url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            yield
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        return
    connection = await asyncpg.connect(database.url, timeout=5)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("LOCK TABLE traces IN ACCESS EXCLUSIVE MODE")
        yield
        await transaction.rollback()
    finally:
        await connection.close()


async def serve_until_killed(gateway: GatewayProcess, database: Database) -> list[str]:
    """Clients ask for completions, half of them streamed, until SERVED_BEFORE_THE_KILL are
    answered; then the gateway is killed with requests in flight. The trace ids of every
    complete answer (for a stream: read to its end)."""
    served: list[str] = []
    killed = asyncio.Event()
    client = openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=gateway.master_key, max_retries=0
    )

    async def ask(number: int) -> None:
        sent = 0
        while not killed.is_set():
            sent += 1
            stream = number % 2 == 1
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="mock-gpt",
                    messages=[{"role": "user", "content": f"crash test {number}-{sent}"}],
                    stream=stream,
                )
                answer = raw.parse()
                if isinstance(answer, openai.AsyncStream):
                    chunks = [chunk async for chunk in answer]
                    assert chunks[-1].choices[0].finish_reason == "stop"
                else:
                    assert answer.choices[0].message.content
            except (openai.APIConnectionError, httpx.TransportError):
                return  # cut off by the kill (a stream midway raises httpx's error): not served
            served.append(raw.headers["x-steerway-trace-id"])
            if len(served) >= SERVED_BEFORE_THE_KILL and not killed.is_set():
                gateway.process.kill()
                killed.set()

    async with writer_held_back(database):
        await asyncio.gather(*(ask(number) for number in range(CLIENTS)))
        await asyncio.to_thread(gateway.process.wait, 10)
    await client.close()
    return served


def test_every_answer_served_before_a_kill_is_recorded_after_the_restart(
    backend_database: Database, mock_provider: MockProcess, tmp_path: Path
) -> None:
    config = mock_config(
        mock_provider,
        telemetry={"durability": "spill-first", "spill_dir": str(tmp_path / "spill")},
    )
    master_key = "sk-master-" + secrets.token_hex(8)
    first = GatewayProcess(backend_database, config, tmp_path, master_key=master_key)
    try:
        served = asyncio.run(serve_until_killed(first, backend_database))
    finally:
        first.stop()
    assert len(served) >= SERVED_BEFORE_THE_KILL
    assert list((tmp_path / "spill").glob("*.spill.jsonl"))  # the journal the crash left

    second = GatewayProcess(backend_database, config, tmp_path, master_key=master_key)
    try:
        query = "SELECT trace_id FROM traces WHERE http_status = 200"
        backend_database.wait_rows(query, count=len(served), timeout=30)
        stored = {row["trace_id"] for row in backend_database.rows(query)}
        assert set(served) <= stored
        interactions = backend_database.rows(
            "SELECT trace_id, count(*) AS n FROM ai_interactions GROUP BY trace_id"
        )
        assert all(row["n"] == 1 for row in interactions if row["trace_id"] in set(served))
    finally:
        output = second.stop()
    assert "Traceback" not in output
