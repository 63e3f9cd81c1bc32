"""Who and what appears in the demo history: workspaces, their keys and end users, the models
and deployments at the shipped table's prices, the steering rules and the guardrails.

Everything here is fixed or drawn from the seed, so one seed always gives the same cast. The
models, rules and guardrails are those of a gateway configured like `examples/steerway.yaml`
grown up: several providers, retries and fallbacks, rules that route, cap, tag and deny, and
guardrails that block, mask and log.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.demo.ids import DemoIds
from gateway.keys.limits import BudgetLimit
from providers.pricing import ModelPrice, PriceTable
from rules.compiler import compile_rules
from rules.engine import RuleSet

DEMO_MARKER = "demo_data"
"""Set to true in what demo-data writes: each trace's `features`, each workspace's `settings`,
each key's `metadata`. The gateway never puts it in `features`, so a trace without it is real
traffic."""


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    model: str  # the provider's model name, priced by the shipped table
    weight: float
    price: ModelPrice

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class Model:
    """A public model: its deployments and how the demo gateway serves it."""

    name: str
    operation: str  # chat | embeddings
    deployments: tuple[Deployment, ...]
    retries: int
    fallbacks: tuple[str, ...]
    ttft_ms: float  # median wait for the first token
    tokens_per_second: float  # median output speed
    context_window: int


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    failure_rate: float  # share of attempts that fail outside an incident
    timeout_share: float  # of those failures, the share that are timeouts
    throttle_share: float  # of those failures, the share that are 429s
    overloaded_status: int  # the 5xx it answers most when failing


@dataclass(frozen=True, slots=True)
class Workspace:
    workspace_id: str
    slug: str
    name: str
    utc_offset_hours: int  # where its users live: the daily rhythm follows their clock
    share: float  # of all traffic
    guardrails: tuple[str, ...] = ()
    budgets: tuple[BudgetLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class Key:
    key_id: str
    name: str
    workspace: Workspace
    display_prefix: str
    share: float  # of its workspace's traffic
    models: tuple[tuple[str, float], ...]  # public model, weight
    stream_share: float = 0.0
    deterministic_share: float = 0.0  # temperature 0: cacheable
    repeat_share: float = 0.0  # of the cacheable, the share asked before: a cache hit
    cancel_share: float = 0.0  # of streams, the share the client leaves midway
    end_users: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # the key's default tags
    request_tags: tuple[tuple[str, float], ...] = ()  # tag, share of requests sending it
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = ()  # key, values a request picks from
    prompt_tokens: int = 600  # median
    completion_tokens: int = 250  # median
    rpm_limit: int | None = None
    budgets: tuple[BudgetLimit, ...] = ()
    guardrails: tuple[str, ...] = ()
    max_tokens: int | None = None  # sent with every chat request
    night_owl: bool = False  # a batch job: busiest while its workspace sleeps
    bursty: bool = False  # sends nothing but bursts now and then (a load test)
    typo_share: float = 0.0  # asks for a model that does not exist
    huge_prompt_share: float = 0.0  # pastes far more than most context windows hold


@dataclass(frozen=True, slots=True)
class Guardrail:
    name: str
    kind: str
    action: str
    direction: str
    trigger_share: float  # of the requests it checks, the share where it finds something
    entities: tuple[str, ...]  # what it finds (entity types or pattern families)
    latency_us: float  # median time a check takes


@dataclass(frozen=True, slots=True)
class Cast:
    workspaces: tuple[Workspace, ...]
    keys: tuple[Key, ...]
    models: Mapping[str, Model]
    providers: Mapping[str, Provider]
    guardrails: Mapping[str, Guardrail]
    rules: RuleSet


PROVIDERS = (
    Provider("openai", 0.012, 0.2, 0.2, 503),
    Provider("azure-eu", 0.008, 0.2, 0.3, 500),
    Provider("anthropic", 0.016, 0.15, 0.2, 529),
    Provider("gemini", 0.01, 0.3, 0.15, 503),
)
AGAIN = 0.6
"""A provider that just failed a request fails its next attempt this often, the same way:
failures come in runs, so some outlast the retries."""

# name, operation, [(provider, provider model, weight)], retries, fallbacks, ttft ms, tokens/s,
# context window
_MODELS: tuple[tuple[Any, ...], ...] = (
    ("gpt-4o-mini", "chat", [("openai", "gpt-4o-mini", 3), ("azure-eu", "gpt-4o-mini", 1)], 2,
     ("gemini-2.5-flash",), 350, 85, 128_000),
    ("gpt-4o", "chat", [("openai", "gpt-4o", 1)], 1, ("claude-sonnet-4-5",), 480, 55, 128_000),
    ("gpt-4.1", "chat", [("openai", "gpt-4.1", 1)], 1, (), 520, 60, 1_000_000),
    ("gpt-5-mini", "chat", [("openai", "gpt-5-mini", 1)], 0, (), 900, 70, 400_000),
    ("claude-sonnet-4-5", "chat", [("anthropic", "claude-sonnet-4-5", 1)], 1, (), 750, 48,
     200_000),
    ("claude-haiku-4-5", "chat", [("anthropic", "claude-haiku-4-5", 1)], 1, (), 380, 110,
     200_000),
    ("gemini-2.5-flash", "chat", [("gemini", "gemini-2.5-flash", 1)], 1, (), 320, 160, 1_000_000),
    ("gpt-3.5-turbo", "chat", [("openai", "gpt-3.5-turbo", 1)], 0, (), 300, 90, 16_000),
    ("text-embedding-3-small", "embeddings", [("openai", "text-embedding-3-small", 1)], 2, (),
     60, 0, 8_191),
)  # fmt: skip

GUARDRAILS = (
    Guardrail("injection", "prompt_injection", "block", "input", 0.02,
              ("instruction_override", "system_prompt_extraction", "role_play_jailbreak"), 250),
    Guardrail("pii", "pii", "mask", "input", 0.14,
              ("EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "CREDIT_CARD", "IBAN_CODE"), 6_000),
    Guardrail("pii-audit", "pii", "log", "output", 0.05,
              ("EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "LOCATION"), 4_000),
)  # fmt: skip

WORKSPACE_SLUGS = ("acme", "globex", "initech", "umbrella", "hooli")

RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "retire-gpt-35",
        "name": "gpt-3.5-turbo is retired",
        "priority": 5,
        "when": {"model": "gpt-3.5-turbo"},
        "then": {
            "deny": {
                "status": 400,
                "message": "gpt-3.5-turbo was retired on 2026-10-01; use gpt-4o-mini.",
                "code": "model_retired",
            }
        },
    },
    {
        "id": "support-guardrails",
        "name": "Support conversations are checked for personal data and injection",
        "priority": 10,
        "continue": True,
        "when": {"tags": {"contains": "support"}},
        "then": {"guardrails": ["pii", "injection"], "tag": ["guarded"]},
    },
    {
        "id": "free-tier-cap",
        "name": "Free tier answers stay short",
        "priority": 20,
        "continue": True,
        "when": {"metadata.tier": "free"},
        "then": {"cap": {"max_tokens": 512}},
    },
    {
        "id": "batch-to-mini",
        "name": "Batch jobs run on the small model",
        "priority": 30,
        "when": {"all": [{"metadata.job": "batch"}, {"model": "gpt-4o"}]},
        "then": {"route": "gpt-4o-mini", "tag": ["downgraded"]},
    },
    {
        "id": "enterprise-upgrade",
        "name": "Enterprise plans get Sonnet",
        "priority": 40,
        "when": {"all": [{"metadata.plan": "enterprise"}, {"model": "claude-haiku-4-5"}]},
        "then": {"route": "claude-sonnet-4-5"},
    },
)
RULE_FIELDS = frozenset({"model", "tags"})
"""What the rules may read besides `metadata.*`: the generator evaluates them once per distinct
model, tags and metadata, so they must read nothing else."""


BURST_SHARE = 0.012
"""Of all requests, the share a load-test key sends in bursts."""
BURST_MINUTES = 2


@dataclass(frozen=True, slots=True)
class BurstPlan:
    bursts: int
    size: int  # requests in each, over BURST_MINUTES minutes
    rpm_limit: int  # the bursting key's limit: bursts run into it


def burst_plan(requests: int, days: int) -> BurstPlan:
    """Bursts that meet their key's rpm limit at any volume: a few a day, each sending about
    two and a half times the limit a minute."""
    total = min(requests // 10, max(20, round(requests * BURST_SHARE)))
    bursts = max(1, min(total // 20, days * 3))
    size = total // bursts
    return BurstPlan(bursts, size, max(2, size // (BURST_MINUTES * 5 // 2)))


def _budget(limit_usd: str, window: str, soft_percent: float | None = None) -> BudgetLimit:
    return BudgetLimit.from_json(
        {"limit_usd": limit_usd, "window": window, "soft_percent": soft_percent}
    )


def _users(rng: random.Random, count: int) -> tuple[str, ...]:
    return tuple(f"user_{rng.getrandbits(40):010x}" for _ in range(count))


def build_cast(
    seed: int,
    created_at: float,
    *,
    requests_per_day: float,
    bursts: BurstPlan,
    known: Mapping[str, str] | None = None,
    slugs: Mapping[str, str] | None = None,
) -> Cast:
    """The cast for `seed`; workspaces and keys are created at `created_at` (Unix seconds).

    `requests_per_day` sizes the one budget meant to run out (a sandbox key's daily budget),
    `bursts` the load-test key's rpm limit. `slugs` gives the slug to use for a workspace whose
    own is taken; `known` ids to use instead of drawn ones, by (used) workspace slug and by
    `slug/key name`: the demo workspaces and keys already in the database.
    """
    rng = random.Random(f"steerway-demo-cast:{seed}")
    ids = DemoIds(rng)
    known = known or {}
    slugs = slugs or {}
    table = PriceTable.shipped()
    models: dict[str, Model] = {}
    for name, operation, deployments, retries, fallbacks, ttft, speed, window in _MODELS:
        priced = []
        for provider, model, weight in deployments:
            price = table.lookup(model)
            if price is None:
                raise ValueError(f"the price table has no price for {model}")
            priced.append(Deployment(provider, model, float(weight), price))
        models[name] = Model(
            name, operation, tuple(priced), retries, fallbacks, ttft, speed, window
        )

    def workspace(slug: str, name: str, offset: int, share: float, **extra: Any) -> Workspace:
        drawn = ids.at(created_at)
        given = slugs.get(slug, slug)
        return Workspace(known.get(given, drawn), given, name, offset, share, **extra)

    acme = workspace("acme", "Acme Corp", -5, 0.34, budgets=(_budget("5000", "monthly", 80),))
    globex = workspace("globex", "Globex Labs", 1, 0.26)
    initech = workspace("initech", "Initech", -8, 0.2, guardrails=("pii-audit",))
    umbrella = workspace("umbrella", "Umbrella Health", 0, 0.12)
    hooli = workspace("hooli", "Hooli Mobile", 9, 0.08)

    def key(name: str, space: Workspace, share: float, **extra: Any) -> Key:
        prefix = "sk-sw-" + "".join(rng.choice(_PREFIX_ALPHABET) for _ in range(6)) + "..."
        drawn = ids.at(created_at + 0.001)
        key_id = known.get(f"{space.slug}/{name}", drawn)
        return Key(key_id, name, space, prefix, share, **extra)

    # Enough for about 60 % of what the sandbox key spends in a day: it runs out in the afternoon.
    sandbox_requests = Decimal(f"{requests_per_day * hooli.share * 0.2:.3f}")
    sandbox_cost = table.cost("gpt-4o", 1200, 450) or Decimal(0)
    sandbox_budget = max(Decimal("0.03"), sandbox_requests * sandbox_cost * Decimal("0.6"))

    keys = (
        key("web-app", acme, 0.5, models=(("gpt-4o-mini", 6), ("gpt-4o", 2), ("gpt-4.1", 1)),
            stream_share=0.6, deterministic_share=0.1, repeat_share=0.3, cancel_share=0.03,
            end_users=_users(rng, 400), tags=("prod",),
            request_tags=(("feature:chat", 0.6), ("feature:summarize", 0.25)),
            metadata=(("tier", ("free", "free", "pro", "pro", "pro")),),
            budgets=(_budget("2500", "monthly", 80),), rpm_limit=6000),
        key("support-bot", acme, 0.25,
            models=(("claude-sonnet-4-5", 3), ("gpt-4o", 1), ("gpt-3.5-turbo", 0.03)),
            stream_share=0.8, cancel_share=0.02, end_users=_users(rng, 250),
            tags=("prod", "support"), prompt_tokens=1400, completion_tokens=320),
        key("nightly-batch", acme, 0.15, models=(("gpt-4o", 1),), deterministic_share=0.5,
            repeat_share=0.25, metadata=(("job", ("batch",)),), tags=("batch",), night_owl=True,
            prompt_tokens=2500, completion_tokens=400),
        key("search-indexer", acme, 0.1, models=(("text-embedding-3-small", 1),),
            deterministic_share=1.0, repeat_share=0.35, tags=("search",), prompt_tokens=350),
        key("assistant", globex, 0.55,
            models=(("claude-haiku-4-5", 4), ("gpt-5-mini", 2), ("gemini-2.5-flash", 2)),
            stream_share=0.7, cancel_share=0.04, end_users=_users(rng, 300), tags=("prod",),
            metadata=(("plan", ("team", "team", "enterprise")),), typo_share=0.002),
        key("eval-harness", globex, 0.3, models=(("gpt-4.1", 2), ("claude-sonnet-4-5", 1)),
            deterministic_share=1.0, repeat_share=0.45, tags=("eval",), prompt_tokens=900,
            completion_tokens=150),
        key("load-test", globex, 0.0, models=(("gpt-4o-mini", 1),), rpm_limit=bursts.rpm_limit, bursty=True,
            tags=("staging",), prompt_tokens=200, completion_tokens=60),
        key("copilot", initech, 0.7, models=(("gpt-4o", 3), ("claude-sonnet-4-5", 2)),
            stream_share=0.85, cancel_share=0.05, end_users=_users(rng, 180), tags=("prod",),
            request_tags=(("support", 0.1),), prompt_tokens=3000, completion_tokens=300,
            huge_prompt_share=0.004),
        key("reports", initech, 0.3, models=(("gemini-2.5-flash", 3), ("gpt-4o-mini", 1)),
            metadata=(("tier", ("free", "pro")),), tags=("reports",), completion_tokens=700),
        key("triage", umbrella, 1.0, models=(("gpt-4o", 2), ("claude-haiku-4-5", 1)),
            stream_share=0.3, end_users=_users(rng, 120), guardrails=("pii",),
            tags=("clinical",), request_tags=(("support", 0.3),), rpm_limit=600),
        key("mobile-chat", hooli, 0.8, models=(("gpt-4o-mini", 1),), stream_share=0.95,
            cancel_share=0.08, end_users=_users(rng, 600), tags=("prod", "mobile"),
            prompt_tokens=300, completion_tokens=180, typo_share=0.003),
        key("intern-sandbox", hooli, 0.2, models=(("gpt-4o", 3), ("gpt-3.5-turbo", 0.3)),
            end_users=_users(rng, 5), tags=("sandbox",), max_tokens=512,
            budgets=(_budget(f"{sandbox_budget:.2f}", "daily", 75),),
            prompt_tokens=1200, completion_tokens=500),
    )  # fmt: skip
    ruleset = compile_rules(
        list(RULES),
        models=set(models),
        guardrails={g.name for g in GUARDRAILS},
    )
    for rule in ruleset.rules:
        extra = {f for f in rule.fields if f not in RULE_FIELDS and not f.startswith("metadata.")}
        if extra:
            raise ValueError(f"rule {rule.rule_id} reads {sorted(extra)}: not memoisable")
    return Cast(
        workspaces=(acme, globex, initech, umbrella, hooli),
        keys=keys,
        models=models,
        providers={p.name: p for p in PROVIDERS},
        guardrails={g.name: g for g in GUARDRAILS},
        rules=ruleset,
    )


_PREFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
