"""Which requests keep their whole record when traffic is large (`telemetry.sampling`).

Every request leaves its trace row and its interactions' figures, so roll-ups, analytics and
budgets count everything. What sampling decides is whether the rest is kept too: the spans,
the decisions and the prompt and response content. A trace is kept whole when any of the
"always keep" tests says so, and otherwise when its id falls inside `ratio`.

The ratio test hashes the trace id (`ratio_share`), so every replica, and a spill file replayed
later, decides the same for the same trace; and a trace kept at one ratio is kept at every
larger one. The decision is made by the batch writer, off the request path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from telemetry.records import InteractionRecord, TraceBundle
from telemetry.summary import decision_outcome

_SHARE_BYTES: Final = 8
_SHARE_SPAN: Final = float(1 << (8 * _SHARE_BYTES))
_GUARDRAIL_VERDICTS: Final = frozenset({"blocked", "masked", "flagged", "error"})
"""Guardrail decision outcomes other than a pass; `admission` (allowed models) is not a
guardrail's verdict."""


def ratio_share(trace_id: str) -> float:
    """Where the trace falls in [0, 1): the first eight bytes of the BLAKE2b hash of its id
    (as ASCII), read big-endian, over 2^64. A trace is in the ratio when this is below it."""
    digest = hashlib.blake2b(trace_id.encode("ascii"), digest_size=_SHARE_BYTES).digest()
    return int.from_bytes(digest, "big") / _SHARE_SPAN


@dataclass(frozen=True, slots=True)
class TraceSampling:
    """The policy: what is always kept whole, then the share of the rest."""

    ratio: float
    errors: bool = True
    """Keep a trace that answered with HTTP status 400 or above (499: the client left), or
    whose status is `error` (a stream that failed after its 200 header)."""
    slow_ms: float = 0.0
    """Keep a trace whose duration is over this many milliseconds; 0 keeps none for it."""
    guardrail_verdicts: bool = True
    """Keep a trace in which a guardrail found something (block, mask, log) or failed."""
    rule_denials: bool = True
    """Keep a trace a steering rule denied."""
    evaluation: bool = True
    """Keep a trace marked for evaluation (`TraceBundle.for_evaluation`)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"ratio must be from 0 to 1, got {self.ratio}")
        if self.slow_ms < 0:
            raise ValueError(f"slow_ms must not be negative, got {self.slow_ms}")

    def keeps(self, bundle: TraceBundle) -> bool:
        """Whether the bundle is written whole."""
        return self.always_kept(bundle) or ratio_share(bundle.trace.trace_id) < self.ratio

    def without_unkept_content(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
        """The bundles, those not kept whole without their content: what the writer will not
        store need not be redacted first (the writer decides the same again)."""
        return [bundle if self.keeps(bundle) else without_content(bundle) for bundle in bundles]

    def always_kept(self, bundle: TraceBundle) -> bool:
        trace = bundle.trace
        if self.errors and (trace.http_status >= 400 or trace.status == "error"):
            return True
        if self.slow_ms and trace.duration_ms > self.slow_ms:
            return True
        if self.evaluation and bundle.for_evaluation:
            return True
        if self.guardrail_verdicts and (bundle.violations or _guardrail_verdict(bundle)):
            return True
        return self.rule_denials and _rule_denied(bundle)


def without_content(bundle: TraceBundle) -> TraceBundle:
    """The bundle with its interactions' prompts and responses left out (the same bundle when
    it holds none)."""
    if not any(i.prompt is not None or i.response is not None for i in bundle.interactions):
        return bundle
    return msgspec.structs.replace(
        bundle, interactions=[interaction_without_content(i) for i in bundle.interactions]
    )


def interaction_without_content(interaction: InteractionRecord) -> InteractionRecord:
    if interaction.prompt is None and interaction.response is None:
        return interaction
    return msgspec.structs.replace(interaction, prompt=None, response=None)


def _guardrail_verdict(bundle: TraceBundle) -> bool:
    return any(
        decision.type == "guardrail"
        and decision.component != "admission"
        and decision_outcome(decision) in _GUARDRAIL_VERDICTS
        for decision in bundle.decisions
    )


def _rule_denied(bundle: TraceBundle) -> bool:
    return any(
        decision.type == "rule_evaluation" and decision_outcome(decision) == "denied"
        for decision in bundle.decisions
    )
