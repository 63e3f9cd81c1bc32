"""A varied, reproducible history for the search tests: requests in two workspaces under three
keys, every filtered value mixed, some requests sharing a start time to the microsecond.

Each request is built from a `Spec` that says what it is; tests work out which requests a
filter must find from the specs, independently of how the gateway summarises a bundle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gateway.keys.store import KeyStore
from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID
from telemetry.search import OPERATION_ROUTES
from telemetry.writers import BatchWriter

START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

"""Every corpus request starts within the hour after this, far from any live traffic."""
END = START + timedelta(hours=1)
OTHER_WORKSPACE_SLUG = "search-other"


def trace_id_at(moment: datetime) -> str:
    """A trace id as the gateway mints one at `moment`: its milliseconds, then random bits."""
    return f"{int(moment.timestamp() * 1000):012x}{uuid7_hex()[12:]}"


MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5")
PROVIDERS = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-3-5": "anthropic"}
TAGS = ("prod", "beta", "eu")
RULES = ("r-premium", "r-eu")
USERS = ("alice", "bob", None)
TEAMS = ("search", "ads")

OPERATIONS = ("chat", "chat", "messages", "completions")
"""Cycled through by request number, so the random draws stay those of the seed."""


@dataclass
class Spec:
    """What one request of the corpus is."""

    trace_id: str
    request_id: str
    workspace_id: str
    key_id: str
    started_at: datetime
    duration_ms: float
    status: str  # ok | error | cancelled | denied
    model: str
    end_user: str | None
    tags: list[str]
    metadata: dict[str, Any]
    stream: bool
    cache_hit: bool
    retried: bool  # a failed first attempt before the one that served
    cost: Decimal | None
    rules: list[str]
    violations: list[tuple[str, str]]  # (guardrail, action)
    operation: str = "chat"
    interactions: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def provider(self) -> str | None:
        return PROVIDERS[self.model] if self.status != "denied" else None

    @property
    def served_model(self) -> str | None:
        return f"{self.model}-2024" if self.status != "denied" else None

    @property
    def deployment(self) -> str | None:
        return f"{self.provider}-east" if self.interactions else None

    @property
    def http_status(self) -> int:
        return {"ok": 200, "error": 502, "cancelled": 499, "denied": 429}[self.status]

    @property
    def error_type(self) -> str | None:
        return {
            "ok": None,
            "error": "upstream_error",
            "cancelled": "client_disconnected",
            "denied": "rate_limit_exceeded",
        }[self.status]

    @property
    def guardrail_action(self) -> str | None:
        actions = {action for _, action in self.violations}
        return next((a for a in ("block", "mask", "log") if a in actions), None)


@dataclass
class Corpus:
    specs: list[Spec]
    bundles: list[TraceBundle]
    keys: dict[str, str]  # key id -> name
    other_workspace: str

    def ids(self, *, scope: str | None = None, where: Any = None) -> set[str]:
        return {
            s.trace_id
            for s in self.specs
            if (scope is None or s.workspace_id == scope) and (where is None or where(s))
        }


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _build(spec: Spec) -> TraceBundle:
    started = _epoch(spec.started_at)
    ended = started + spec.duration_ms / 1000.0
    workspace = spec.workspace_id
    trace_id = spec.trace_id
    root = span_id_hex()
    bundle = TraceBundle(
        trace=TraceRecord(
            trace_id=trace_id,
            workspace_id=workspace,
            api_key_id=spec.key_id,
            request_id=spec.request_id,
            end_user=spec.end_user,
            route=OPERATION_ROUTES[spec.operation],
            started_at=started,
            ended_at=ended,
            status="error" if spec.status == "denied" else spec.status,
            http_status=spec.http_status,
            requested_model=spec.model,
            provider=spec.provider,
            provider_model=spec.served_model,
            stream=spec.stream,
            error_type=spec.error_type,
            tags=list(spec.tags),
            metadata=dict(spec.metadata),
        ),
        spans=[
            SpanRecord(
                span_id=root,
                trace_id=trace_id,
                workspace_id=workspace,
                name="gateway.request",
                component="gateway",
                started_at=started,
                ended_at=ended,
            )
        ],
    )
    sequence = 0

    def decide(type: str, component: str, **fields: Any) -> None:
        nonlocal sequence
        sequence += 1
        bundle.decisions.append(
            DecisionRecord(
                decision_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace,
                sequence=sequence,
                type=type,
                component=component,
                created_at=started + sequence / 1000.0,
                **fields,
            )
        )
        spec.decisions.append({"type": type, "component": component, **fields})

    decide(
        "rule_evaluation",
        "rules",
        input={"rules_matched": len(spec.rules)},
        output={"tags": ["x"]} if spec.rules else {},
    )
    for rule in spec.rules:
        decide("rule_evaluation", "rules", rule_id=rule, rule_name=rule.upper())
    if spec.status == "denied":
        decide("rate_limit", "admission", output={"allowed": False})
    else:
        decide("rate_limit", "admission", output={"allowed": True})
        attempts = ["error", spec.status] if spec.retried else [spec.status]
        for number, status in enumerate(attempts, start=1):
            served = status == "ok"
            latency = spec.duration_ms * (0.3 if number < len(attempts) else 0.6)
            interaction: dict[str, Any] = {
                "attempt": number,
                "status": status,
                "latency_ms": latency,
                "cache_hit": spec.cache_hit and served,
                "cost": spec.cost if number == len(attempts) else None,
            }
            spec.interactions.append(interaction)
            bundle.interactions.append(
                InteractionRecord(
                    interaction_id=uuid7_hex(),
                    trace_id=trace_id,
                    workspace_id=workspace,
                    api_key_id=spec.key_id,
                    provider=PROVIDERS[spec.model],
                    requested_model=spec.model,
                    provider_model=f"{spec.model}-2024",
                    deployment=f"{PROVIDERS[spec.model]}-east",
                    attempt=number,
                    operation=spec.operation,
                    stream=spec.stream,
                    prompt_tokens=10 if served else None,
                    completion_tokens=20 if served else None,
                    total_tokens=30 if served else None,
                    cost_usd=interaction["cost"],
                    started_at=started + 0.001 * number,
                    ended_at=started + 0.001 * number + latency / 1000.0,
                    ttft_ms=40.0 if served else None,
                    status=status,
                    http_status=200 if served else 502,
                    error_type=None if served else "upstream_error",
                    cache_hit=interaction["cache_hit"],
                )
            )
        decide("model_selection", "router", output={"deployment": spec.deployment})
    for guardrail, action in spec.violations:
        bundle.violations.append(
            GuardrailViolationRecord(
                violation_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace,
                api_key_id=spec.key_id,
                guardrail=guardrail,
                kind="pii" if guardrail == "pii" else "secrets",
                direction="input" if guardrail == "pii" else "output",
                action=action,
                entities={"EMAIL_ADDRESS": 1} if guardrail == "pii" else {"API_KEY": 2},
                score=1.0,
                latency_us=50.0,
                created_at=started + 0.0005,
            )
        )
    return bundle


async def make_corpus(engine: Any, *, count: int = 120, seed: int = 7) -> Corpus:
    """Write `count` requests (keys and the second workspace included) into the database."""
    store = KeyStore(engine)
    other = (await store.create_workspace(OTHER_WORKSPACE_SLUG, name="Other")).workspace_id
    key_one = (await store.create("search-key-one")).info.key_id
    key_two = (await store.create("search-key-two")).info.key_id
    key_three = (await store.create("search-key-three", workspace_id=other)).info.key_id
    owners = [(DEFAULT_WORKSPACE_ID, key_one), (DEFAULT_WORKSPACE_ID, key_two), (other, key_three)]
    chooser = random.Random(seed)
    specs = []
    moment = START
    for n in range(count):
        if n % 4 != 1:  # every fourth request starts when the one before it did
            moment += timedelta(milliseconds=chooser.randint(1, 20_000))
        workspace, key = owners[n % 3]
        status = chooser.choice(("ok", "ok", "ok", "error", "cancelled", "denied"))
        cost = (
            None
            if status == "denied" or chooser.random() < 0.15
            else Decimal(chooser.randint(0, 5000)).scaleb(-6)
        )
        specs.append(
            Spec(
                trace_id=trace_id_at(moment),
                request_id=f"req-{seed}-{n}",
                workspace_id=workspace,
                key_id=key,
                started_at=moment,
                duration_ms=float(chooser.choice((50, 120, 120, 800, 2500))) + n % 2 / 4,
                status=status,
                model=chooser.choice(MODELS),
                end_user=chooser.choice(USERS),
                tags=[tag for tag in TAGS if chooser.random() < 0.4],
                metadata={
                    "team": chooser.choice(TEAMS),
                    "tier": chooser.randint(1, 3),
                    "beta": chooser.random() < 0.5,
                },
                stream=chooser.random() < 0.4,
                operation=OPERATIONS[n % len(OPERATIONS)],
                cache_hit=status == "ok" and chooser.random() < 0.2,
                retried=status != "denied" and chooser.random() < 0.25,
                cost=cost,
                rules=[rule for rule in RULES if chooser.random() < 0.3],
                violations=chooser.choice(
                    ([], [], [("pii", "mask")], [("pii", "log"), ("secrets", "block")])
                ),
            )
        )
    bundles = [_build(spec) for spec in specs]
    await BatchWriter(engine).write(bundles)
    names = {key_one: "search-key-one", key_two: "search-key-two", key_three: "search-key-three"}
    return Corpus(specs, bundles, names, other)
