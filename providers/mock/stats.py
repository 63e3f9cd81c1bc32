"""Counters and the last request, kept in-process so tests can see what reached the upstream.

With several worker processes each worker has its own counters.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

HIDDEN_HEADERS = frozenset({"authorization"})


class MockStats:
    """Request counters. A stream ends as exactly one of completed, aborted or dropped."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.requests_by_model: Counter[str] = Counter()
        """Requests per model: the body's `model`, or the model or deployment in the URL."""
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_aborted = 0
        """Streams cut short because the client went away."""
        self.streams_dropped = 0
        """Streams the server cut on purpose (`mock.drop_after_chunks`)."""
        self.requests_cancelled = 0
        """Non-streaming requests whose client went away while they waited (latency or hang)."""

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "requests_by_model": dict(self.requests_by_model),
            "streams_started": self.streams_started,
            "streams_completed": self.streams_completed,
            "streams_aborted": self.streams_aborted,
            "streams_dropped": self.streams_dropped,
            "requests_cancelled": self.requests_cancelled,
        }


class RecordedRequest:
    """A chat or embeddings request as it arrived; headers are copied only when asked for."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in HIDDEN_HEADERS:
                continue
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        return {"method": self.method, "path": self.path, "headers": headers, "body": self.body}
