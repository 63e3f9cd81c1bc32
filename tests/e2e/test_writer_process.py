"""`telemetry.writer: process` in a served gateway: every request recorded by the worker's
writer process, its rows counted in the worker's metrics, the child gone with the worker."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _writer_processes(root: int) -> list[int]:
    """Processes under `root` whose command line runs the writer process's entry point."""
    pending, writers = [root], []
    while pending:
        pid = pending.pop()
        for child in _children(pid):
            pending.append(child)
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"telemetry.writer_process import child_main" in command:
                writers.append(child)
    return writers


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_requests_are_recorded_by_the_writer_process(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    config = mock_config(mock_provider) | {"telemetry": {"writer": "process"}}
    gateway = start_gateway(
        backend_database, config, master_key="sk-writer-" + secrets.token_hex(8)
    )
    client = gateway.client()
    trace_ids = set()
    for _ in range(12):
        raw = client.chat.completions.with_raw_response.create(model="mock-gpt", messages=HELLO)
        trace_ids.add(raw.headers["x-steerway-trace-id"])
    with client.chat.completions.with_streaming_response.create(
        model="mock-gpt", messages=HELLO, stream=True
    ) as streamed:
        trace_ids.add(streamed.headers["x-steerway-trace-id"])
        assert "[DONE]" in "".join(streamed.iter_lines())

    placeholders = ",".join(f"'{t}'" for t in trace_ids)
    rows = gateway.database.wait_rows(
        f"SELECT trace_id, stream FROM ai_interactions WHERE trace_id IN ({placeholders})",
        count=len(trace_ids),
    )
    assert {row["trace_id"] for row in rows} == trace_ids
    assert sum(1 for row in rows if row["stream"]) == 1

    writers = _writer_processes(gateway.process.pid)
    assert len(writers) == 1
    deadline = time.monotonic() + 10
    written = 0.0
    while written < len(trace_ids) and time.monotonic() < deadline:
        text = httpx.get(f"{gateway.url}/metrics").text
        written = _metric(text, "steerway_telemetry_rows_written_total", table="traces")
        time.sleep(0.1)
    assert written == len(trace_ids)
    assert _metric(text, "steerway_telemetry_write_failures_total") == 0

    # Accepted just before a clean stop: written by the child before it goes, with the worker.
    late = client.chat.completions.with_raw_response.create(model="mock-gpt", messages=HELLO)
    output = gateway.stop()
    assert "Traceback" not in output
    assert not any(_alive(pid) for pid in writers)
    late_id = late.headers["x-steerway-trace-id"]
    assert gateway.database.rows(f"SELECT trace_id FROM traces WHERE trace_id = '{late_id}'")
