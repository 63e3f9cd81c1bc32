"""A live feed viewer for tests: `GET /admin/api/live` read over httpx streaming in a thread of
its own, each Server-Sent Event parsed and queued for the test to wait on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    name: str
    data: Any
    id: str | None = None


@dataclass
class _Parsed:
    name: str = "message"
    data: list[str] = field(default_factory=list)
    id: str | None = None


class LiveStream:
    """Connects on creation; `close()` (or leaving a `with` block) disconnects."""

    def __init__(
        self, base_url: str, key: str, params: dict[str, str] | None = None, *, wait: float = 10
    ) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.comments = 0
        self.retry: int | None = None
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self.body = b""
        self._hello: dict[str, Any] | None = None
        self.finished = threading.Event()
        self._connected = threading.Event()
        self._url = f"{base_url}/admin/api/live"
        self._key = key
        self._params = params or {}
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._connected.wait(wait):
            raise AssertionError("the live feed did not answer in time")

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def hello(self) -> dict[str, Any]:
        """The stream's first event (waited for on first use)."""
        if self._hello is None:
            event = self.next("hello")
            assert isinstance(event.data, dict)
            self._hello = event.data
        return self._hello

    def next(self, name: str | None = None, *, within: float = 10.0) -> Event:
        """The next event (of that name, skipping others); AssertionError if none comes."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no {name or 'event'} within {within} s") from None
            if name is None or event.name == name:
                return event

    def trace(self, trace_id: str, *, within: float = 10.0) -> Event:
        """The trace event of that trace, skipping others."""
        deadline = time.monotonic() + within
        while True:
            event = self.next("trace", within=max(deadline - time.monotonic(), 0.001))
            if event.data["trace_id"] == trace_id:
                return event

    def each_trace(self, trace_ids: list[str], *, within: float = 10.0) -> list[Event]:
        """The trace events of those traces, in the order given whatever order they arrive in
        (a trace relayed from another worker may come after a later one served here); others
        are skipped. AssertionError if one is missing or comes twice."""
        wanted = set(trace_ids)
        found: dict[str, Event] = {}
        deadline = time.monotonic() + within
        while len(found) < len(wanted):
            left = deadline - time.monotonic()
            missing = sorted(wanted - found.keys())
            try:
                event = self.next("trace", within=max(left, 0.001))
            except AssertionError:
                raise AssertionError(f"no trace event for {missing} within {within} s") from None
            trace_id = event.data["trace_id"]
            if trace_id in wanted:
                assert trace_id not in found, f"trace {trace_id} shown twice"
                found[trace_id] = event
        return [found[trace_id] for trace_id in trace_ids]

    def traces(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """The trace events' data among those `drain` returns."""
        return [event.data for event in self.drain(quiet) if event.name == "trace"]

    def drain(self, quiet: float = 0.3) -> list[Event]:
        """Every event that arrives until none has come for `quiet` seconds."""
        events = []
        while True:
            try:
                events.append(self.events.get(timeout=quiet))
            except queue.Empty:
                return events

    def close(self) -> None:
        task = self._task
        if task is not None and not self.finished.is_set():
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()
            self.finished.set()
            self._connected.set()

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read()

    async def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(10.0, read=None)
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("GET", self._url, params=self._params, headers=headers) as response,
        ):
            self.status = response.status_code
            self.headers = response.headers
            if response.status_code != 200:
                self.body = await response.aread()
                self._connected.set()
                return
            self._connected.set()
            parsed = _Parsed()
            async for line in response.aiter_lines():
                parsed = self._line(line, parsed)

    def _line(self, line: str, parsed: _Parsed) -> _Parsed:
        if not line:
            if parsed.data:
                data = "\n".join(parsed.data)
                self.events.put(Event(parsed.name, json.loads(data), parsed.id))
            return _Parsed()
        if line.startswith(":"):
            self.comments += 1
            return parsed
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            parsed.name = value
        elif name == "data":
            parsed.data.append(value)
        elif name == "id":
            parsed.id = value
        elif name == "retry":
            self.retry = int(value)
        return parsed
