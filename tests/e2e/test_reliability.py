"""Retries, fallbacks, cooldowns, timeouts and capacity, driven by the mock's fault controls."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.e2e.conftest import Database, GatewayProcess, MockProcess

HELLO = [{"role": "user", "content": "hello there"}]
FAST_RETRY = {"attempts": 2, "backoff": 0.01, "max_backoff": 0.5}


def _one(provider_model: str) -> list[dict[str, Any]]:
    return [{"provider": "mock", "model": provider_model}]


@pytest.fixture(scope="module")
def gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = {
        "providers": {
            "mock": {
                "type": "openai",
                "base_url": mock_provider.base_url,
                "timeouts": {"connect": 2, "first_byte": 5, "total": 10},
            }
        },
        "models": {
            "retrying": {"deployments": _one("mock-gpt"), "retries": FAST_RETRY},
            "pair": {
                "deployments": [
                    {"provider": "mock", "model": "mock-a"},
                    {"provider": "mock", "model": "mock-b"},
                ],
                "retries": {"attempts": 1, "backoff": 0.01},
                "cooldown": {"failures": 2, "window": 30, "period": 2},
            },
            "small": {
                "deployments": _one("mock-small"),
                "fallbacks": ["large"],
                "fallback_on": ["error", "context_window", "content_filter"],
            },
            "strict": {"deployments": _one("mock-strict"), "fallbacks": ["large"]},
            "large": _one("mock-large"),
            "impatient": {
                "deployments": _one("mock-gpt"),
                "retries": {"attempts": 1, "backoff": 0.01},
                "timeouts": {"first_token": 0.5},
            },
            "capped": [{"provider": "mock", "model": "mock-cap", "rpm": 2}],
        },
    }
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("reliability"),
        master_key="sk-rel-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def _scenario(**control: Any) -> dict[str, Any]:
    return {"mock": {"scenario": uuid.uuid4().hex, **control}}


def _rows(gateway: GatewayProcess, table: str, trace_id: str, count: int = 1) -> list[dict]:
    return gateway.database.wait_rows(
        f"SELECT * FROM {table} WHERE trace_id = :t", count=count, t=trace_id
    )


def test_retries_until_the_provider_answers(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="retrying", messages=HELLO, extra_body=_scenario(fail_first=2, error=503)
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-steerway-attempts"] == "3"
    trace_id = raw.headers["x-steerway-trace-id"]
    attempts = sorted(_rows(gateway, "ai_interactions", trace_id, 3), key=lambda r: r["attempt"])
    assert [a["status"] for a in attempts] == ["error", "error", "ok"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert attempts[0]["http_status"] == 503
    decisions = _rows(gateway, "decisions", trace_id, 5)
    assert sum(d["type"] == "retry" for d in decisions) == 2
    spans = [s for s in _rows(gateway, "spans", trace_id, 6) if s["name"] == "provider.chat"]
    assert len(spans) == 3


def test_retries_give_up_after_the_configured_attempts(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(
            model="retrying", messages=HELLO, extra_body=_scenario(fail_first=5, error=500)
        )
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-steerway-attempts"] == "3"


def test_retry_after_is_honoured(gateway: GatewayProcess) -> None:
    started = time.monotonic()
    gateway.client().chat.completions.create(
        model="retrying",
        messages=HELLO,
        extra_body=_scenario(fail_first=1, error=429, retry_after=0.4),
    )
    assert time.monotonic() - started >= 0.4


def test_a_longer_retry_after_than_max_backoff_is_not_waited_for(gateway: GatewayProcess) -> None:
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client().chat.completions.create(
            model="retrying",
            messages=HELLO,
            extra_body=_scenario(fail_first=1, error=429, retry_after=30),
        )
    assert time.monotonic() - started < 5
    assert caught.value.response.headers["retry-after"] == "30"
    assert caught.value.response.headers["x-steerway-attempts"] == "1"


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_never_retried(gateway: GatewayProcess, status: int) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(
            model="retrying", messages=HELLO, extra_body=_scenario(fail_first=1, error=status)
        )
    assert caught.value.response.headers["x-steerway-attempts"] == "1"


def test_fallback_after_errors(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="small", messages=HELLO, extra_body={"mock": {"fail_models": {"mock-small": 503}}}
    )
    assert raw.headers["x-steerway-model"] == "mock-large"
    assert raw.headers["x-steerway-attempts"] == "2"
    decisions = _rows(gateway, "decisions", raw.headers["x-steerway-trace-id"], 3)
    fallback = next(d for d in decisions if d["type"] == "fallback")
    assert fallback["output"] == {"to": "large"} or "large" in str(fallback["output"])


def test_fallback_on_a_context_window_error(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="strict",
        messages=HELLO,
        extra_body={
            "mock": {
                "fail_models": {"mock-strict": 400},
                "error_code": "context_length_exceeded",
            }
        },
    )
    assert raw.headers["x-steerway-model"] == "mock-large"


def test_content_filter_falls_back_only_where_configured(gateway: GatewayProcess) -> None:
    control = {"error_code": "content_filter"}
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="small",
        messages=HELLO,
        extra_body={"mock": {"fail_models": {"mock-small": 400}, **control}},
    )
    assert raw.headers["x-steerway-model"] == "mock-large"
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model="strict",
            messages=HELLO,
            extra_body={"mock": {"fail_models": {"mock-strict": 400}, **control}},
        )
    assert caught.value.response.headers["x-steerway-attempts"] == "1"


def test_a_failing_deployment_cools_down_and_is_probed_back(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    broken = {"mock": {"fail_models": {"mock-a": 503}}}
    client = gateway.client()
    tried_a = mock_provider.stats()["requests_by_model"].get("mock-a", 0)
    # Weighted random picks mock-a about half the time; send until it has failed twice.
    for _ in range(60):
        raw = client.chat.completions.with_raw_response.create(
            model="pair", messages=HELLO, extra_body=broken
        )
        assert raw.headers["x-steerway-model"] == "mock-b"  # retried there when mock-a failed
        if mock_provider.stats()["requests_by_model"].get("mock-a", 0) - tried_a >= 2:
            break
    cooldowns = gateway.database.wait_rows(
        "SELECT * FROM decisions WHERE type = 'cooldown'", count=1
    )
    assert "mock/mock-a" in str(cooldowns[0]["input"])
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'steerway_deployment_up{deployment="mock/mock-a"} 0.0' in metrics
    assert 'steerway_cooldowns_total{deployment="mock/mock-a"}' in metrics
    assert "steerway_retries_total" in metrics

    # While cooling down, mock-a gets nothing.
    before = mock_provider.stats()["requests_by_model"].get("mock-a", 0)
    for _ in range(6):
        client.chat.completions.create(model="pair", messages=HELLO, extra_body=broken)
    assert mock_provider.stats()["requests_by_model"].get("mock-a", 0) == before

    # After the period it is probed again, and a healthy probe puts it back in rotation.
    time.sleep(2.2)
    served = set()
    for _ in range(20):
        raw = client.chat.completions.with_raw_response.create(model="pair", messages=HELLO)
        served.add(raw.headers["x-steerway-model"])
    assert served == {"mock-a", "mock-b"}


def test_a_stream_is_retried_before_its_first_byte(gateway: GatewayProcess) -> None:
    stream = gateway.client().chat.completions.create(
        model="retrying",
        messages=HELLO,
        stream=True,
        extra_body=_scenario(fail_first=1, error=503),
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "hello there" in text


def test_a_stream_that_breaks_after_its_first_byte_is_not_retried(
    gateway: GatewayProcess,
) -> None:
    with (
        gateway.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "retrying",
                "messages": HELLO,
                "stream": True,
                **_scenario(fail_first=1, drop_after_chunks=2),
            },
        ) as response,
    ):
        body = "".join(response.iter_text())
        assert response.headers["x-steerway-attempts"] == "1"
    assert '"error"' in body


@pytest.mark.parametrize("stream", [False, True])
def test_first_token_timeout_then_retry(gateway: GatewayProcess, stream: bool) -> None:
    started = time.monotonic()
    result = gateway.client().chat.completions.with_raw_response.create(
        model="impatient",
        messages=HELLO,
        stream=stream,
        extra_body=_scenario(fail_first=1, hang=True),
    )
    assert result.headers["x-steerway-attempts"] == "2"
    assert time.monotonic() - started < 4
    trace_id = result.headers["x-steerway-trace-id"]
    if stream:
        list(result.parse())
    attempts = sorted(_rows(gateway, "ai_interactions", trace_id, 2), key=lambda r: r["attempt"])
    assert attempts[0]["error_type"] == "timeout"
    assert attempts[1]["status"] == "ok"


def test_rpm_capacity_is_respected(gateway: GatewayProcess) -> None:
    client = gateway.client()
    statuses = []
    for _ in range(5):
        try:
            client.chat.completions.create(model="capped", messages=HELLO)
            statuses.append(200)
        except openai.APIStatusError as error:
            statuses.append(error.status_code)
            assert error.body["code"] == "no_deployment_available"  # type: ignore[index]
    assert 503 in statuses
    assert statuses.count(200) <= 4


def test_cooldowns_are_shared_through_redis(
    backend_database: Database,
    mock_provider: MockProcess,
    redis_url: str,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    config = {
        "providers": {"mock": {"type": "openai", "base_url": mock_provider.base_url}},
        "models": {
            "pair": {
                "deployments": [
                    {"provider": "mock", "model": "mock-red"},
                    {"provider": "mock", "model": "mock-green"},
                ],
                "retries": {"attempts": 1, "backoff": 0.01},
                "cooldown": {"failures": 2, "window": 30, "period": 30},
            }
        },
    }
    shared = start_gateway(
        backend_database,
        config,
        master_key="sk-redis-" + secrets.token_hex(8),
        workers=2,
        env={"STEERWAY_REDIS_URL": redis_url},
    )
    broken = {"mock": {"fail_models": {"mock-red": 503}}}
    store = redis.Redis.from_url(redis_url)
    cooling: list[bytes] = []
    # The weighted choice is random: ask until mock-red has failed twice (ten requests leave
    # about a 1% chance that it was picked fewer times).
    for _ in range(40):
        client = shared.client(http_client=httpx.Client())  # new connections: both workers
        client.chat.completions.create(model="pair", messages=HELLO, extra_body=broken)
        cooling = store.zrange("steerway:health:cooling", 0, -1)
        if cooling:
            break
    assert b"mock/mock-red" in cooling
    # Every worker now leaves the cooling deployment alone.
    before = mock_provider.stats()["requests_by_model"].get("mock-red", 0)
    time.sleep(1.0)  # the workers' mirrors refresh every 0.5 s
    for _ in range(10):
        client = shared.client(http_client=httpx.Client())
        client.chat.completions.create(model="pair", messages=HELLO)
    assert mock_provider.stats()["requests_by_model"].get("mock-red", 0) == before
