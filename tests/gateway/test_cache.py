"""The response cache: its key, its policy, and both backends (in-process and a real Redis),
including a Redis that refuses connections and one that never answers."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import redis
from prometheus_client import REGISTRY

from gateway.cache.response_cache import (
    BYPASS,
    IGNORED_FIELDS,
    MAX_TTL_SECONDS,
    MISS,
    CacheDirectives,
    CachedResponse,
    InProcessCache,
    RedisCache,
    ResponseCache,
    cache_key,
    count_request,
    count_saved,
    create_cache,
    parse_cache_header,
    resolve_policy,
)
from rules.actions import CachePolicy
from tests.ports import closed_port

WORKSPACE = "ws_alpha"
MODEL = "gpt-4o-mini"
CHAT: dict[str, Any] = {
    "model": "fast",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "temperature": 0,
}
EMBEDDINGS: dict[str, Any] = {"model": "embed", "input": ["a", "b"]}


def key_of(payload: dict[str, Any], **overrides: Any) -> str:
    arguments = {"workspace_id": WORKSPACE, "resolved_model": MODEL, "operation": "chat"}
    arguments.update(overrides)
    return cache_key(payload=payload, **arguments)


# --- key --------------------------------------------------------------------------------------


def test_the_key_is_a_stable_sha256_independent_of_field_order() -> None:
    reordered = {
        "temperature": 0,
        "messages": [{"content": "What is the capital of France?", "role": "user"}],
        "model": "fast",
    }
    key = key_of(CHAT)

    assert len(key) == 64 and int(key, 16) >= 0
    assert key == key_of(dict(CHAT))
    assert key == key_of(reordered)


def test_whole_floats_and_integers_give_the_same_key() -> None:
    assert key_of({**CHAT, "temperature": 0.0}) == key_of({**CHAT, "temperature": 0})
    assert key_of({**CHAT, "top_p": 1.0}) == key_of({**CHAT, "top_p": 1})
    assert key_of({**CHAT, "temperature": 0.5}) != key_of({**CHAT, "temperature": 0})


OUTPUT_FIELDS: list[tuple[str, Any]] = [
    ("messages", [{"role": "user", "content": "What is the capital of Spain?"}]),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    ("tool_choice", "required"),
    ("functions", [{"name": "f", "parameters": {}}]),
    ("function_call", "auto"),
    ("response_format", {"type": "json_object"}),
    ("temperature", 0.7),
    ("top_p", 0.5),
    ("seed", 42),
    ("n", 2),
    ("stop", ["\n"]),
    ("max_tokens", 16),
    ("max_completion_tokens", 16),
    ("presence_penalty", 0.5),
    ("frequency_penalty", 0.5),
    ("logit_bias", {"50256": -100}),
    ("logprobs", True),
    ("top_logprobs", 3),
    ("parallel_tool_calls", False),
    ("reasoning_effort", "low"),
    ("modalities", ["text", "audio"]),
    ("audio", {"voice": "alloy", "format": "wav"}),
    ("prediction", {"type": "content", "content": "Paris"}),
    ("a_parameter_nobody_has_heard_of", 1),
]


@pytest.mark.parametrize(("field", "value"), OUTPUT_FIELDS, ids=[f for f, _ in OUTPUT_FIELDS])
def test_every_field_that_affects_the_answer_changes_the_key(field: str, value: Any) -> None:
    assert key_of({**CHAT, field: value}) != key_of(CHAT)


IGNORED: list[tuple[str, Any]] = [
    ("model", "another-alias"),
    ("user", "end-user-42"),
    ("safety_identifier", "hashed-user"),
    ("stream", True),
    ("stream_options", {"include_usage": True}),
    ("metadata", {"team": "search"}),
    ("store", True),
    ("service_tier", "flex"),
    ("prompt_cache_key", "tenant-7"),
]


@pytest.mark.parametrize(("field", "value"), IGNORED, ids=[f for f, _ in IGNORED])
def test_fields_that_do_not_affect_the_answer_leave_the_key_alone(field: str, value: Any) -> None:
    assert field in IGNORED_FIELDS
    assert key_of({**CHAT, field: value}) == key_of(CHAT)


def test_workspace_resolved_model_and_operation_are_part_of_the_key() -> None:
    key = key_of(CHAT)
    assert key_of(CHAT, workspace_id="ws_beta") != key
    assert key_of(CHAT, resolved_model="gpt-4o") != key
    assert key_of(CHAT, operation="embeddings") != key


@pytest.mark.parametrize(
    ("field", "value"),
    [("input", ["a", "c"]), ("encoding_format", "base64"), ("dimensions", 256), ("extra", 1)],
)
def test_embedding_fields_that_affect_the_answer_change_the_key(field: str, value: Any) -> None:
    base = key_of(EMBEDDINGS, operation="embeddings")
    assert key_of({**EMBEDDINGS, field: value}, operation="embeddings") != base
    assert key_of({**EMBEDDINGS, "user": "u1"}, operation="embeddings") == base


# --- header and policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, CacheDirectives()),
        ("", CacheDirectives()),
        ("no-cache", CacheDirectives(no_cache=True)),
        ("No-Store", CacheDirectives(no_store=True)),
        ("ttl=60", CacheDirectives(ttl=60)),
        (" no-cache , ttl = 5 ", CacheDirectives(no_cache=True, ttl=5)),
        ("no-cache,no-store", CacheDirectives(no_cache=True, no_store=True)),
        (f"ttl={MAX_TTL_SECONDS}", CacheDirectives(ttl=MAX_TTL_SECONDS)),
    ],
)
def test_the_header_directives(header: str | None, expected: CacheDirectives) -> None:
    assert parse_cache_header(header) == expected


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        ("no-caching", "Invalid x-steerway-cache directive 'no-caching'"),
        ("no-cache,,", "Invalid x-steerway-cache directive ''"),
        ("ttl=abc", "ttl 'abc'"),
        ("ttl=0", "ttl '0'"),
        ("ttl=-5", "ttl '-5'"),
        ("ttl=1.5", "ttl '1.5'"),
        ("ttl=", "ttl ''"),
        (f"ttl={MAX_TTL_SECONDS + 1}", "a whole number of seconds"),
        ("ttl=5,ttl=6", "more than once"),
        ("no-cache," * 40, "longer than"),
    ],
)
def test_invalid_headers_are_refused(header: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="x-steerway-cache") as raised:
        parse_cache_header(header)
    assert complaint in str(raised.value)


def decide(
    *,
    enabled: bool = True,
    rule: CachePolicy | None = None,
    header: str | None = None,
    payload: dict[str, Any] | None = None,
    operation: str = "chat",
) -> tuple[bool, bool, int, str]:
    decision = resolve_policy(
        operation=operation,
        default_ttl=300,
        enabled=enabled,
        rule=rule,
        header=header,
        payload=CHAT if payload is None else payload,
    )
    assert decision.reason
    assert decision.active == (decision.read or decision.write)
    return decision.read, decision.write, decision.ttl, decision.status


ON = CachePolicy(mode="on")
OFF = CachePolicy(mode="off")
SAMPLED = {**CHAT, "temperature": 0.8}
DEFAULT_TEMPERATURE = {k: v for k, v in CHAT.items() if k != "temperature"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, (True, True, 300, MISS)),
        ({"enabled": False}, (False, False, 300, BYPASS)),
        ({"enabled": False, "rule": ON}, (True, True, 300, MISS)),
        ({"enabled": False, "header": "ttl=60"}, (False, False, 300, BYPASS)),
        ({"rule": OFF}, (False, False, 300, BYPASS)),
        ({"rule": OFF, "header": "ttl=60"}, (False, False, 300, BYPASS)),
        ({"rule": CachePolicy(ttl=30)}, (True, True, 30, MISS)),
        ({"rule": CachePolicy(ttl=30), "header": "ttl=7"}, (True, True, 7, MISS)),
        ({"header": "no-cache"}, (False, True, 300, BYPASS)),
        ({"header": "no-store"}, (True, False, 300, MISS)),
        ({"header": "no-store, ttl=9"}, (True, False, 9, MISS)),
        ({"header": "no-cache, no-store"}, (False, False, 300, BYPASS)),
        ({"header": "ttl=60"}, (True, True, 60, MISS)),
        ({"payload": SAMPLED}, (False, False, 300, BYPASS)),
        ({"payload": DEFAULT_TEMPERATURE}, (False, False, 300, BYPASS)),
        ({"payload": {**CHAT, "temperature": None}}, (False, False, 300, BYPASS)),
        ({"payload": SAMPLED, "rule": ON}, (True, True, 300, MISS)),
        ({"payload": SAMPLED, "header": "ttl=60"}, (True, True, 60, MISS)),
        ({"payload": SAMPLED, "header": "no-cache"}, (False, False, 300, BYPASS)),
        ({"payload": DEFAULT_TEMPERATURE, "header": "ttl=60"}, (True, True, 60, MISS)),
        ({"payload": {**CHAT, "n": 3}}, (True, True, 300, MISS)),
        ({"payload": {**SAMPLED, "n": 3}, "rule": ON}, (True, True, 300, MISS)),
        ({"payload": EMBEDDINGS, "operation": "embeddings"}, (True, True, 300, MISS)),
    ],
)
def test_the_policy_matrix(arguments: dict[str, Any], expected: tuple) -> None:
    assert decide(**arguments) == expected


def test_an_invalid_header_raises_even_when_the_cache_is_off() -> None:
    with pytest.raises(ValueError, match="x-steerway-cache"):
        decide(enabled=False, header="ttl=never")


def test_the_reasons_say_why() -> None:
    sampled = resolve_policy(
        operation="chat", default_ttl=60, enabled=True, rule=None, header=None, payload=SAMPLED
    )
    assert sampled.reason.startswith("temperature 0.8 samples the answer")
    absent = resolve_policy(
        operation="chat",
        default_ttl=60,
        enabled=True,
        rule=None,
        header=None,
        payload=DEFAULT_TEMPERATURE,
    )
    assert "no temperature (OpenAI's default is 1)" in absent.reason
    by_rule = resolve_policy(
        operation="chat",
        default_ttl=60,
        enabled=False,
        rule=CachePolicy(ttl=5),
        header="no-store",
        payload=CHAT,
    )
    assert "rule turned the cache on" in by_rule.reason
    assert "no-store" in by_rule.reason
    assert "ttl 5s from the rule's ttl" in by_rule.reason


# --- backends ---------------------------------------------------------------------------------


def entry(text: str = "Paris.", cost: str | None = "0.000123") -> CachedResponse:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fast",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    return CachedResponse(
        body=msgspec.json.encode(body),
        provider="openai",
        provider_model=MODEL,
        prompt_tokens=12,
        completion_tokens=3,
        cached_tokens=4,
        cost_usd=None if cost is None else Decimal(cost),
        created_at=1_700_000_000.5,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    cache: ResponseCache
    wait: Callable[[float], Awaitable[None]]
    """Let `seconds` pass for the cache's expiry clock."""


