"""A guardrail's verdict on a demo request, recorded as `gateway.guardrails.engine.record` records a
real one: a `guardrail` decision for every check, a violation row for every finding; counts per
entity type, never the text."""

from __future__ import annotations

import random

from gateway.demo.cast import Guardrail
from gateway.demo.draws import lognormal
from gateway.demo.trace import DemoTrace

_ACTION_ORDER = {"block": 1, "log": 2}
_DONE = {"block": "blocked", "mask": "masked", "log": "logged and let through"}
_OUTCOME = {"block": "blocked", "mask": "masked", "log": "flagged"}


def in_running_order(guardrails: list[Guardrail]) -> list[Guardrail]:
    """Blocking checks first, then logging ones, then masking ones (`gateway.guardrails.engine`)."""
    return sorted(guardrails, key=lambda g: _ACTION_ORDER.get(g.action, 3))


def found(entities: dict[str, int]) -> str:
    return ", ".join(f"{kind} ({count})" for kind, count in sorted(entities.items()))


def blocked_message(guardrail: Guardrail, entities: dict[str, int]) -> str:
    return (
        f"The request was blocked by the guardrail {guardrail.name!r} ({guardrail.kind}): "
        f"found {found(entities) or 'a violation'}."
    )


def check(
    rng: random.Random,
    trace: DemoTrace,
    at: float,
    guardrail: Guardrail,
    direction: str,
    api_key_id: str,
) -> tuple[dict[str, int], float]:
    """One check that starts at `at`: what it found (empty: nothing) and when it ended."""
    latency_us = lognormal(rng, guardrail.latency_us, 0.5)
    ended = at + latency_us / 1e6
    entities: dict[str, int] = {}
    score = 0.0
    reason = ""
    where = "the request" if direction == "input" else "the answer"
    if rng.random() < guardrail.trigger_share:
        for kind in rng.sample(guardrail.entities, 1 + (rng.random() < 0.3)):
            entities[kind] = 1 + int(rng.random() ** 3 * 3)
        score = round(rng.uniform(0.8, 1.0), 2)
        if guardrail.kind == "prompt_injection":
            reason = "; prompt-injection heuristics matched: " + ", ".join(
                f"{kind} ({rng.uniform(0.7, 0.95):.2f})" for kind in sorted(entities)
            )
        reasoning = (
            f"found {found(entities)} in {where} (score {score:g}): "
            f"{_DONE[guardrail.action]}{reason}"
        )
    else:
        reasoning = f"nothing found in {where} (score {score:g})"
    trace.decide(
        ended,
        "guardrail",
        "guardrails",
        {
            "guardrail": guardrail.name,
            "kind": guardrail.kind,
            "direction": direction,
            "action": guardrail.action,
        },
        {
            "outcome": _OUTCOME[guardrail.action] if entities else "pass",
            "score": score,
            "entities": entities,
        },
        reasoning,
        latency_us,
    )
    if entities:
        trace.violation(
            ended,
            guardrail=guardrail.name,
            kind=guardrail.kind,
            direction=direction,
            action=guardrail.action,
            entities=entities,
            score=score,
            latency_us=latency_us,
            api_key_id=api_key_id,
        )
    return entities, ended
