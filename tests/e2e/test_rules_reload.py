"""Rules edited through one gateway reach another without a restart: Redis pub/sub or polling.

Two `steerway serve` processes share one Postgres database (and Redis when configured), as two
replicas behind a load balancer would. A rule created, changed, disabled and deleted through the
first one's admin API must take effect in the second.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import migrations
from tests.conftest import REDIS_URL, service_missing
from tests.e2e.conftest import (
    Database,
    GatewayProcess,
    MockProcess,
    _create_postgres,
    _drop_postgres,
    free_port,
    mock_config,
)

RULE: dict[str, Any] = {
    "id": "vip-to-split",
    "when": {"tags": {"contains": "vip"}},
    "then": {"route": "split", "tag": "vip-routed"},
}


@pytest.fixture
def shared_database() -> Iterator[Database]:
    url = _create_postgres()
    try:
        migrations.upgrade(url)
        yield Database(url)
    finally:
        _drop_postgres(url)


@pytest.fixture
def redis_available() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        service_missing("Redis", error)
    return REDIS_URL


def _rules_header(gateway: GatewayProcess) -> str | None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-steerway-tags": "vip"},
    )
    value: str | None = raw.headers.get("x-steerway-rules")
    return value


def _until(check: Callable[[], bool], limit: float = 10.0) -> float:
    """Seconds until `check()` holds; fails past `limit` (generous: machines are shared)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not applied within {limit} s")
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("notify", ["redis", "polling", "redis-unreachable"])
def test_rule_changes_reach_another_gateway(
    notify: str,
    shared_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    request: pytest.FixtureRequest,
) -> None:
    env = {}
    if notify == "redis":
        env["STEERWAY_REDIS_URL"] = request.getfixturevalue("redis_available")
    elif notify == "redis-unreachable":
        # Nothing listens there: workers fall back to polling the database.
        env["STEERWAY_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    master = "sk-master-" + secrets.token_hex(8)
    config = mock_config(mock_provider)
    first = start_gateway(shared_database, config, master_key=master, env=env)
    second = start_gateway(shared_database, config, master_key=master, env=env)
    assert _rules_header(second) is None

    with first.http() as admin:
        created = admin.post("/admin/api/rules", json=RULE)
        assert created.status_code == 201, created.text
        # The gateway that took the edit applies it before answering.
        assert _rules_header(first) == "vip-to-split"
        took = _until(lambda: _rules_header(second) == "vip-to-split")
        print(f"{notify}: create reached the second gateway in {took:.3f} s")

        disabled = admin.post("/admin/api/rules/vip-to-split/disable")
        assert disabled.status_code == 200, disabled.text
        _until(lambda: _rules_header(second) is None)

        enabled = admin.post("/admin/api/rules/vip-to-split/enable")
        assert enabled.status_code == 200, enabled.text
        _until(lambda: _rules_header(second) == "vip-to-split")

        removed = admin.delete("/admin/api/rules/vip-to-split")
        assert removed.status_code == 204, removed.text
        _until(lambda: _rules_header(second) is None)


def test_a_restarted_gateway_starts_with_the_database_rules(
    shared_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    master = "sk-master-" + secrets.token_hex(8)
    config = mock_config(mock_provider)
    first = start_gateway(shared_database, config, master_key=master)
    with first.http() as admin:
        assert admin.post("/admin/api/rules", json=RULE).status_code == 201
    first.stop()
    again = start_gateway(shared_database, config, master_key=master)
    assert _rules_header(again) == "vip-to-split"


def test_a_database_rule_the_new_config_cannot_serve_is_left_out_and_shown(
    shared_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    master = "sk-master-" + secrets.token_hex(8)
    first = start_gateway(shared_database, mock_config(mock_provider), master_key=master)
    with first.http() as admin:
        assert admin.post("/admin/api/rules", json=RULE).status_code == 201
    first.stop()
    without_split = mock_config(mock_provider)
    del without_split["models"]["split"]
    again = start_gateway(shared_database, without_split, master_key=master)
    assert _rules_header(again) is None
    with again.http() as admin:
        listed = {item["id"]: item for item in admin.get("/admin/api/rules").json()["data"]}
    assert listed["vip-to-split"]["in_force"] is False
    assert listed["vip-to-split"]["problems"] == [
        "rules[0].then.route.model: unknown model 'split'"
    ]
