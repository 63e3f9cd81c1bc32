"""Which live traces a viewer receives: its workspace scope, then the filters it asked for.

Every criterion left as None (or empty) matches everything; given ones must all match. Status
takes the recorded statuses (`ok`, `error`, `cancelled`) and `denied`, an error answered with a
4xx status: the gateway (or the provider) refused the request as sent, rather than failing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from telemetry.live_summary import LiveTrace

STATUSES: Final = ("ok", "error", "cancelled", "denied")


def outcome(trace: LiveTrace) -> str:
    """`ok`, `error`, `cancelled` or `denied` (an error answered with a 4xx)."""
    if trace.status == "error" and 400 <= trace.http_status < 500:
        return "denied"
    return trace.status


@dataclass(frozen=True, slots=True)
class LiveFilter:
    workspace_id: str | None = None
    model: str | None = None
    """The requested model, the model it was served as, or the provider's model name."""
    provider: str | None = None
    statuses: frozenset[str] = frozenset()
    """Any of these; `error` also matches `denied` errors."""
    key_ids: frozenset[str] | None = None
    end_user: str | None = None
    route: str | None = None
    error_type: str | None = None
    http_status: int | None = None
    min_duration_ms: float | None = None
    cache_hit: bool | None = None
    stream: bool | None = None
    rule: str | None = None
    guardrail: str | None = None

    def matches(self, trace: LiveTrace) -> bool:
        if self.workspace_id is not None and trace.workspace_id != self.workspace_id:
            return False
        if self.model is not None and self.model not in (
            trace.requested_model,
            trace.served_model,
            trace.provider_model,
        ):
            return False
        if self.provider is not None and trace.provider != self.provider:
            return False
        if self.statuses and not (trace.status in self.statuses or outcome(trace) in self.statuses):
            return False
        if self.key_ids is not None and trace.api_key_id not in self.key_ids:
            return False
        if self.end_user is not None and trace.end_user != self.end_user:
            return False
        if self.route is not None and trace.route != self.route:
            return False
        if self.error_type is not None and trace.error_type != self.error_type:
            return False
        if self.http_status is not None and trace.http_status != self.http_status:
            return False
        if self.min_duration_ms is not None and trace.duration_ms < self.min_duration_ms:
            return False
        if self.cache_hit is not None and trace.cache_hit != self.cache_hit:
            return False
        if self.stream is not None and trace.stream != self.stream:
            return False
        if self.rule is not None and self.rule not in trace.rules_matched:
            return False
        return self.guardrail is None or self.guardrail in trace.guardrails_triggered
