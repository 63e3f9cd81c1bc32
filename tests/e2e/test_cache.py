"""The response cache through the running gateway, with the in-process and the Redis backend."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest
import redis

from tests.conftest import REDIS_URL, service_missing
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_keys import create_key

RULES = [
    {
        "id": "no-cache-for-fresh",
        "when": {"tags": "fresh"},
        "then": {"cache": "off"},
    },
    {
        "id": "cache-creative",
        "when": {"tags": "creative"},
        "then": {"cache": {"mode": "on", "ttl": 60}},
    },
]


@pytest.fixture(scope="module", params=["in-process", "redis"])
def cached(
    request: pytest.FixtureRequest,
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    env = {}
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            service_missing("Redis", error)
        env["STEERWAY_REDIS_URL"] = REDIS_URL
    process = GatewayProcess(
        backend_database,
        mock_config(mock_provider, rules=RULES),
        tmp_path_factory.mktemp("cached"),
        master_key="sk-master-" + secrets.token_hex(8),
        env=env,
    )
    try:
        yield process
    finally:
        process.stop()


def _ask(
    gateway: GatewayProcess,
    content: str,
    *,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Any:
    answer = gateway.client(api_key).chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": content}],
        extra_headers=headers or {},
        **params,
    )
    _let_it_store(answer.headers)
    return answer


def _let_it_store(headers: Any) -> None:
    """A miss is stored after its answer went out; give the write a moment before re-asking."""
    if headers.get("x-steerway-cache") == "MISS":
        time.sleep(0.2)


def _wait_until_stored(gateway: GatewayProcess, question: str, timeout: float = 10.0) -> None:
    """A streamed miss is stored once the stream has ended, off the request; ask the same
    question without letting the probe store anything until the cache answers it."""
    deadline = time.monotonic() + timeout
    while True:
        probe = _ask(gateway, question, temperature=0, headers={"x-steerway-cache": "no-store"})
        if probe.headers["x-steerway-cache"] == "HIT" or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _unique() -> str:
    return f"question {uuid.uuid4().hex}"


def _upstream(mock: MockProcess) -> int:
    return int(mock.stats()["requests_total"])


def test_a_repeated_deterministic_request_is_answered_from_the_cache(
    cached: GatewayProcess, mock_provider: MockProcess
) -> None:
    question = _unique()
    first = _ask(cached, question, temperature=0)
    before = _upstream(mock_provider)
    second = _ask(cached, question, temperature=0, user="someone-else")
    assert first.headers["x-steerway-cache"] == "MISS"
    assert second.headers["x-steerway-cache"] == "HIT"
    assert _upstream(mock_provider) == before
    assert second.parse().model_dump() == first.parse().model_dump()

    rows = cached.database.wait_rows(
        "SELECT cache_hit, cost_usd, cost_saved_usd, deployment FROM ai_interactions "
        "WHERE trace_id = :trace_id",
        trace_id=second.headers["x-steerway-trace-id"],
    )
    (hit,) = rows
    assert hit["cache_hit"] in (True, 1)
    assert Decimal(str(hit["cost_usd"])) == 0
    original = cached.database.wait_rows(
        "SELECT cost_usd FROM ai_interactions WHERE trace_id = :trace_id",
        trace_id=first.headers["x-steerway-trace-id"],
    )[0]
    assert Decimal(str(hit["cost_saved_usd"])) == Decimal(str(original["cost_usd"])) > 0
    assert hit["deployment"] == "cache"


def test_sampled_requests_are_not_cached_unless_asked(
    cached: GatewayProcess, mock_provider: MockProcess
) -> None:
    question = _unique()
    assert _ask(cached, question).headers["x-steerway-cache"] == "BYPASS"
    assert _ask(cached, question).headers["x-steerway-cache"] == "BYPASS"
    asked = {"x-steerway-cache": "ttl=60"}
    assert _ask(cached, question, headers=asked).headers["x-steerway-cache"] == "MISS"
    assert _ask(cached, question, headers=asked).headers["x-steerway-cache"] == "HIT"


def test_the_header_can_skip_reading_or_writing(cached: GatewayProcess) -> None:
    question = _unique()
    no_store = {"x-steerway-cache": "no-store"}
    assert (
        _ask(cached, question, temperature=0, headers=no_store).headers["x-steerway-cache"]
        == "MISS"
    )
    assert _ask(cached, question, temperature=0).headers["x-steerway-cache"] == "MISS"
    no_cache = {"x-steerway-cache": "no-cache"}
    assert (
        _ask(cached, question, temperature=0, headers=no_cache).headers["x-steerway-cache"]
        == "BYPASS"
    )
    assert _ask(cached, question, temperature=0).headers["x-steerway-cache"] == "HIT"


def test_an_invalid_cache_header_is_a_400(cached: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(cached, "hi", headers={"x-steerway-cache": "ttl=forever"})
    assert caught.value.status_code == 400
    assert "x-steerway-cache" in caught.value.message


def test_rules_switch_the_cache_off_and_on(cached: GatewayProcess) -> None:
    question = _unique()
    fresh = {"x-steerway-tags": "fresh"}
    assert _ask(cached, question, temperature=0, headers=fresh).headers["x-steerway-cache"] == (
        "BYPASS"
    )
    creative = {"x-steerway-tags": "creative"}
    assert (
        _ask(cached, question, temperature=1.2, headers=creative).headers["x-steerway-cache"]
        == "MISS"
    )
    assert (
        _ask(cached, question, temperature=1.2, headers=creative).headers["x-steerway-cache"]
        == "HIT"
    )


def _stream_text(gateway: GatewayProcess, question: str, **params: Any) -> tuple[str, str, Any]:
    with gateway.client().chat.completions.with_streaming_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": question}],
        stream=True,
        temperature=0,
        **params,
    ) as response:
        status = response.headers["x-steerway-cache"]
        chunks = list(response.parse())
    if status == "MISS":
        _wait_until_stored(gateway, question)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = next((c.usage for c in chunks if c.usage is not None), None)
    return status, text, usage


def test_a_streamed_answer_is_stored_and_replayed_as_a_stream(
    cached: GatewayProcess, mock_provider: MockProcess
) -> None:
    question = _unique()
    status, text, _ = _stream_text(cached, question)
    assert status == "MISS" and text
    before = _upstream(mock_provider)
    replayed_status, replayed, usage = _stream_text(
        cached, question, stream_options={"include_usage": True}
    )
    assert replayed_status == "HIT"
    assert replayed == text
    assert usage is not None and usage.completion_tokens > 0
    # The stored answer also serves the same request without streaming.
    plain = _ask(cached, question, temperature=0)
    assert plain.headers["x-steerway-cache"] == "HIT"
    assert plain.parse().choices[0].message.content == text
    assert _upstream(mock_provider) == before


def test_embeddings_are_cached(cached: GatewayProcess, mock_provider: MockProcess) -> None:
    text = _unique()
    client = cached.client()
    first = client.embeddings.with_raw_response.create(model="mock-embedding", input=text)
    _let_it_store(first.headers)
    before = _upstream(mock_provider)
    second = client.embeddings.with_raw_response.create(model="mock-embedding", input=text)
    assert (first.headers["x-steerway-cache"], second.headers["x-steerway-cache"]) == (
        "MISS",
        "HIT",
    )
    assert second.parse().data[0].embedding == first.parse().data[0].embedding
    assert _upstream(mock_provider) == before


def test_workspaces_never_share_answers(cached: GatewayProcess, mock_provider: MockProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    red = create_key(cached, f"red-{tag}", "--workspace", f"red-{tag}")
    blue = create_key(cached, f"blue-{tag}", "--workspace", f"blue-{tag}")
    question = _unique()
    assert (
        _ask(cached, question, api_key=red.plaintext, temperature=0).headers["x-steerway-cache"]
        == "MISS"
    )
    assert (
        _ask(cached, question, api_key=blue.plaintext, temperature=0).headers["x-steerway-cache"]
        == "MISS"
    )
    assert (
        _ask(cached, question, api_key=red.plaintext, temperature=0).headers["x-steerway-cache"]
        == "HIT"
    )


def test_cache_decisions_are_recorded(cached: GatewayProcess) -> None:
    question = _unique()
    _ask(cached, question, temperature=0)
    hit = _ask(cached, question, temperature=0)
    rows = cached.database.wait_rows(
        "SELECT output, reasoning FROM decisions WHERE trace_id = :trace_id "
        "AND type = 'cache_decision'",
        trace_id=hit.headers["x-steerway-trace-id"],
    )
    output = rows[0]["output"]
    assert (json.loads(output) if isinstance(output, str) else output)["status"] == "HIT"
