"""`steerway worker` runs the retention job: a round at start removes what is expired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.config.file import GatewayConfig, TelemetryConfig
from server.worker import run_worker
from telemetry.db import create_engine
from telemetry.retention.policy import RetentionConfig
from telemetry.writers import BatchWriter
from tests.telemetry import count, fetch
from tests.telemetry.requests_at import request_at


async def test_the_worker_removes_expired_traces_and_keeps_the_rest(
    migrated_database_url: str,
) -> None:
    engine = create_engine(migrated_database_url)
    try:
        now = datetime.now(UTC)
        old, recent = request_at(now - timedelta(days=40)), request_at(now - timedelta(days=1))
        await BatchWriter(engine).write([old, recent])
        config = GatewayConfig(
            telemetry=TelemetryConfig(retention=RetentionConfig(traces=30, interval_s=3600))
        )
        stopping = asyncio.Event()
        worker = asyncio.create_task(run_worker(migrated_database_url, config, stopping))
        left = {"traces": 2}

        async def poll() -> None:
            while left["traces"] != 1 and not worker.done():
                left["traces"] = await count(engine, "traces")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), timeout=60)
        stopping.set()
        await worker
        assert left["traces"] == 1
        rows = await fetch(engine, "SELECT trace_id FROM traces")
        assert [row[0] for row in rows] == [recent.trace.trace_id]
        spans = await fetch(engine, "SELECT DISTINCT trace_id FROM spans")
        assert [row[0] for row in spans] == [recent.trace.trace_id]
    finally:
        await engine.dispose()
