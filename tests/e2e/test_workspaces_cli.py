"""`steerway workspaces ...` and the limit options of `steerway keys ...`, against a running gateway
on SQLite and Postgres."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import GatewayProcess
from tests.e2e.test_keys import HELLO, create_key

_WORKSPACE_CREATED = re.compile(r"Created workspace ([0-9a-f]{32}) '([^']+)'")


def ok(gateway: GatewayProcess, *args: str) -> str:
    result = gateway.cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def fails(gateway: GatewayProcess, *args: str) -> str:
    result = gateway.cli(*args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("steerway: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def key_row(gateway: GatewayProcess, key_id: str) -> dict[str, Any]:
    (row,) = gateway.database.rows("SELECT * FROM api_keys WHERE key_id = :k", k=key_id)
    return {
        name: json.loads(value) if isinstance(value, str) and name in _JSON else value
        for name, value in row.items()
    }


_JSON = {"allowed_models", "budgets", "default_tags", "guardrails", "metadata", "settings"}


def line_with(output: str, text: str) -> str:
    return next(line for line in output.splitlines() if text in line)


def workspace_settings(gateway: GatewayProcess, slug: str) -> dict[str, Any]:
    (row,) = gateway.database.rows("SELECT settings FROM workspaces WHERE slug = :s", s=slug)
    settings = row["settings"]
    return settings if isinstance(settings, dict) else dict(json.loads(settings))


def test_workspaces_are_created_listed_and_updated(gateway: GatewayProcess) -> None:
    slug = "team-" + secrets.token_hex(3)
    output = ok(
        gateway,
        "workspaces", "create", slug, "--name", "Team A",
        "--budget", "100/monthly@80", "--rpm", "600", "--max-parallel", "12",
    )  # fmt: skip
    created = _WORKSPACE_CREATED.search(output)
    assert created is not None and created.group(2) == slug, output
    assert "rpm=600 parallel=12 budgets=$100.00/monthly@80%" in output

    (row,) = gateway.database.rows("SELECT * FROM workspaces WHERE slug = :s", s=slug)
    settings = row["settings"] if isinstance(row["settings"], dict) else json.loads(row["settings"])
    assert settings == {
        "budgets": [{"limit_usd": "100.00", "window": "monthly", "soft_percent": 80}],
        "rpm_limit": 600,
        "tpm_limit": None,
        "max_parallel": 12,
        "guardrails": [],
    }
    assert row["workspace_id"] == created.group(1)

    listing = line_with(ok(gateway, "workspaces", "list"), slug)
    assert "Team A" in listing and "rpm=600" in listing and "$100.00/monthly@80%" in listing

    ok(gateway, "workspaces", "update", slug, "--rpm", "none", "--tpm", "5000", "--clear-budgets")
    listing = line_with(ok(gateway, "workspaces", "list"), slug)
    assert "rpm=" not in listing and "tpm=5000 parallel=12" in listing and "$" not in listing

    assert "already exists" in fails(gateway, "workspaces", "create", slug)
    assert "unknown workspace" in fails(gateway, "workspaces", "update", "no-such-ws", "--rpm", "1")
    assert "nothing to change" in fails(gateway, "workspaces", "update", slug)
    assert "slug" in fails(gateway, "workspaces", "create", "Not A Slug")


def test_workspace_guardrails_are_set_listed_replaced_and_cleared(gateway: GatewayProcess) -> None:
    slug = "guarded-" + secrets.token_hex(3)
    output = ok(gateway, "workspaces", "create", slug, "--guardrails", "pii, injection")
    assert "guardrails=pii,injection" in output
    assert workspace_settings(gateway, slug)["guardrails"] == ["pii", "injection"]
    assert "guardrails=pii,injection" in line_with(ok(gateway, "workspaces", "list"), slug)

    ok(gateway, "workspaces", "update", slug, "--rpm", "40")
    assert workspace_settings(gateway, slug)["guardrails"] == ["pii", "injection"]
    ok(gateway, "workspaces", "update", slug, "--guardrails", "deny.list")
    assert workspace_settings(gateway, slug)["guardrails"] == ["deny.list"]
    assert "guardrails=deny.list" in line_with(ok(gateway, "workspaces", "list"), slug)

    error = fails(gateway, "workspaces", "update", slug, "--guardrails", "pii,bad name")
    assert "--guardrails[1]: " in error and "'bad name'" in error
    assert workspace_settings(gateway, slug)["guardrails"] == ["deny.list"]

    ok(gateway, "workspaces", "update", slug, "--guardrails", "")
    settings = workspace_settings(gateway, slug)
    assert (settings["guardrails"], settings["rpm_limit"]) == ([], 40)
    assert "guardrails=" not in line_with(ok(gateway, "workspaces", "list"), slug)


def test_key_guardrails_are_set_listed_replaced_and_cleared(gateway: GatewayProcess) -> None:
    key = create_key(gateway, "screened", "--guardrails", "pii,injection", "--tag", "t")
    assert key_row(gateway, key.key_id)["guardrails"] == ["pii", "injection"]
    listing = line_with(ok(gateway, "keys", "list"), key.key_id)
    assert "tags=t guardrails=pii,injection" in listing

    ok(gateway, "keys", "update", key.key_id, "--rpm", "7")
    assert key_row(gateway, key.key_id)["guardrails"] == ["pii", "injection"]
    output = ok(gateway, "keys", "update", key.key_id, "--guardrails", "injection")
    assert "guardrails=injection" in output
    assert key_row(gateway, key.key_id)["guardrails"] == ["injection"]

    ok(gateway, "keys", "update", key.key_id, "--guardrails", "")
    row = key_row(gateway, key.key_id)
    assert (row["guardrails"], row["default_tags"], row["rpm_limit"]) == ([], ["t"], 7)
    assert "guardrails=" not in line_with(ok(gateway, "keys", "list"), key.key_id)


def test_a_key_with_limits_works_and_is_listed_with_them(gateway: GatewayProcess) -> None:
    slug = "apps-" + secrets.token_hex(3)
    key = create_key(
        gateway,
        "nightly batch", "--workspace", slug,
        "--models", "mock-*", "gpt-4o*",
        "--rpm", "60", "--tpm", "10000", "--max-parallel", "4",
        "--budget", "10.00/monthly", "--budget", "1/daily@50",
        "--tag", "batch", "--tag", "nightly",
        "--metadata", '{"owner": "data"}',
        "--expires", "30d",
        "--role", "master",
    )  # fmt: skip
    completion = gateway.client(api_key=key.plaintext).chat.completions.create(
        model="mock-gpt", messages=HELLO
    )
    assert completion.choices[0].message.content

    row = key_row(gateway, key.key_id)
    assert row["name"] == "nightly batch" and row["role"] == "master"
    assert row["allowed_models"] == ["mock-*", "gpt-4o*"]
    assert (row["rpm_limit"], row["tpm_limit"], row["max_parallel"]) == (60, 10000, 4)
    assert row["budgets"] == [
        {"limit_usd": "10.00", "window": "monthly"},
        {"limit_usd": "1.00", "window": "daily", "soft_percent": 50},
    ]
    assert row["default_tags"] == ["batch", "nightly"]
    assert row["metadata"] == {"owner": "data"}
    stored = row["expires_at"]  # SQLite gives raw SQL the text, naive UTC
    expires = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)

    listing = line_with(ok(gateway, "keys", "list", "--workspace", slug), key.key_id)
    for part in (
        slug,
        "master",
        "models=mock-*,gpt-4o*",
        "rpm=60 tpm=10000 parallel=4",
        "budgets=$10.00/monthly,$1.00/daily@50%",
        "tags=batch,nightly",
    ):
        assert part in listing, (part, listing)
    assert key.plaintext not in listing


def test_keys_are_updated_from_the_command_line(gateway: GatewayProcess) -> None:
    key = create_key(gateway, "svc", "--models", "mock-gpt", "--rpm", "5", "--budget", "2/daily")
    output = ok(
        gateway,
        "keys", "update", key.key_id,
        "--name", "service", "--rpm", "none", "--tpm", "700", "--all-models",
        "--budget", "3/weekly@75", "--tag", "x", "--expires", "2000-01-01T00:00:00",
    )  # fmt: skip
    assert key.key_id in output
    row = key_row(gateway, key.key_id)
    assert (row["name"], row["rpm_limit"], row["tpm_limit"]) == ("service", None, 700)
    assert row["allowed_models"] is None
    assert row["budgets"] == [{"limit_usd": "3.00", "window": "weekly", "soft_percent": 75}]
    assert row["default_tags"] == ["x"]
    assert "expired" in line_with(ok(gateway, "keys", "list"), key.key_id)

    ok(
        gateway,
        "keys",
        "update",
        key.key_id,
        "--clear-budgets",
        "--clear-tags",
        "--expires",
        "never",
    )
    row = key_row(gateway, key.key_id)
    assert (row["budgets"], row["default_tags"], row["expires_at"]) == ([], [], None)
    assert "active" in line_with(ok(gateway, "keys", "list"), key.key_id)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "x", "--budget", "10/yearly"], "--budget"),
        (["keys", "create", "x", "--budget", "1/daily", "--budget", "2/daily"], "one per window"),
        (["keys", "create", "x", "--rpm", "0"], "--rpm"),
        (["keys", "create", "x", "--tpm", "lots"], "--tpm"),
        (["keys", "create", "x", "--metadata", "[1]"], "--metadata"),
        (["keys", "create", "x", "--metadata", "{bad"], "--metadata"),
        (["keys", "create", "x", "--metadata", '{"nul": "a\\u0000"}'], "--metadata.nul: "),
        (["keys", "create", "x", "--metadata", '{"half": ["\\ud800"]}'], "--metadata: not valid"),
        (["keys", "create", "x", "--expires", "soon"], "--expires"),
        (["keys", "create", "x", "--expires", "9999-12-31T23:59:59-12:00"], "--expires: out of"),
        (["keys", "create", "x", "--expires", "99999999999w"], "--expires: '99999999999w' from"),
        (["keys", "create", "x", "--expires", "9" * 5000 + "d"], "--expires: '999"),
        (["keys", "create", "x", "--metadata", '{"a": NaN}'], "--metadata: not valid JSON"),
        (["keys", "create", "x", "--metadata", "[" * 5000 + "]" * 5000], "--metadata: not valid"),
        (["keys", "create", "x", "--rpm", "none"], "--rpm"),
        (["keys", "create", "x", "--tag", "a,b"], "--tag"),
        (["keys", "create", "x", "--guardrails", "pii,,injection"], "--guardrails[1]: "),
        (["keys", "create", "x", "--guardrails", "pii,pii"], "already in the list"),
        (["keys", "create", "x", "--guardrails=-pii"], "--guardrails[0]: "),
        (
            ["keys", "create", "x", "--guardrails", ",".join(f"g{i}" for i in range(33))],
            "at most 32",
        ),
        (["keys", "update", "0" * 32, "--guardrails", "a b"], "--guardrails[0]: "),
        (["keys", "create", "x", "--name", "y"], "two names"),
        (["keys", "create"], "name"),
        (["keys", "update", "0" * 32, "--rpm", "5"], "no key"),
    ],
)
def test_bad_key_options_fail_cleanly(
    gateway: GatewayProcess, args: list[str], message: str
) -> None:
    before = gateway.database.rows("SELECT key_id FROM api_keys")
    assert message in fails(gateway, *args)
    assert gateway.database.rows("SELECT key_id FROM api_keys") == before


def test_an_update_without_options_changes_nothing(gateway: GatewayProcess) -> None:
    key = create_key(gateway, "--name", "unchanged", "--rpm", "9")
    assert "nothing to change" in fails(gateway, "keys", "update", key.key_id)
    assert key_row(gateway, key.key_id)["rpm_limit"] == 9
