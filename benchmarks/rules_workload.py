"""What the rules benchmark evaluates: the rule sets, and a mix of requests as the proxy sees them.

The 50-rule set is `rules_fixture.yaml`. Smaller sets take rules spread evenly over it (so they
keep its mix of refusals, caps, routes and defaults); larger ones add per-customer rules of the
kind that accumulate as a gateway gains tenants. Contexts are built the way the proxy builds
them: `routing_features` over the decoded body, then `RequestContext.from_features`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from benchmarks.guardrails_workload import guardrails_section, injection_available
from rules.context import RequestContext, routing_features

FIXTURE: Final = Path(__file__).parent / "rules_fixture.yaml"
RULE_MODELS: Final = (
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet",
    "claude-haiku",
    "llama-8b",
    "gemini-flash",
)
"""Public models the fixture routes to; the benchmark config serves each from the plain mock."""
RULE_PROVIDERS: Final = ("mock", "mock-stream")
REQUESTED_MODEL: Final = "gpt-4o"
"""What the gateway load asks for, with and without rules."""
GATEWAY_TAGS: Final = ("team-search",)
GATEWAY_METADATA: Final = {"tier": "free", "env": "prod", "app": "search-api", "region": "us"}
GATEWAY_HEADERS: Final = {
    "x-steerway-tags": ",".join(GATEWAY_TAGS),
    "x-steerway-metadata": msgspec.json.encode(GATEWAY_METADATA).decode(),
}
"""Tags and metadata headers of the gateway load (see `gateway_sample`)."""
REFERENCE_TIME: Final = 1_795_012_200.0
"""Wednesday 2026-11-18 14:30 UTC: contexts carry fixed times, so every run takes the same
branches of the time-of-day rules."""
DEFAULT_WORKSPACE: Final = "00000000000000000000000000000000"


def fixture_references() -> dict[str, Any]:
    """The config sections that define what the fixture's rules name: the guardrails `pii` and
    `toxicity` (a key selects none) and the budget buckets `acme` and `globex` (limits never
    reached). A config with the rules but without them is refused at start."""
    guardrails = guardrails_section(with_injection=injection_available())
    guardrails["definitions"]["toxicity"] = {"kind": "deny_list", "words": ["bench-deny-word"]}
    bucket = [{"limit_usd": 1_000_000, "window": "monthly"}]
    return {"guardrails": guardrails, "budgets": {"buckets": {"acme": bucket, "globex": bucket}}}


def load_fixture(path: Path = FIXTURE) -> list[dict[str, Any]]:
    documents = yaml.safe_load(path.read_text())
    if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents):
        raise ValueError(f"{path}: expected a list of rules")
    return documents


def spread(documents: Sequence[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """`size` of `documents`, evenly spaced and in their order (all of them when size >= len)."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    total = len(documents)
    if size >= total:
        return list(documents)
    return [documents[index * total // size] for index in range(size)]


def customer_rules(count: int) -> list[dict[str, Any]]:
    """Per-customer pins, per-service refusals and per-team routes, in turn; none matches the
    benchmark's requests, so each costs a full test."""
    rules: list[dict[str, Any]] = []
    for index in range(count):
        number = f"{index + 1:03d}"
        kind = index % 3
        if kind == 0:
            rules.append(
                {
                    "id": f"customer-{number}",
                    "priority": 50,
                    "when": {"metadata.customer": f"cust-{number}"},
                    "then": {"route": RULE_MODELS[index % len(RULE_MODELS)]},
                }
            )
        elif kind == 1:
            rules.append(
                {
                    "id": f"service-{number}-mini-only",
                    "priority": 10,
                    "when": {"key_name": f"svc-{number}", "model": {"ne": "gpt-4o-mini"}},
                    "then": {"deny": {"status": 403, "message": f"svc-{number}: mini only."}},
                }
            )
        else:
            rules.append(
                {
                    "id": f"team-{number}",
                    "priority": 50,
                    "when": {"tags": f"team-{number}", "estimated_input_tokens": {"lt": 8000}},
                    "then": {"route": "claude-haiku", "tag": [f"team-{number}-routed"]},
                }
            )
    return rules


def rule_documents(
    size: int, fixture: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """A rule set of `size` rules built around the fixture."""
    base = list(fixture) if fixture is not None else load_fixture()
    if size <= len(base):
        return spread(base, size)
    return base + customer_rules(size - len(base))


@dataclass(frozen=True)
class SampleRequest:
    """One request as the proxy holds it when rules run: the decoded body, its size, headers."""

    name: str
    payload: dict[str, Any]
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    key: str = "master"
    key_name: str = "master key"
    workspace: str = DEFAULT_WORKSPACE
    offset_s: float = 0.0
    """Seconds after REFERENCE_TIME at which the request arrives."""

    @property
    def body_size(self) -> int:
        return len(msgspec.json.encode(self.payload))


def build_context(sample: SampleRequest, body_size: int | None = None) -> RequestContext:
    """As `EntryStage.run` and `SteeringStage.run` do it; pass `body_size` (the length of the
    body as received) to keep encoding it out of a timing."""
    model = sample.payload["model"]
    size = sample.body_size if body_size is None else body_size
    features = routing_features(sample.payload, model, size)
    return RequestContext.from_features(
        features,
        tags=sample.tags,
        metadata=sample.metadata,
        headers=sample.headers,
        key=sample.key,
        key_name=sample.key_name,
        workspace=sample.workspace,
        now=REFERENCE_TIME + sample.offset_s,
        messages=sample.payload.get("messages"),
    )


_TEXT: Final = (
    "the customer asked about the quarterly report and the revenue figures for each region "
    "while the support team reviewed the open tickets the contract renewal terms the delivery "
    "schedule and the invoice totals before the meeting with finance on thursday"
)


def prose(tokens: int, seed: int) -> str:
    """About `tokens` tokens of plain English-looking text (four characters a token)."""
    chooser = random.Random(seed)
    vocabulary = _TEXT.split(" ")
    words: list[str] = []
    size = 0
    while size < tokens * 4:
        word = chooser.choice(vocabulary)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def _sdk_headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = {
        "host": "127.0.0.1:8080",
        "authorization": "Bearer sk-steerway-0123456789abcdef",
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": "OpenAI/Python 1.54.0",
        "x-stainless-lang": "python",
        "x-stainless-package-version": "1.54.0",
    }
    if extra:
        headers.update(extra)
    return headers


def _steerway_headers(tags: Sequence[str], metadata: Mapping[str, Any]) -> dict[str, str]:
    extra: dict[str, str] = {}
    if tags:
        extra["x-steerway-tags"] = ",".join(tags)
    if metadata:
        extra["x-steerway-metadata"] = msgspec.json.encode(metadata).decode()
    return _sdk_headers(extra)


def _sample(name: str, payload: dict[str, Any], **options: Any) -> SampleRequest:
    tags = tuple(options.pop("tags", ()))
    metadata = dict(options.pop("metadata", {}))
    headers = _steerway_headers(tags, metadata) | dict(options.pop("headers", {}))
    return SampleRequest(name, payload, tags, metadata, headers, **options)


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def gateway_sample() -> SampleRequest:
    """The request wrk sends in the gateway part (`lua/chat.lua` with GATEWAY_HEADERS)."""
    return _sample(
        "gateway-load",
        {
            "model": REQUESTED_MODEL,
            "messages": [_user("hello 0123456789ab-1-1")],
            "max_tokens": 16,
        },
        tags=GATEWAY_TAGS,
        metadata=GATEWAY_METADATA,
    )


def sample_requests() -> list[SampleRequest]:
    """The request mix, cycled through in order: short and long prompts, with and without tags
    and metadata, tools, images, JSON mode, streams."""
    support_history = [
        {"role": "system", "content": "You are a support agent for Initech. " + prose(400, 1)}
    ]
    for turn in range(3):
        support_history += [_user(prose(350, 10 + turn)), _assistant(prose(250, 20 + turn))]
    support_history.append(_user("Can you summarise what we agreed and list the next steps?"))
    tool = {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by its number.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
    agent_history: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an assistant with tools. " + prose(150, 2)}
    ]
    for turn in range(4):
        agent_history += [_user(prose(80, 30 + turn)), _assistant(prose(60, 40 + turn))]
    agent_history.append(_user("Where is order 81723?"))
    return [
        _sample(
            "sdk-plain",
            {"model": "gpt-4o", "messages": [_user("What is the capital of Australia?")]},
        ),
        _sample(
            "search-free-tier",
            {
                "model": "gpt-4o",
                "messages": [_user("Rewrite this search query: cheap flights lisbon may")],
                "max_tokens": 64,
            },
            tags=("team-search",),
            metadata={"tier": "free", "env": "prod", "app": "search-api", "region": "us"},
        ),
        _sample(
            "support-long",
            {"model": "gpt-4o", "messages": support_history, "temperature": 0.3},
            tags=("support",),
            metadata={"tier": "gold", "env": "prod", "customer": "initech", "region": "eu"},
            key="k_01jbsupportdesk",
            key_name="support-desk",
            offset_s=3_600,
        ),
        _sample(
            "agent-tools",
            {
                "model": "claude-sonnet",
                "messages": agent_history,
                "tools": [tool],
                "user": "u-5521",
            },
            metadata={"tier": "pro", "app": "assistant"},
            key="k_01jbassistant01",
            key_name="assistant-backend",
        ),
        _sample(
            "vision",
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Read the total from this receipt."},
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://example.com/receipt-2231.png"},
                            },
                        ],
                    }
                ],
                "max_tokens": 200,
            },
            metadata={"app": "docs-ocr", "env": "prod"},
        ),
        _sample(
            "json-extract",
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Extract the fields as JSON."},
                    _user(prose(300, 3)),
                ],
                "response_format": {"type": "json_object"},
            },
            tags=("json", "extraction"),
            metadata={"env": "staging"},
            offset_s=-7_200,
        ),
        _sample(
            "long-document",
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "Summarise the document for an executive."},
                    _user(prose(16_000, 4)),
                ],
                "max_tokens": 1000,
            },
            metadata={"tier": "enterprise", "customer": "acme", "env": "prod"},
            key="k_01jbacmeprod001",
            key_name="acme-prod",
        ),
        _sample(
            "chat-ui-stream",
            {
                "model": "gpt-4o",
                "messages": [
                    _user("hi"),
                    _assistant("Hello! How can I help?"),
                    _user("Plan a three-day trip to Porto."),
                ],
                "stream": True,
                "user": "u-1002",
            },
            tags=("chat-ui",),
            metadata={"env": "prod", "app": "web-chat"},
            offset_s=3 * 86_400 + 30_000,
        ),
    ]
