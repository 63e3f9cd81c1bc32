"""docs/limits.md stays true: every ```yaml block is a valid config, and the block of defaults
shows the defaults the gateway actually has."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.file import GatewayConfig, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "limits.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Rules are checked against the models of the same file; the blocks' rules name none.
SERVED = {
    "providers": {"mock": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
    "models": {"mock-gpt": [{"provider": "mock"}]},
}


def yaml_blocks() -> list[str]:
    return FENCE.findall(DOC.read_text())


def load(block: str) -> GatewayConfig:
    document: dict[str, Any] = yaml.safe_load(block)
    assert isinstance(document, dict), "a block is a piece of a config file"
    return parse_config({**SERVED, **document}, environ={})


def first_key(block: str) -> str:
    return block.split(":", 1)[0].strip()


def test_the_reference_has_config_examples() -> None:
    assert len(yaml_blocks()) >= 4


@pytest.mark.parametrize("block", yaml_blocks(), ids=first_key)
def test_every_yaml_block_is_a_valid_config(block: str) -> None:
    config = load(block)
    for section in yaml.safe_load(block):
        assert section in {"cache", "budgets", "rate_limits", "redis", "rules"}
    assert config.models


def test_the_documented_defaults_are_the_defaults() -> None:
    block = next(b for b in yaml_blocks() if "max_bytes" in b)
    documented = load(block)
    defaults = parse_config(SERVED, environ={})
    assert documented.cache == defaults.cache
    assert documented.budgets == defaults.budgets
    assert documented.rate_limits == defaults.rate_limits
    assert documented.redis == defaults.redis
    assert (defaults.budgets.on_redis_error, defaults.cache.on_redis_error) == ("closed", "open")


def test_the_budget_example_charges_its_bucket_from_a_rule() -> None:
    block = next(b for b in yaml_blocks() if "buckets:" in b)
    config = load(block)
    assert config.budgets.timezone == "Europe/Berlin"
    assert [b.limit_usd for b in config.budgets.buckets["premium"]] == [
        Decimal(500),
        Decimal(5000),
    ]
    assert config.budgets.end_user[0].soft_percent == 50.0
    assert [rule["then"] for rule in config.rules] == [{"budget": "premium"}]


def test_the_failure_policy_example_inverts_every_default() -> None:
    config = load(next(b for b in yaml_blocks() if "timeout_ms: 100" in b))
    assert config.redis.timeout_ms == 100
    assert config.cache.on_redis_error == "closed"
    assert config.rate_limits.on_redis_error == "closed"
    assert config.budgets.on_redis_error == "open"
