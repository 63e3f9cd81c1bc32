"""Real HTTP receivers on 127.0.0.1 for the channel tests: each records what it was sent and
answers from a script, checking requests the way the real service would."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a hanging receiver)."""


@dataclass
class Received:
    at: float
    """`time.monotonic()` when the request arrived."""
    path: str
    headers: dict[str, str]
    body: bytes
    problem: str | None
    """What the receiver found wrong with the request, as the real service would refuse it."""

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


Check = Callable[[web.Request, bytes], str | None]


class Receiver:
    """Answers each request with the next scripted reply (then 200), or with 400/401 when
    `check` finds a problem."""

    def __init__(self, check: Check | None = None, *, problem_status: int = 400) -> None:
        self.check = check
        self.problem_status = problem_status
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = self.check(request, body) if self.check else None
        self.received.append(
            Received(time.monotonic(), request.path_qs, dict(request.headers), body, problem)
        )
        self.arrived.set()
        if problem is not None:
            return web.Response(status=self.problem_status, text=problem)
        reply = self.script.pop(0) if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)


def webhook_check(secret: str) -> Check:
    """The verification docs/alerts.md tells a receiver to do, written here on its own."""

    def check(request: web.Request, body: bytes) -> str | None:
        timestamp = request.headers.get("X-Steerway-Timestamp", "")
        signature = request.headers.get("X-Steerway-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return "stale or missing timestamp"
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(f"sha256={expected.hexdigest()}", signature):
            return "bad signature"
        return None

    return check


def slack_check(request: web.Request, body: bytes) -> str | None:
    """Slack refuses a message without `text` or with malformed blocks as `invalid_payload`."""
    try:
        message = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "invalid_payload"
    if not isinstance(message.get("text"), str) or not message["text"]:
        return "invalid_payload"
    for attachment in message.get("attachments", []):
        for block in attachment.get("blocks", []):
            if block.get("type") not in {"header", "section", "context", "actions", "divider"}:
                return "invalid_blocks"
            if block["type"] == "header" and len(block["text"]["text"]) > 150:
                return "invalid_blocks"
    return None


def pagerduty_check(routing_key: str) -> Check:
    def check(request: web.Request, body: bytes) -> str | None:
        try:
            event = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return '{"status":"invalid event","message":"Event object is invalid"}'
        if event.get("routing_key") != routing_key:
            return '{"status":"invalid event","message":"Invalid routing key"}'
        if event.get("event_action") not in {"trigger", "acknowledge", "resolve"}:
            return '{"status":"invalid event","message":"Invalid event_action"}'
        if not event.get("dedup_key"):
            return '{"status":"invalid event","message":"dedup_key is required"}'
        if event["event_action"] == "trigger":
            payload = event.get("payload") or {}
            if not all(payload.get(key) for key in ("summary", "source", "severity")):
                return '{"status":"invalid event","message":"payload is incomplete"}'
            if payload["severity"] not in {"critical", "error", "warning", "info"}:
                return '{"status":"invalid event","message":"Invalid severity"}'
        return None

    return check


def pagerduty_accepted(dedup_key: str) -> Reply:
    body = msgspec.json.encode(
        {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    ).decode()
    return Reply(status=202, body=body, headers={"Content-Type": "application/json"})
