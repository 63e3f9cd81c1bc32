"""The fault scenario's load: clients that keep sending chat completions (plain and streamed) and
embeddings to a gateway and keep, for every request, what came back.

Each client sends one request at a time, paced so the whole load stays under `rate` requests a
second, with the virtual key (or master key) of its slot and the request kind of its turn in
`KINDS`. A request that a fault is steering upstream carries the mock provider's `mock` field,
chosen by the caller's `directive` function when the request is made. Nothing is retried: every
request is one `Outcome`, with the status, the error code of an error answer, the
`x-steerway-trace-id` the answer carried, and whether the answer was whole (a JSON body with
choices or data; a stream that reached `data: [DONE]`).

A request that got no answer is an outcome too, with `status` None and `code` saying why:
`refused` (no connection: the gateway is down), `cut` (the connection dropped before the answer
was whole), `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

CHAT_MODEL: Final = "fault-chat"
EMBEDDING_MODEL: Final = "fault-embedding"
KINDS: Final = ("chat", "stream", "chat", "embeddings", "stream", "cached")
"""The turn of request kinds every client follows. `cached`: a chat with temperature 0 and one
of a few prompts, which the response cache answers once it has seen it."""
CACHED_PROMPTS: Final = 4
REFUSED_PAUSE_S: Final = 0.1
"""How long a client waits after a refused connection (the gateway is down) before its next try."""

Directive = Callable[[str, int], dict[str, Any] | None]
"""(request kind, request number) -> the `mock` field to send, or None for a plain request."""


@dataclass(slots=True)
class Outcome:
    number: int
    kind: str
    key: str
    """The label of the key the request used."""
    sent: float
    """Seconds from the start of the load to the request."""
    elapsed: float
    status: int | None
    code: str | None
    """The error answer's `error.code`; for no answer: `refused`, `cut` or `timeout`."""
    trace_id: str | None
    complete: bool
    faulted: bool
    """The request carried a fault directive for the upstream."""
    request_id: str = ""
    """The `x-request-id` it was sent with (stored in `traces.request_id`): how a request that got
    no answer is looked for."""


@dataclass
class LoadSettings:
    base_url: str
    keys: Mapping[str, str]
    """Key label -> bearer token; clients take them in turn."""
    concurrency: int = 16
    rate: float = 200.0
    """The most requests per second the whole load sends."""
    timeout_s: float = 30.0
    tag: str = "fault"
    """Part of every prompt, so runs never share cached answers."""
    kinds: tuple[str, ...] = KINDS


@dataclass
class Load:
    """A running load; `outcomes` grows as answers come back."""

    settings: LoadSettings
    directive: Directive | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _started: float = 0.0
    _numbers: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None

    def now(self) -> float:
        """Seconds since the load started, on the clock of `Outcome.sent`."""
        return time.monotonic() - self._started

    async def start(self) -> None:
        settings = self.settings
        limits = httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        )
        timeout = httpx.Timeout(settings.timeout_s, connect=5.0)
        self._client = httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)
        self._started = time.monotonic()
        labels = list(settings.keys)
        for number in range(settings.concurrency):
            label = labels[number % len(labels)]
            task = asyncio.create_task(self._client_loop(number, label), name=f"client-{number}")
            self._tasks.append(task)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop sending; wait for the requests in flight (up to the request timeout)."""
        self._stop.set()
        wait = self.settings.timeout_s + 5 if grace_s is None else grace_s
        _, pending = await asyncio.wait(self._tasks, timeout=wait) if self._tasks else ((), ())
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    async def _client_loop(self, client: int, label: str) -> None:
        settings = self.settings
        interval = settings.concurrency / settings.rate
        kinds = settings.kinds
        turn = client % len(kinds)
        next_at = time.monotonic()
        while not self._stop.is_set():
            wait = next_at - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
                if self._stop.is_set():
                    return
            next_at = max(next_at + interval, time.monotonic())
            kind = kinds[turn % len(kinds)]
            turn += 1
            self._numbers += 1
            outcome = await self._send(self._numbers, client, kind, label)
            self.outcomes.append(outcome)
            if outcome.code == "refused":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), REFUSED_PAUSE_S)

    async def _send(self, number: int, client: int, kind: str, label: str) -> Outcome:
        assert self._client is not None
        directive = self.directive(kind, number) if self.directive is not None else None
        path, body = request_body(kind, number, client, self.settings.tag)
        if directive is not None:
            body["mock"] = directive
        request_id = f"{self.settings.tag.replace(' ', '-')}-{number}"
        headers = {
            "Authorization": f"Bearer {self.settings.keys[label]}",
            "x-request-id": request_id,
        }
        sent = self.now()
        started = time.monotonic()
        status: int | None = None
        trace_id: str | None = None
        code: str | None = None
        complete = False
        try:
            async with self._client.stream(
                "POST", self.settings.base_url + path, json=body, headers=headers
            ) as response:
                status = response.status_code
                trace_id = response.headers.get("x-steerway-trace-id")
                if kind == "stream" and status == 200:
                    complete, code = await _read_stream(response)
                else:
                    payload = _json(await response.aread())
                    code = _error_code(payload)
                    complete = status == 200 and _is_answer(payload)
        except httpx.ConnectError:
            code = "refused"
        except httpx.TimeoutException:
            code = "timeout"
        except (httpx.TransportError, httpx.StreamError):
            code = "cut"
        if status is not None and code in ("cut", "timeout"):
            complete = False
        return Outcome(
            number=number,
            kind=kind,
            key=label,
            sent=sent,
            elapsed=time.monotonic() - started,
            status=status,
            code=code,
            trace_id=trace_id,
            complete=complete,
            faulted=directive is not None,
            request_id=request_id,
        )


def request_body(kind: str, number: int, client: int, tag: str) -> tuple[str, dict[str, Any]]:
    if kind == "embeddings":
        return "/embeddings", {"model": EMBEDDING_MODEL, "input": f"{tag} {client}-{number}"}
    if kind == "cached":
        prompt = f"{tag} cached prompt {number % CACHED_PROMPTS}"
        return "/chat/completions", {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 16,
        }
    body: dict[str, Any] = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": f"{tag} {client}-{number}"}],
        "max_tokens": 16,
    }
    if kind == "stream":
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return "/chat/completions", body


async def _read_stream(response: httpx.Response) -> tuple[bool, str | None]:
    """Whether the stream reached `[DONE]`, and the code of an error event it carried."""
    done = False
    code = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        error = _error_code(_json(data.encode()))
        if error is not None:
            code = error
    return done and code is None, code


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _error_code(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return str(code) if code is not None else "error"


def _is_answer(payload: Any) -> bool:
    return isinstance(payload, dict) and bool(payload.get("choices") or payload.get("data"))
