"""What the runner needs from whoever replays a request (`gateway.upstream.replay_calls` provides it:
telemetry does not import the gateway), and how a variant rewrites the recorded prompt."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    workspace_id: str
    model: str
    """A public model of the gateway config."""
    messages: list[dict[str, Any]]
    max_tokens: int | None
    timeout_s: float


@dataclass(frozen=True, slots=True)
class ReplayAnswer:
    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: float | None = None
    trace_id: str | None = None
    """The trace that recorded the call (`traces.source = 'evaluation'`, its interactions
    `purpose = 'comparison'`)."""
    error: str | None = None
    """Why no answer came (safe to store: never a credential or a provider's text)."""


class ReplayCaller(Protocol):
    async def replay(self, request: ReplayRequest) -> ReplayAnswer: ...


def variant_messages(prompt: Any, system_prompt: str | None) -> list[dict[str, Any]] | None:
    """The recorded messages with the variant's system prompt in place of the recorded system
    messages (kept as recorded when the variant has none); None when the stored prompt is not a
    list of chat messages."""
    if not isinstance(prompt, list) or not prompt:
        return None
    messages = [m for m in prompt if isinstance(m, dict) and isinstance(m.get("role"), str)]
    if len(messages) != len(prompt):
        return None
    if system_prompt is None:
        return [dict(m) for m in messages]
    rest = [dict(m) for m in messages if m["role"] not in ("system", "developer")]
    return [{"role": "system", "content": system_prompt}, *rest]
