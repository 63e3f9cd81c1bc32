"""What the limits benchmark runs: its Steerways, their keys, the variants and their requests.

Per backend (Redis, in-process) two Steerways: `limits` with the cache off and one key per
limit setting, and `cache` with the cache on. A variant is one key of one of them with one kind
of request body; a probe checks that each variant does what it is meant to measure (the cache
answers HIT, MISS or BYPASS as expected, rate-limit headers present exactly on rate-limited keys)
before it is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmarks.stores import with_database
from benchmarks.targets import PLAIN_MODEL, Route, SteerwayOptions, Target
from benchmarks.wrk import SCRIPT

REDIS_DB: Final = "12"
"""The Redis database of this benchmark, on the server of `--redis-url`."""
CACHE_SCRIPT: Final = Path(__file__).parent / "lua" / "cache.lua"
MAX_TOKENS: Final = 16

RPM: Final = "10000000"
TPM: Final = "1000000000"
MAX_PARALLEL: Final = "1000"
BUDGET: Final = "100000/monthly"
RATE_OPTIONS: Final = ("--rpm", RPM, "--tpm", TPM, "--max-parallel", MAX_PARALLEL)
BUDGET_OPTIONS: Final = ("--budget", BUDGET)
KEY_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "plain": (),
    "rate": RATE_OPTIONS,
    "budget": BUDGET_OPTIONS,
    "rate-budget": (*RATE_OPTIONS, *BUDGET_OPTIONS),
}
"""The virtual keys and their `steerway keys create` options: limits far above the load, so
every request is checked and none is refused."""

LIMITS: Final = "limits"
CACHE: Final = "cache"
INSTANCE_CONFIG: Final[Mapping[str, Mapping[str, Any]]] = {
    LIMITS: {"cache": {"enabled": False}},
    CACHE: {"cache": {"enabled": True}},
}

PLAIN_BODY: Final = "plain"
"""`lua/chat.lua`: a nonce per request, no temperature (a cache would bypass it)."""
REPEAT_BODY: Final = "repeat"
"""`lua/cache.lua repeat`: one body at temperature 0 on every request."""
UNIQUE_BODY: Final = "unique"
"""`lua/cache.lua unique`: a nonce per request at temperature 0."""
EXPECTED_CACHE_STATUS: Final = {PLAIN_BODY: "BYPASS", REPEAT_BODY: "HIT", UNIQUE_BODY: "MISS"}
BASELINE: Final = "baseline"


@dataclass(frozen=True)
class Variant:
    label: str
    instance: str
    key: str
    body: str

    @property
    def rate_limited(self) -> bool:
        return "--rpm" in KEY_OPTIONS[self.key]

    @property
    def budgeted(self) -> bool:
        return "--budget" in KEY_OPTIONS[self.key]


VARIANTS: Final = (
    Variant(BASELINE, LIMITS, "plain", PLAIN_BODY),
    Variant("rate limits", LIMITS, "rate", PLAIN_BODY),
    Variant("budgets", LIMITS, "budget", PLAIN_BODY),
    Variant("rate limits + budgets", LIMITS, "rate-budget", PLAIN_BODY),
    Variant("cache hit", CACHE, "plain", REPEAT_BODY),
    Variant("cache miss", CACHE, "plain", UNIQUE_BODY),
)


@dataclass(frozen=True)
class Backend:
    label: str
    slug: str
    redis_url: str | None


def scenario_redis_url(redis_url: str) -> str:
    """`--redis-url`'s server, database REDIS_DB."""
    return with_database(redis_url, REDIS_DB)


def backends(redis_url: str) -> tuple[Backend, Backend]:
    return (
        Backend("redis", "redis", scenario_redis_url(redis_url)),
        Backend("in-process", "memory", None),
    )


def row_name(backend: Backend, variant: Variant) -> str:
    return f"{backend.label}: {variant.label}"


def instance_variants(instance: str) -> list[Variant]:
    return [variant for variant in VARIANTS if variant.instance == instance]


def instance_options(backend: Backend, instance: str) -> SteerwayOptions:
    """One Steerway of the benchmark, with the keys its variants use."""
    return SteerwayOptions(
        name=f"steerway-{backend.slug}-{instance}",
        redis_url=backend.redis_url,
        config=INSTANCE_CONFIG[instance],
        keys={variant.key: KEY_OPTIONS[variant.key] for variant in instance_variants(instance)},
    )


def variant_target(started: Target, backend: Backend, variant: Variant) -> Target:
    """The instance's chat route with the variant's key instead of the master key."""
    url = started.route(PLAIN_MODEL).url
    key = started.keys[variant.key].plaintext
    return dataclasses.replace(
        started,
        name=row_name(backend, variant),
        routes={PLAIN_MODEL: Route(url, {"Authorization": f"Bearer {key}"})},
    )


def script_for(variant: Variant) -> tuple[Path, tuple[str, ...]]:
    """The wrk script and its extra arguments for the variant's bodies."""
    if variant.body == PLAIN_BODY:
        return SCRIPT, ()
    return CACHE_SCRIPT, (variant.body,)


def probe_body(variant: Variant) -> dict[str, Any]:
    """A request like the variant's load; for REPEAT_BODY exactly the body `cache.lua` sends."""
    nonce = uuid.uuid4().hex[:12]
    text = "hello cached" if variant.body == REPEAT_BODY else f"hello probe-{nonce}"
    body: dict[str, Any] = {
        "model": PLAIN_MODEL,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": MAX_TOKENS,
    }
    if variant.body != PLAIN_BODY:
        body["temperature"] = 0
    return body


def probe(route: Route, body: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        route.url,
        data=json.dumps(body).encode(),
        headers={**route.headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def probe_problem(variant: Variant, status: int, headers: Mapping[str, str]) -> str | None:
    """Why a probe's answer shows the variant does not do what it is meant to measure."""
    if status != 200:
        return f"probe answered HTTP {status}"
    cache = headers.get("x-steerway-cache")
    expected = EXPECTED_CACHE_STATUS[variant.body]
    if cache != expected:
        return f"probe: x-steerway-cache {cache or 'absent'}, expected {expected}"
    limit = headers.get("x-ratelimit-limit-requests")
    if variant.rate_limited and limit != RPM:
        return f"probe: x-ratelimit-limit-requests {limit or 'absent'}, expected {RPM}"
    if not variant.rate_limited and limit is not None:
        return f"probe: x-ratelimit-limit-requests {limit} on a key without rate limits"
    return None


def check_variant(target: Target, variant: Variant) -> str | None:
    """Probe a variant (twice for cache hits: the first may store the answer)."""
    route = target.route(PLAIN_MODEL)
    body = probe_body(variant)
    status, headers = probe(route, body)
    if variant.body == REPEAT_BODY and status == 200:
        status, headers = probe(route, body)
    return probe_problem(variant, status, headers)
