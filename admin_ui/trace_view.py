"""A recorded trace made readable: the summary of its header, each decision's verdict and what
it changed, and stored content split into messages with JSON pretty-printed.

Pure functions of the rows `telemetry.queries.trace_detail` returns; the page template lays them
out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from admin_ui.formatting import compact_json, microseconds

LONG_TEXT_CHARACTERS = 600
LONG_TEXT_LINES = 12

DECISION_LABELS = {
    "rule_evaluation": "Rules",
    "model_selection": "Model selection",
    "retry": "Retry",
    "fallback": "Fallback",
    "cooldown": "Cooldown",
    "cache_decision": "Cache",
    "rate_limit": "Rate limit",
    "budget_check": "Budget",
    "guardrail": "Guardrail",
}


# --- the header ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """The trace's totals. The trace row's summary columns win; traces recorded before they
    existed get the same figures from their interactions."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_usd: Decimal | None
    ttft_ms: float | None
    deployment: str | None
    served_model: str | None
    """The public model that answered (a rule or a fallback may have chosen another)."""
    attempts: int
    cache_hit: bool
    usage_estimated: bool


def summarise(trace: Mapping[str, Any], interactions: Sequence[Mapping[str, Any]]) -> Summary:
    def total(name: str) -> Any:
        if trace.get(name) is not None:
            return trace[name]
        values = [row[name] for row in interactions if row.get(name) is not None]
        return sum(values, Decimal(0) if name == "cost_usd" else 0) if values else None

    last = interactions[-1] if interactions else {}
    ttft = trace.get("ttft_ms")
    if ttft is None:
        ttft = next(
            (row["ttft_ms"] for row in interactions if row.get("ttft_ms") is not None), None
        )
    return Summary(
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        total_tokens=total("total_tokens"),
        cost_usd=total("cost_usd"),
        ttft_ms=ttft,
        deployment=trace.get("deployment") or last.get("deployment"),
        served_model=last.get("requested_model"),
        attempts=len(interactions),
        cache_hit=bool(trace.get("cache_hit")) or any(row.get("cache_hit") for row in interactions),
        usage_estimated=any(row.get("usage_estimated") for row in interactions),
    )


# --- decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionView:
    sequence: int
    label: str
    component: str
    verdict: str
    tone: str
    """ok | warning | error | neutral"""
    reasoning: str
    rule: str | None
    facts: list[tuple[str, str]]
    """What the decision settled, as short name/value pairs."""
    evidence: list[str] = field(default_factory=list)
    candidates: list[Mapping[str, Any]] = field(default_factory=list)
    chosen: str | None = None
    """The deployment a model selection chose."""
    input: Any = None
    output: Any = None
    evaluation: str = ""


def decision_view(decision: Mapping[str, Any]) -> DecisionView:
    kind = str(decision.get("type", ""))
    given = decision.get("input")
    taken = decision.get("output")
    given = given if isinstance(given, Mapping) else {}
    taken = taken if isinstance(taken, Mapping) else {}
    verdict, tone = _verdict(kind, decision, given, taken)
    rule_id = decision.get("rule_id")
    rule_name = decision.get("rule_name")
    rule = None
    if rule_id:
        rule = rule_id if not rule_name or rule_name == rule_id else f"{rule_name} ({rule_id})"
    evidence = given.get("matched_on") if rule_id else None
    candidates = given.get("candidates") if kind == "model_selection" else None
    return DecisionView(
        sequence=int(decision.get("sequence") or 0),
        label=DECISION_LABELS.get(kind, kind.replace("_", " ").capitalize()),
        component=str(decision.get("component", "")),
        verdict=verdict,
        tone=tone,
        reasoning=str(decision.get("reasoning") or ""),
        rule=rule,
        facts=_facts(kind, taken),
        evidence=[str(item) for item in evidence] if isinstance(evidence, list) else [],
        candidates=[c for c in candidates if isinstance(c, Mapping)]
        if isinstance(candidates, list)
        else [],
        chosen=str(taken["deployment"]) if taken.get("deployment") else None,
        input=decision.get("input"),
        output=decision.get("output"),
        evaluation=microseconds(decision.get("evaluation_us")),
    )


