"""A running gateway's output, read as it is written, so a test can look for tracebacks at any
point instead of only after the process ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.e2e.conftest import Database, GatewayProcess


class LogWatch:
    """Collects the lines of a gateway's stdout (and stderr, merged into it) in a thread."""

    def __init__(self, gateway: GatewayProcess) -> None:
        stream = gateway.process.stdout
        assert stream is not None
        self._stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in iter(self._stream.readline, b""):
            with self._lock:
                self._lines.append(raw.decode("utf-8", "replace"))

    def mark(self) -> int:
        with self._lock:
            return len(self._lines)

    def since(self, mark: int = 0) -> str:
        with self._lock:
            return "".join(self._lines[mark:])

    def join(self) -> None:
        self._thread.join(timeout=20)


def assert_no_traceback(text: str) -> None:
    for needle in ("Traceback (most recent call last)", "unhandled error", "RecursionError"):
        assert needle not in text, text[-4000:]


@contextmanager
def watched_gateway(
    database: Database, config: dict[str, Any] | None, tmp: Any, **kwargs: Any
) -> Iterator[tuple[GatewayProcess, LogWatch]]:
    """A gateway process whose output is watched; stopped (gracefully) on exit."""
    gateway = GatewayProcess(database, config, tmp, **kwargs)
    watch = LogWatch(gateway)
    try:
        yield gateway, watch
    finally:
        gateway.stop()
        watch.join()