@pytest.fixture(params=["in-process", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        cache: ResponseCache = RedisCache(url, key_prefix=f"test:{uuid.uuid4().hex}:")
        subject = Backend(cache, asyncio.sleep)
    else:
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.now += seconds

        subject = Backend(InProcessCache(1 << 20, clock=clock), advance)
    await subject.cache.start()
    try:
        yield subject
    finally:
        await subject.cache.close()


async def test_a_stored_entry_comes_back_whole(backend: Backend) -> None:
    cache = backend.cache
    key = key_of(CHAT)
    assert (await cache.get(key)).entry is None

    assert await cache.set(key, entry(), 60)
    found = await cache.get(key)

    assert found.hit and not found.degraded and not found.refused
    assert found.entry == entry()
    assert found.entry is not None and found.entry.cost_usd == Decimal("0.000123")
    assert found.entry.usage.total_tokens == 15


async def test_an_entry_without_cost_or_usage_round_trips(backend: Backend) -> None:
    bare = CachedResponse(body=b"{}", provider="p", provider_model="m")
    assert await backend.cache.set("k", bare, 60)
    found = (await backend.cache.get("k")).entry
    assert found == bare
    assert found is not None and found.cost_usd is None and found.usage.total_tokens is None


async def test_workspaces_never_share_an_entry(backend: Backend) -> None:
    await backend.cache.set(key_of(CHAT, workspace_id="ws_a"), entry("for a"), 60)

    assert (await backend.cache.get(key_of(CHAT, workspace_id="ws_b"))).entry is None
    found = (await backend.cache.get(key_of(CHAT, workspace_id="ws_a"))).entry
    assert found is not None and b"for a" in found.body


async def test_a_second_set_replaces_the_entry(backend: Backend) -> None:
    await backend.cache.set("k", entry("first"), 60)
    await backend.cache.set("k", entry("second"), 60)
    found = (await backend.cache.get("k")).entry
    assert found is not None and b"second" in found.body


async def test_entries_expire_after_their_ttl(backend: Backend) -> None:
    await backend.cache.set("short", entry("short"), 0.2)
    await backend.cache.set("long", entry("long"), 60)
    assert (await backend.cache.get("short")).hit

    await backend.wait(0.5)

    assert (await backend.cache.get("short")).entry is None
    assert (await backend.cache.get("long")).hit


async def test_a_zero_ttl_stores_nothing(backend: Backend) -> None:
    assert not await backend.cache.set("k", entry(), 0)
    assert (await backend.cache.get("k")).entry is None


# --- in-process LRU ---------------------------------------------------------------------------


def cache_bytes_gauge() -> float | None:
    return REGISTRY.get_sample_value("steerway_cache_bytes")


def size_of(key: str, item: CachedResponse) -> int:
    return len(key) + len(msgspec.msgpack.encode(item))


async def test_the_lru_is_bounded_by_bytes_and_evicts_the_least_recently_used() -> None:
    item = entry()
    one = size_of("a", item)
    cache = InProcessCache(3 * one + one // 2)
    for key in ("a", "b", "c"):
        assert await cache.set(key, item, 60)
    assert cache.bytes_in_use == 3 * one
    assert cache_bytes_gauge() == 3 * one

    assert (await cache.get("a")).hit  # "b" is now the least recently used
    assert await cache.set("d", item, 60)

    assert (await cache.get("b")).entry is None
    assert [(await cache.get(key)).hit for key in ("a", "c", "d")] == [True, True, True]
    assert len(cache) == 3
    assert cache.bytes_in_use == 3 * one <= cache.max_bytes
    assert cache_bytes_gauge() == 3 * one


async def test_a_large_entry_evicts_as_many_as_it_needs() -> None:
    small = entry()
    one = size_of("a", small)
    cache = InProcessCache(4 * one)
    for key in ("a", "b", "c", "d"):
        await cache.set(key, small, 60)
    large = entry("x" * (one + one // 2))
    assert 2 * one < size_of("e", large) <= 3 * one

    assert await cache.set("e", large, 60)

    kept = [key for key in ("a", "b", "c", "d") if (await cache.get(key)).hit]
    assert kept == ["d"]
    assert (await cache.get("e")).hit
    assert cache.bytes_in_use <= cache.max_bytes


async def test_an_entry_larger_than_the_cache_is_not_stored() -> None:
    cache = InProcessCache(200)
    await cache.set("small", CachedResponse(body=b"{}", provider="p", provider_model="m"), 60)
    assert not await cache.set("big", entry("y" * 500), 60)
    assert (await cache.get("big")).entry is None
    assert (await cache.get("small")).hit


async def test_expired_entries_give_their_bytes_back() -> None:
    clock = FakeClock()
    cache = InProcessCache(1 << 20, clock=clock)
    await cache.set("k", entry(), 10)
    clock.now += 10
    assert (await cache.get("k")).entry is None
    assert cache.bytes_in_use == 0 and len(cache) == 0
    assert cache_bytes_gauge() == 0


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        InProcessCache(-1)


# --- Redis specifics ----------------------------------------------------------------------------


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


async def test_redis_holds_the_entry_under_the_prefix_with_its_ttl(
    redis_url: str, redis_client: redis.Redis
) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    cache = RedisCache(redis_url, key_prefix=prefix)
    try:
        key = key_of(CHAT)
        assert await cache.set(key, entry(), 30)
        ttl_ms = redis_client.pttl(prefix + key)
        assert 0 < ttl_ms <= 30_000
        stored = redis_client.get(prefix + key)
        assert isinstance(stored, bytes)
        assert msgspec.msgpack.decode(stored, type=CachedResponse) == entry()
    finally:
        await cache.close()


async def test_two_workers_share_entries_through_redis(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = (RedisCache(redis_url, key_prefix=prefix) for _ in range(2))
    try:
        await first.set("shared", entry("shared"), 30)
        assert await second.get("shared") == (await first.get("shared"))
        assert (await second.get("shared")).hit
    finally:
        await first.close()
        await second.close()


async def test_an_unreadable_redis_value_is_a_plain_miss(
    redis_url: str, redis_client: redis.Redis
) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    redis_client.set(prefix + "garbage", b"\xc1 not msgpack")
    cache = RedisCache(redis_url, key_prefix=prefix)
    try:
        found = await cache.get("garbage")
        assert found.entry is None and not found.degraded
    finally:
        await cache.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def redis_errors() -> float:
    return REGISTRY.get_sample_value("steerway_redis_errors_total", {"concern": "cache"}) or 0.0


async def test_redis_refusing_connections_is_a_degraded_miss() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.2)
    errors = redis_errors()
    try:
        await cache.start()
        found = await cache.get("k")
        assert found.entry is None and found.degraded and not found.refused
        assert not await cache.set("k", entry(), 30)
        assert cache.degraded
        assert redis_errors() > errors
    finally:
        await cache.close()


async def test_redis_that_never_answers_times_out_into_a_degraded_miss(silent_server: int) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{silent_server}/0", timeout=0.1, pause=0)
    try:
        found = await asyncio.wait_for(cache.get("k"), timeout=10)
        assert found.entry is None and found.degraded
        assert not await asyncio.wait_for(cache.set("k", entry(), 30), timeout=10)
        assert cache.redis_errors == 2
    finally:
        await cache.close()


async def test_after_an_error_redis_is_left_alone_for_the_pause() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{closed_port()}/0", pause=60)
    try:
        for _ in range(5):
            assert (await cache.get("k")).degraded
            assert not await cache.set("k", entry(), 30)
        assert cache.redis_errors == 1
    finally:
        await cache.close()


async def test_fail_closed_refuses_the_lookup() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{closed_port()}/0", on_error="closed")
    try:
        found = await cache.get("k")
        assert found.refused and found.degraded and found.entry is None
    finally:
        await cache.close()


def test_redis_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="on_redis_error"):
        RedisCache("redis://127.0.0.1:6379/0", on_error="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        RedisCache("redis://127.0.0.1:6379/0", timeout=0)
    with pytest.raises(ValueError, match="invalid Redis URL"):
        RedisCache("http://127.0.0.1:6379/0")


async def test_create_cache_picks_the_backend() -> None:
    memory = create_cache(None, 1024)
    shared = create_cache("redis://127.0.0.1:6379/15", 1024, timeout=0.1, on_error="closed")
    try:
        assert isinstance(memory, InProcessCache) and memory.max_bytes == 1024
        assert isinstance(shared, RedisCache)
        assert (memory.backend, shared.backend) == ("memory", "redis")
    finally:
        await memory.close()
        await shared.close()


# --- metrics ----------------------------------------------------------------------------------


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_outcomes_and_savings_are_counted() -> None:
    hit = {"operation": "chat", "result": "hit"}
    saved = {"provider": "openai", "model": "fast"}
    hits, savings = (
        sample("steerway_cache_requests_total", hit),
        sample("steerway_cache_saved_usd_total", saved),
    )

    count_request("chat", "HIT")
    count_saved("openai", "fast", Decimal("0.25"))
    count_saved("openai", "fast", None)

    assert sample("steerway_cache_requests_total", hit) == hits + 1
    assert sample("steerway_cache_saved_usd_total", saved) == pytest.approx(savings + 0.25)
