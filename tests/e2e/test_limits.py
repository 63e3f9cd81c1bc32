"""Keys' limits through the running gateway: allowed models, default tags, rate limits, budgets
and the Redis failure policy, each with the in-process and the Redis backend."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
import redis

from telemetry.schema import money_from_sql
from tests.conftest import REDIS_URL, service_missing
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, free_port, mock_config
from tests.e2e.test_keys import create_key

# Output tokens cost 1,000 USD per million and input is free, so a request with max_tokens=5
# (the mock cuts its reply to exactly that) costs exactly 0.005 USD, and the gateway reserves
# exactly what it will charge.
METERED = {
    "metered": [
        {
            "provider": "mock",
            "model": "mock-gpt",
            "price": {"input_per_million": 0, "output_per_million": 1000},
        }
    ]
}
REQUEST_COST = Decimal("0.005")


def _config(mock: MockProcess, **extra: Any) -> dict[str, Any]:
    config = mock_config(mock, **extra)
    config["models"] = {**config["models"], **METERED}
    config["cache"] = {"enabled": False}
    return config


@pytest.fixture(scope="module", params=["in-process", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """The limits' backend as the gateway's environment; Redis starts empty. Tests keep apart
    with keys of their own, whose limits and spend Redis holds under the key's id."""
    if request.param == "in-process":
        return {}
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.flushdb()
    except redis.RedisError as error:
        service_missing("Redis", error)
    return {"STEERWAY_REDIS_URL": REDIS_URL}


