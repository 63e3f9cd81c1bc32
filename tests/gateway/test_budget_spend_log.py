"""A budget spend flush that fails says why in the log without quoting what it tried to write:
end-user ids are the client's data, and SQL parameters never reach the log. SQLite and
Postgres."""

from __future__ import annotations

import asyncio
import logging
import secrets
import traceback

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.budget_spend import SpendStore

END_USER = "end-user-marker-" + secrets.token_hex(8)
WORKSPACE = "workspace-marker-" + secrets.token_hex(8)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the records would print, tracebacks included."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            parts += traceback.format_exception(record.exc_info[1])
    return "\n".join(parts)


async def test_a_failed_flush_logs_no_end_user_id_nor_sql_parameters(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.text("ALTER TABLE budget_spend RENAME TO budget_spend_away"))
    store = SpendStore(engine, flush_interval=0.01)
    store.add(("end_user", END_USER, "daily", 1_700_000_000), WORKSPACE, 1234)
    caplog.set_level(logging.INFO, "steerway.budgets")
    await store.start()
    for _ in range(500):
        if caplog.records:
            break
        await asyncio.sleep(0.01)
    await store.close()
    assert len(caplog.records) == 2, caplog.records  # the failed flushes, and the one on close
    assert store.pending_micros() == 1234  # kept for the next flush
    text = logged_text(caplog)
    assert "budget spend could not be written" in text
    assert END_USER not in text
    assert WORKSPACE not in text
    assert "1234" not in text.replace("1234 micro-dollars", "")
    assert "[parameters:" not in text
