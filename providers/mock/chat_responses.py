"""Chat completion answers in OpenAI's wire format: one JSON body, or a server-sent event stream."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any

import msgspec
from aiohttp import web

from providers.mock.chat_plan import ChatPlan
from providers.mock.settings import Behaviour
from providers.mock.sse import SSEWriter
from providers.mock.stats import MockStats

SYSTEM_FINGERPRINT = "fp_mock"
MALFORMED_BODY = b'{"id": "chatcmpl-mock", "object": "chat.completion", "choices": [{"inde'
MALFORMED_EVENT = b'data: {"id": "chatcmpl-mock", "choices": [{"delta": {"content": "oops\n\n'
DONE_EVENT = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

_encode = msgspec.json.Encoder().encode
_id_prefix = os.urandom(4).hex()
_sequence = itertools.count(1)


def _new_id_prefix() -> None:
    """Forked workers must not hand out the same ids."""
    global _id_prefix
    _id_prefix = os.urandom(4).hex()


os.register_at_fork(after_in_child=_new_id_prefix)


def new_id(kind: str) -> str:
    return f"{kind}mock{_id_prefix}{next(_sequence):010x}"


def usage_body(plan: ChatPlan) -> dict[str, Any]:
    completion_tokens = plan.completion_tokens_per_choice * plan.n
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": plan.prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def completion_body(plan: ChatPlan, *, include_usage: bool) -> bytes:
    text = plan.text
    choices = [
        {
            "index": index,
            "message": _message(plan, text),
            "logprobs": None,
            "finish_reason": plan.finish_reason,
        }
        for index in range(plan.n)
    ]
    body: dict[str, Any] = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }
    if include_usage:
        body["usage"] = usage_body(plan)
    return _encode(body)


def _message(plan: ChatPlan, text: str) -> dict[str, Any]:
    if plan.tool_call is None:
        return {"role": "assistant", "content": text, "refusal": None}
    call = {
        "id": new_id("call_"),
        "type": "function",
        "function": {"name": plan.tool_call.name, "arguments": text},
    }
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}


class ChatStream(SSEWriter):
    """Writes one chat completion as SSE events, honouring the behaviour's timing and faults."""

    def __init__(
        self, request: web.Request, plan: ChatPlan, behaviour: Behaviour, stats: MockStats
    ) -> None:
        self.request = request
        self.plan = plan
        self.behaviour = behaviour
        self.stats = stats
        self.response = web.StreamResponse(headers=SSE_HEADERS)
        self._with_usage = plan.include_usage and not behaviour.no_usage
        self._envelope: dict[str, Any] = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": plan.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        self._pending: list[bytes] = []

    async def _write_events(self) -> bool:
        """Send the whole stream; True when it was cut on purpose.

        Events queue up and go out in one write at each pause, so a stream without delays
        costs one system call rather than one per event.
        """
        behaviour = self.behaviour
        await _sleep_ms(behaviour.latency_ms)
        await self.response.prepare(self.request)
        for index in range(self.plan.n):
            self._queue_choice(index, self._opening_delta(), None)
        if behaviour.malformed:
            self._pending += (MALFORMED_EVENT, DONE_EVENT)
            await self._flush()
            return False

        await self._pause(behaviour.ttft_ms)
        size = behaviour.tokens_per_chunk
        pieces = self.plan.pieces
        groups = ["".join(pieces[start : start + size]) for start in range(0, len(pieces), size)]
        drop_after = behaviour.drop_after_chunks
        for sent, group in enumerate(groups):
            if drop_after is not None and sent >= drop_after:
                await self._drop_connection()
                return True
            if sent:
                await self._pause(behaviour.chunk_interval_ms)
            delta = self._content_delta(group)
            for index in range(self.plan.n):
                self._queue_choice(index, delta, None)
        if drop_after is not None:
            await self._drop_connection()
            return True

        for index in range(self.plan.n):
            self._queue_choice(index, {}, self.plan.finish_reason)
        if self._with_usage:
            self._queue({"choices": [], "usage": usage_body(self.plan)})
        self._pending.append(DONE_EVENT)
        await self._flush()
        return False

    def _opening_delta(self) -> dict[str, Any]:
        tool_call = self.plan.tool_call
        if tool_call is None:
            return {"role": "assistant", "content": ""}
        header = {
            "index": 0,
            "id": new_id("call_"),
            "type": "function",
            "function": {"name": tool_call.name, "arguments": ""},
        }
        return {"role": "assistant", "content": None, "tool_calls": [header]}

    def _content_delta(self, text: str) -> dict[str, Any]:
        if self.plan.tool_call is None:
            return {"content": text}
        return {"tool_calls": [{"index": 0, "function": {"arguments": text}}]}

    def _queue_choice(self, index: int, delta: dict[str, Any], finish_reason: str | None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        self._queue({"choices": [choice]})

    def _queue(self, fields: dict[str, Any]) -> None:
        event = self._envelope | fields
        if self._with_usage:
            event.setdefault("usage", None)
        self._pending.append(b"data: " + _encode(event) + b"\n\n")


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000.0)
