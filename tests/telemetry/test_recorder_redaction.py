"""The recorder with a `redact` function: only redacted content reaches the database or disk."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.recorder import Recorder
from telemetry.records import TraceBundle
from telemetry.schema import ai_interactions
from telemetry.spill import SpillFile, spill_files
from tests.telemetry import count, fetch, fetch_table, make_bundle


def no_digits(text: str) -> str:
    return re.sub(r"\d", "#", text)


def with_content(prompt: object, response: object) -> TraceBundle:
    bundle = make_bundle()
    bundle.interactions[0].prompt = prompt
    bundle.interactions[0].response = response
    return bundle


async def test_the_database_holds_only_redacted_text(engine: AsyncEngine) -> None:
    threads: set[int] = set()

    def redact(text: str) -> str:
        threads.add(threading.get_ident())
        return no_digits(text)

    recorder = Recorder(engine, flush_interval=0.01, redact=redact)
    await recorder.start()
    chat = with_content(
        [
            {"role": "system", "content": "agent 007"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "my card is 4111 1111"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/1.png"}},
                ],
            },
        ],
        [{"role": "assistant", "content": "noted 4111"}],
    )
    embedding = with_content(["room 101", [1, 2, 3]], None)
    empty = with_content(None, None)
    for bundle in (chat, embedding, empty):
        recorder.record(bundle)
    await recorder.stop()

    stored = {row.trace_id: row for row in await fetch_table(engine, ai_interactions)}
    assert stored[chat.trace.trace_id].prompt == [
        {"role": "system", "content": "agent ###"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "my card is #### ####"},
                {"type": "image_url", "image_url": {"url": "https://x.test/1.png"}},
            ],
        },
    ]
    assert stored[chat.trace.trace_id].response == [{"role": "assistant", "content": "noted ####"}]
    assert stored[embedding.trace.trace_id].prompt == ["room ###", [1, 2, 3]]
    assert stored[embedding.trace.trace_id].response is None
    assert stored[empty.trace.trace_id].prompt is None
    assert threading.get_ident() not in threads  # redacted off the event loop's thread
    stored_text = await fetch(
        engine,
        "SELECT count(*) FROM ai_interactions"
        " WHERE CAST(prompt AS TEXT) LIKE '%4111%' OR CAST(response AS TEXT) LIKE '%4111%'",
    )
    assert stored_text[0][0] == 0
    assert chat.interactions[0].response == [{"role": "assistant", "content": "noted 4111"}]


async def test_a_failing_redact_stores_null_and_logs_only_the_error_type(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    marker = uuid.uuid4().hex  # as long as an id: nothing else logged can contain it

    def picky(text: str) -> str:
        if marker in text:
            raise ValueError(f"cannot scan {text!r}")
        return no_digits(text)

    recorder = Recorder(engine, flush_interval=0.01, redact=picky)
    await recorder.start()
    failing = with_content(
        [{"role": "user", "content": f"secret {marker}"}],
        [{"role": "assistant", "content": "ok 5"}],
    )
    fine = with_content([{"role": "user", "content": "hello 9"}], None)
    with caplog.at_level(logging.ERROR, logger="steerway.telemetry.recorder"):
        recorder.record(failing)
        recorder.record(fine)
        await recorder.stop()

    stored = {row.trace_id: row for row in await fetch_table(engine, ai_interactions)}
    assert stored[failing.trace.trace_id].prompt is None
    assert stored[failing.trace.trace_id].response == [{"role": "assistant", "content": "ok #"}]
    assert stored[fine.trace.trace_id].prompt == [{"role": "user", "content": "hello #"}]
    assert recorder.stats.written_bundles == 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "ValueError" in logged
    assert marker not in logged and "cannot scan" not in logged


async def test_spilled_content_is_redacted_when_replayed(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    left_behind = SpillFile.create(spill_dir)  # as a process storing content in full leaves it
    raw = with_content([{"role": "user", "content": "pin 2468"}], None)
    left_behind.append([raw])
    left_behind.release()

    recorder = Recorder(engine, flush_interval=0.01, spill_dir=spill_dir, redact=no_digits)
    await recorder.start()
    for _ in range(500):
        if not spill_files(spill_dir):
            break
        await asyncio.sleep(0.01)
    await recorder.stop()

    assert await count(engine, "ai_interactions") == 1
    (row,) = await fetch_table(engine, ai_interactions)
    assert row.prompt == [{"role": "user", "content": "pin ####"}]
    assert recorder.stats.replayed_bundles == 1