@pytest.fixture(scope="module")
def limits_gateway(
    backend: dict[str, str],
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway per database and backend with the module's plain config, shared by the tests
    that need nothing else of it: each makes keys of its own."""
    yield from _shared_gateway(backend_database, mock_provider, tmp_path_factory, backend)


@pytest.fixture(scope="module")
def in_process_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """As `limits_gateway`, with the in-process backend only, for tests run on that alone."""
    yield from _shared_gateway(backend_database, mock_provider, tmp_path_factory, {})


def _shared_gateway(
    database: Database,
    mock: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str],
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(database, _config(mock), tmp_path_factory.mktemp("limits"), env=env)
    try:
        yield process
    finally:
        process.stop()


def _chat(gateway: GatewayProcess, key: str, model: str = "mock-gpt", **params: Any) -> Any:
    return gateway.client(key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello there"}], **params
    )


def test_a_key_may_use_only_its_models_and_adds_its_tags(
    in_process_gateway: GatewayProcess,
) -> None:
    gateway = in_process_gateway
    tag = uuid.uuid4().hex[:6]
    key = create_key(
        gateway, f"narrow-{tag}", "--models", "mock-*", "--tag", "team-a", "--tag", "batch"
    )
    allowed = gateway.client(key.plaintext).chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-steerway-tags": "urgent"},
    )
    trace = gateway.database.wait_rows(
        "SELECT tags FROM traces WHERE trace_id = :trace_id",
        trace_id=allowed.headers["x-steerway-trace-id"],
    )[0]
    tags = json.loads(trace["tags"]) if isinstance(trace["tags"], str) else trace["tags"]
    assert tags == ["urgent", "team-a", "batch"]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(gateway, key.plaintext, model="split")
    assert caught.value.code == "model_not_allowed"
    assert "split" in caught.value.message


def test_requests_per_minute_are_limited_with_openai_headers(
    limits_gateway: GatewayProcess,
) -> None:
    gateway = limits_gateway
    key = create_key(gateway, f"rpm-{uuid.uuid4().hex[:6]}", "--rpm", "3", "--tpm", "100000")
    first = _chat(gateway, key.plaintext)
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    _chat(gateway, key.plaintext)
    _chat(gateway, key.plaintext)
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(gateway, key.plaintext)
    refused = caught.value
    assert refused.code == "rate_limit_exceeded"
    assert "requests per minute" in refused.message
    assert int(refused.response.headers["retry-after"]) >= 1
    assert refused.response.headers["x-ratelimit-remaining-requests"] == "0"
    decisions = gateway.database.wait_rows(
        "SELECT reasoning FROM decisions WHERE trace_id = :trace_id AND type = 'rate_limit'",
        trace_id=refused.response.headers["x-steerway-trace-id"],
    )
    assert "requests per minute" in decisions[0]["reasoning"]


def test_a_rate_limit_holds_across_two_workers_sharing_redis(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        service_missing("Redis", error)
    # A Redis call slower than `redis.timeout_ms` lets a request through (the limits fail open by
    # default); on a loaded machine 200 ms is not enough, and this test is about the sharing.
    config = {**_config(mock_provider), "redis": {"timeout_ms": 5000}}
    gateway = start_gateway(
        backend_database, config, workers=2, env={"STEERWAY_REDIS_URL": REDIS_URL}
    )
    limit = 10
    key = create_key(gateway, f"shared-{uuid.uuid4().hex[:6]}", "--rpm", str(limit))

    async def hammer() -> tuple[list[int], float]:
        started = time.monotonic()
        # A fresh connection per request, so the kernel spreads them over both workers.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30, limits=limits) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/v1/chat/completions",
                        headers={"Authorization": f"Bearer {key.plaintext}"},
                        json={"model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]},
                    )
                    for _ in range(60)
                )
            )
        return [a.status_code for a in answers], time.monotonic() - started

    statuses, elapsed = asyncio.run(hammer())
    served = statuses.count(200)
    # GCRA: the full allowance, plus one more request per 60/limit seconds that passed.
    assert limit <= served <= limit + int(elapsed / (60 / limit))
    assert statuses.count(429) == 60 - served


def test_a_budget_admits_exactly_what_it_can_pay_for(limits_gateway: GatewayProcess) -> None:
    gateway = limits_gateway
    admitted = 37
    budget = REQUEST_COST * admitted
    key = create_key(gateway, f"budget-{uuid.uuid4().hex[:6]}", "--budget", f"{budget}/total")

    async def spend() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60, limits=limits) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/v1/chat/completions",
                        headers={"Authorization": f"Bearer {key.plaintext}"},
                        json={
                            "model": "metered",
                            "max_tokens": 5,
                            "messages": [{"role": "user", "content": f"question {i}"}],
                        },
                    )
                    for i in range(200)
                )
            )

    answers = asyncio.run(spend())
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == admitted
    assert statuses.count(429) == 200 - admitted
    refusal = next(answer for answer in answers if answer.status_code == 429).json()["error"]
    assert refusal["type"] == "insufficient_quota"
    assert refusal["code"] == "insufficient_quota"
    assert "key" in refusal["message"] and str(budget) in refusal["message"]

    costs = gateway.database.wait_rows(
        "SELECT cost_usd FROM ai_interactions WHERE api_key_id = :key AND status = 'ok'",
        count=admitted,
        key=key.key_id,
    )
    assert len(costs) == admitted
    dialect = "sqlite" if gateway.database.url.startswith("sqlite") else "postgresql"
    assert sum(money_from_sql(row["cost_usd"], dialect) or 0 for row in costs) == budget
    spent = gateway.database.wait_rows(
        "SELECT spent_micros FROM budget_spend WHERE subject = :key AND spent_micros = :micros",
        key=key.key_id,
        micros=int(budget * 1_000_000),
    )
    assert [row["spent_micros"] for row in spent] == [int(budget * 1_000_000)]


def test_spend_survives_a_restart(
    backend: dict[str, str],
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = start_gateway(backend_database, _config(mock_provider), env=backend)
    key = create_key(
        gateway, f"restart-{uuid.uuid4().hex[:6]}", "--budget", f"{REQUEST_COST * 2}/monthly"
    )
    _chat(gateway, key.plaintext, model="metered", max_tokens=5)
    gateway.stop()
    if backend:
        redis.Redis.from_url(REDIS_URL).flushdb()  # Redis lost everything: rebuilt from the DB
    again = start_gateway(backend_database, _config(mock_provider), env=backend)
    _chat(again, key.plaintext, model="metered", max_tokens=5)
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(again, key.plaintext, model="metered", max_tokens=5)
    assert caught.value.code == "insufficient_quota"


def test_end_user_budgets_count_each_user_apart(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    config = _config(
        mock_provider,
        budgets={"end_user": {"limit_usd": str(REQUEST_COST), "window": "daily"}},
    )
    gateway = start_gateway(
        backend_database, config, master_key="sk-master-" + secrets.token_hex(8)
    )
    for user in ("alice", "bob"):
        _chat(gateway, gateway.master_key or "", model="metered", max_tokens=5, user=user)
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(gateway, gateway.master_key or "", model="metered", max_tokens=5, user="alice")
    assert "end_user" in caught.value.message or "end user" in caught.value.message


@pytest.mark.parametrize(
    ("budgets_policy", "expected"), [("closed", 503), ("open", 200)], ids=["closed", "open"]
)
def test_redis_down_follows_each_concerns_policy(
    budgets_policy: str,
    expected: int,
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    config = _config(mock_provider, budgets={"on_redis_error": budgets_policy})
    config["cache"] = {"enabled": True}
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    gateway = start_gateway(backend_database, config, env={"STEERWAY_REDIS_URL": unreachable})
    key = create_key(
        gateway, f"down-{uuid.uuid4().hex[:6]}", "--rpm", "100", "--budget", "10/monthly"
    )
    started = time.monotonic()
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        answer = http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key.plaintext}"},
            json={
                "model": "metered",
                "max_tokens": 5,
                "temperature": 0,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
    assert time.monotonic() - started < 10  # short Redis timeouts: never a hung request
    assert answer.status_code == expected, answer.text
    decisions = gateway.database.wait_rows(
        "SELECT type, output FROM decisions WHERE trace_id = :trace_id",
        trace_id=answer.headers["x-steerway-trace-id"],
        count=3 if expected == 200 else 1,
    )
    outputs = {
        row["type"]: json.loads(row["output"]) if isinstance(row["output"], str) else row["output"]
        for row in decisions
    }
    if expected == 503:
        assert answer.json()["error"]["code"] == "limits_unavailable"
        assert outputs["budget_check"]["unavailable"] is True
        assert "rate_limit" not in outputs  # refused before: nothing else was consumed
    else:
        assert outputs["budget_check"]["degraded"] is True
        assert outputs["rate_limit"]["degraded"] is True  # rate limits fail open by default
        assert outputs["cache_decision"]["degraded"] is True


def test_parallel_requests_are_limited_and_slots_come_back(limits_gateway: GatewayProcess) -> None:
    gateway = limits_gateway
    key = create_key(gateway, f"parallel-{uuid.uuid4().hex[:6]}", "--max-parallel", "1")

    async def two_at_once() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:

            def ask(latency_ms: int) -> Any:
                return http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key.plaintext}"},
                    json={
                        "model": "mock-gpt",
                        "messages": [{"role": "user", "content": "hi"}],
                        "mock": {"latency_ms": latency_ms},
                    },
                )

            slow = asyncio.ensure_future(ask(1500))
            await asyncio.sleep(0.5)
            quick = await ask(0)
            return [await slow, quick]

    slow, quick = asyncio.run(two_at_once())
    assert slow.status_code == 200
    assert quick.status_code == 429
    assert "parallel" in quick.json()["error"]["message"]
    assert _chat(gateway, key.plaintext).http_response.status_code == 200  # the slot is back


def test_rules_see_how_much_of_the_budget_is_spent(
    backend: dict[str, str],
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    rules = [
        {
            "id": "tighten-after-half",
            "when": {"budget.key_percent": {"gte": 50}},
            "then": {"cap": {"max_tokens": 2}},
        }
    ]
    gateway = start_gateway(backend_database, _config(mock_provider, rules=rules), env=backend)
    key = create_key(
        gateway, f"percent-{uuid.uuid4().hex[:6]}", "--budget", f"{REQUEST_COST * 2}/daily"
    )
    first = _chat(gateway, key.plaintext, model="metered", max_tokens=5)
    assert "x-steerway-rules" not in first.headers
    time.sleep(1.2)  # the shared view of spend is at most a second old
    second = _chat(gateway, key.plaintext, model="metered", max_tokens=5)
    assert second.headers["x-steerway-rules"] == "tighten-after-half"
    assert mock_provider.last_request()["body"]["max_tokens"] == 2
    evidence = gateway.database.wait_rows(
        "SELECT input FROM decisions WHERE trace_id = :trace_id AND rule_id IS NOT NULL",
        trace_id=second.headers["x-steerway-trace-id"],
    )[0]["input"]
    assert "budget.key_percent gte 50 (value 50" in str(evidence)


def test_crossing_a_soft_limit_is_recorded(limits_gateway: GatewayProcess) -> None:
    gateway = limits_gateway
    key = create_key(
        gateway, f"soft-{uuid.uuid4().hex[:6]}", "--budget", f"{REQUEST_COST * 2}/weekly@50"
    )
    answer = _chat(gateway, key.plaintext, model="metered", max_tokens=5)
    rows = gateway.database.wait_rows(
        "SELECT reasoning FROM decisions WHERE trace_id = :trace_id AND type = 'budget_check' "
        "AND reasoning LIKE '%soft limit%'",
        trace_id=answer.headers["x-steerway-trace-id"],
    )
    assert rows[0]["reasoning"] == "key budget passed its soft limit of 50% (50% spent)"
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'steerway_budget_soft_limit_total{scope="key"} 1.0' in metrics


def test_a_request_refused_by_a_budget_uses_no_rate_limit(
    in_process_gateway: GatewayProcess,
) -> None:
    gateway = in_process_gateway
    key = create_key(
        gateway,
        f"both-{uuid.uuid4().hex[:6]}",
        "--rpm",
        "2",
        "--budget",
        f"{REQUEST_COST}/total",
    )
    for _ in range(3):
        with pytest.raises(openai.RateLimitError) as caught:
            _chat(gateway, key.plaintext, model="metered", max_tokens=10, n=1)
        assert caught.value.code == "insufficient_quota"
        assert caught.value.response.headers["x-should-retry"] == "false"
    assert (
        _chat(gateway, key.plaintext, model="metered", max_tokens=5).http_response.status_code
        == 200
    )


def test_every_choice_is_reserved(in_process_gateway: GatewayProcess) -> None:
    gateway = in_process_gateway
    key = create_key(gateway, f"n-{uuid.uuid4().hex[:6]}", "--budget", f"{REQUEST_COST * 2}/total")
    with pytest.raises(openai.RateLimitError):
        _chat(gateway, key.plaintext, model="metered", max_tokens=5, n=3)
    assert (
        _chat(gateway, key.plaintext, model="metered", max_tokens=5, n=2).http_response.status_code
        == 200
    )


def test_a_disconnected_client_gives_its_reservation_back(limits_gateway: GatewayProcess) -> None:
    gateway = limits_gateway
    key = create_key(gateway, f"gone-{uuid.uuid4().hex[:6]}", "--budget", f"{REQUEST_COST}/total")
    with (
        httpx.Client(base_url=gateway.url, timeout=0.5) as http,
        pytest.raises(httpx.TimeoutException),
    ):
        http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key.plaintext}"},
            json={
                "model": "metered",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "slow"}],
                "mock": {"latency_ms": 3000},
            },
        )
    # The whole budget was held by the abandoned request; once it is released the next fits.
    deadline = time.monotonic() + 5
    while True:
        try:
            answer = _chat(gateway, key.plaintext, model="metered", max_tokens=5)
            break
        except openai.RateLimitError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert answer.http_response.status_code == 200


def test_a_stream_the_client_leaves_is_charged_what_it_streamed(
    limits_gateway: GatewayProcess,
) -> None:
    gateway = limits_gateway
    key = create_key(gateway, f"left-{uuid.uuid4().hex[:6]}", "--budget", "1/total")
    body = {
        "model": "metered",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "a long story"}],
        "mock": {"content": "word " * 100, "chunks": 100, "chunk_interval_ms": 50},
    }
    trace_id = gateway.stream_and_leave(body, api_key=key.plaintext)
    (interaction,) = gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    assert interaction["status"] == "cancelled"
    assert interaction["usage_estimated"] in (True, 1)
    completion = interaction["completion_tokens"]
    assert 1 <= completion < 100  # what was streamed before the client left, not the whole answer
    dialect = "sqlite" if gateway.database.url.startswith("sqlite") else "postgresql"
    cost = money_from_sql(interaction["cost_usd"], dialect)
    assert cost == Decimal(completion) / 1000
    spent = gateway.database.wait_rows(
        "SELECT spent_micros FROM budget_spend WHERE subject = :key AND spent_micros > 0",
        key=key.key_id,
    )
    assert [row["spent_micros"] for row in spent] == [completion * 1000]