def _verdict(
    kind: str,
    decision: Mapping[str, Any],
    given: Mapping[str, Any],
    taken: Mapping[str, Any],
) -> tuple[str, str]:
    if taken.get("allowed") is False:
        return "refused", "error"
    if taken.get("unavailable"):
        return "unavailable", "error"
    if taken.get("degraded"):
        return "degraded", "warning"
    if kind == "rule_evaluation":
        if "deny" in taken:
            return "denied", "error"
        if decision.get("rule_id"):
            return "matched", "ok"
        matched = given.get("rules_matched")
        return (f"{matched} matched", "ok") if matched else ("no match", "neutral")
    if kind == "model_selection":
        return ("selected", "ok") if taken.get("deployment") else ("none available", "error")
    if kind in ("retry", "fallback", "cooldown"):
        return kind, "warning"
    if kind == "cache_decision":
        status = str(taken.get("status", "")).lower()
        return status or "checked", "ok" if status == "hit" else "neutral"
    if kind == "guardrail":
        outcome = str(taken.get("outcome", "")).lower()
        tone = {"pass": "ok", "block": "error", "error": "error"}.get(outcome, "warning")
        return outcome or "checked", tone
    if taken.get("allowed") is True:
        return "allowed", "ok"
    return "recorded", "neutral"


def _facts(kind: str, taken: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The output's meaningful values; flags that only say "nothing unusual" are left out."""
    quiet = {"degraded": False, "unavailable": False, "allowed": True}
    facts: list[tuple[str, str]] = []
    for name, value in taken.items():
        if value is None or quiet.get(name, object()) is value:
            continue
        if name == "entities" and not value:
            continue
        if kind == "cache_decision" and name == "status":
            continue
        facts.append((name.replace("_", " "), _fact(value)))
    return facts


def _fact(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
        return ", ".join(str(item) for item in value)
    if isinstance(value, Mapping) and all(
        isinstance(item, Mapping) and set(item) == {"from", "to"} for item in value.values()
    ):
        return "; ".join(
            f"{name}: {_fact(change['from'])} → {_fact(change['to'])}"
            for name, change in value.items()
        )
    return compact_json(value)


# --- content -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    is_json: bool
    long: bool
    summary: str
    """The first line, cut, for a collapsed block."""


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    blocks: list[Block]


def block(value: Any) -> Block:
    if isinstance(value, str):
        text, is_json = _maybe_json(value)
    else:
        text, is_json = json.dumps(value, indent=2, ensure_ascii=False, default=str), True
    lines = text.splitlines() or [""]
    long = len(text) > LONG_TEXT_CHARACTERS or len(lines) > LONG_TEXT_LINES
    first = lines[0].strip()
    summary = first[:120] + ("…" if len(first) > 120 or len(lines) > 1 else "")
    return Block(text=text, is_json=is_json, long=long, summary=summary)


def messages(content: Any) -> list[Message]:
    """Stored prompt or response as messages. Chat content is a list of messages whose content
    is text or a list of parts; anything else (an embeddings input) is one block."""
    if not isinstance(content, list) or not all(isinstance(item, Mapping) for item in content):
        return [Message(role="input", blocks=[block(content)])]
    shown: list[Message] = []
    for item in content:
        role = str(item.get("role") or ("choice " + str(item["index"]) if "index" in item else ""))
        blocks: list[Block] = []
        body = item.get("content")
        if isinstance(body, str):
            blocks.append(block(body))
        elif isinstance(body, list):
            for part in body:
                if isinstance(part, Mapping) and part.get("type") == "text":
                    blocks.append(block(str(part.get("text", ""))))
                else:
                    blocks.append(block(part))
        elif body is not None:
            blocks.append(block(body))
        rest = {
            name: value
            for name, value in item.items()
            if name not in ("role", "content", "index") and value is not None
        }
        if rest:
            blocks.append(block(rest))
        if not blocks:
            blocks.append(block(""))
        shown.append(Message(role=role, blocks=blocks))
    return shown


def _maybe_json(text: str) -> tuple[str, bool]:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False), True
        except ValueError:
            pass
    return text, False
