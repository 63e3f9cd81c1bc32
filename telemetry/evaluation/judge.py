"""What the workers need from whoever calls the judge model (`gateway.upstream.model_calls` provides
it): telemetry does not import the gateway, so the call is injected through this protocol."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    workspace_id: str
    model: str
    """A public model of the gateway config."""
    messages: list[dict[str, str]]
    schema: dict[str, Any]
    temperature: float
    timeout_s: float


@dataclass(frozen=True, slots=True)
class JudgeAnswer:
    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: float | None = None
    trace_id: str | None = None
    """The trace that recorded the call (`traces.source = 'evaluation'`)."""
    refused: bool = False
    """The provider said the model declined (a safety stop, an OpenAI `refusal`)."""


class JudgeCallFailed(Exception):
    """The call did not produce an answer (timeout, an upstream error, an unknown model). The
    message is safe to store: it never holds a credential."""

    def __init__(self, message: str, *, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.trace_id = trace_id


class JudgeCaller(Protocol):
    async def judge(self, request: JudgeRequest) -> JudgeAnswer: ...
