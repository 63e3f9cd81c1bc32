"""Helpers of the alert API tests: a webhook receiver on its own event loop (the tests are
synchronous, the receiver async), and alert instances planted in the database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from telemetry.db import create_engine
from telemetry.ids import uuid7_hex
from telemetry.schema import alert_instances
from tests.e2e.conftest import Database
from tests.telemetry.alerts.receivers import Receiver, webhook_check


@contextmanager
def webhook_receiver(secret: str) -> Iterator[Receiver]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = asyncio.run_coroutine_threadsafe(
        Receiver(webhook_check(secret)).start(), loop
    ).result(10)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def plant_instance(database: Database, rule_id: str, workspace_id: str, state: str) -> str:
    """A `state` instance of the rule, as an evaluation would have opened it; its id."""
    instance_id = uuid7_hex()
    now = datetime.now(UTC)

    async def run() -> None:
        engine = create_engine(database.url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    alert_instances.insert().values(
                        instance_id=instance_id,
                        rule_id=rule_id,
                        workspace_id=workspace_id,
                        fingerprint=uuid7_hex(),
                        labels={"model": "gpt-4o"},
                        state=state,
                        severity="critical",
                        value=0.4,
                        threshold=0.05,
                        started_at=now,
                        fired_at=now if state == "firing" else None,
                        last_evaluated_at=now,
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(run())
    return instance_id
