"""The `steerway` command as users run it: check-config, serve, migrate, keys, zero-config serving."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import migrations
from gateway.config.defaults import MOCK_MODELS
from tests.e2e.conftest import STEERWAY, Database, GatewayProcess

BAD_CONFIG = """
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
  local:
    type: vllm
    base_url: not-a-url
models:
  fast:
    - provider: openai
      model: gpt-4o-mini
    - provider: opnai
      model: gpt-4o-mini
      weight: -2
telemetry:
  store_content: sometimes
limits:
  max_body_bytes: -5
"""

BAD_CONFIG_PROBLEMS = [
    "providers.local.type: unknown provider type 'vllm'",
    "providers.local.base_url: not an http(s) URL: 'not-a-url'",
    "models.fast[1].provider: unknown provider 'opnai'",
    "models.fast[1].weight: expected a positive number, got -2",
    "telemetry.store_content: expected one of full, redacted, none; got 'sometimes'",
    "limits.max_body_bytes: expected a positive integer, got -5",
]

GOOD_CONFIG = """
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
models:
  fast:
    - provider: openai
      model: gpt-4o-mini
"""

PROVIDER_KEY = "sk-test-cli-" + "a1b2c3d4e5f6"


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any Steerway setting or provider key."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("STEERWAY_") and not name.endswith("_API_KEY")
    }
    env.update(extra)
    return env


def steerway(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEERWAY, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CONFIG)
    return path


@pytest.fixture
def sqlite_database(sqlite_url: str) -> Database:
    migrations.upgrade(sqlite_url)
    return Database(sqlite_url)


# --- check-config -----------------------------------------------------------------------------


def test_check_config_lists_every_problem_with_its_path(bad_config: Path) -> None:
    result = steerway("check-config", str(bad_config), env=clean_env(OPENAI_API_KEY=PROVIDER_KEY))
    assert result.returncode == 1
    assert_clean_failure(result)
    lines = result.stderr.splitlines()
    assert lines[0] == f"{bad_config}: {len(BAD_CONFIG_PROBLEMS)} problems"
    for problem in BAD_CONFIG_PROBLEMS:
        assert any(line.strip().startswith(problem) for line in lines), (problem, lines)
    assert "did you mean 'openai'" in result.stderr
    assert PROVIDER_KEY not in result.stdout + result.stderr


def test_check_config_reports_an_unset_secret_by_name(bad_config: Path) -> None:
    result = steerway("check-config", str(bad_config), env=clean_env())
    assert result.returncode == 1
    assert "providers.openai.api_key: environment variable OPENAI_API_KEY is not set" in (
        result.stderr
    )
    assert f"{len(BAD_CONFIG_PROBLEMS) + 1} problems" in result.stderr


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD_CONFIG)
    env = clean_env(OPENAI_API_KEY=PROVIDER_KEY)
    result = steerway("check-config", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK"

    from_env = steerway("check-config", env={**env, "STEERWAY_CONFIG": str(path)})
    assert from_env.returncode == 0, from_env.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "config file not found", id="missing-file"),
        pytest.param("models: [\n", "YAML syntax error", id="broken-yaml"),
        pytest.param("- a list\n", "(top level)", id="not-a-mapping"),
    ],
)
def test_check_config_on_unreadable_files(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "steerway.yaml"
    if content is not None:
        path.write_text(content)
    result = steerway("check-config", str(path), env=clean_env())
    assert result.returncode == 1
    assert expected in result.stderr
    assert_clean_failure(result)


def test_check_config_without_a_path(tmp_path: Path) -> None:
    result = steerway("check-config", env=clean_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "STEERWAY_CONFIG" in result.stderr
    assert_clean_failure(result)


# --- serve ------------------------------------------------------------------------------------


def test_serve_with_a_bad_config_exits_2_without_starting(
    bad_config: Path, sqlite_database: Database
) -> None:
    env = clean_env(
        OPENAI_API_KEY=PROVIDER_KEY,
        STEERWAY_CONFIG=str(bad_config),
        STEERWAY_DATABASE_URL=sqlite_database.url,
        STEERWAY_MASTER_KEY="sk-master-" + secrets.token_hex(8),
    )
    result = steerway("serve", "--port", "1", env=env, timeout=30)
    assert result.returncode == 2
    assert_clean_failure(result)
    output = result.stdout + result.stderr
    for problem in BAD_CONFIG_PROBLEMS:
        assert problem in output, (problem, output)
    assert str(bad_config) in result.stderr
    assert "listening" not in output
    assert PROVIDER_KEY not in output
    assert sqlite_database.rows("SELECT key_id FROM api_keys") == []


def test_serve_on_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    env = clean_env(STEERWAY_DATABASE_URL=f"sqlite:///{database}")
    result = steerway("serve", "--port", "1", env=env, timeout=30)
    assert result.returncode == 1
    assert_clean_failure(result)
    assert "steerway migrate" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["serve", "--port", "1"], id="serve"),
        pytest.param(["migrate"], id="migrate"),
        pytest.param(["keys", "list"], id="keys-list"),
        pytest.param(["keys", "create", "--name", "x"], id="keys-create"),
    ],
)
def test_unreachable_database_fails_cleanly_without_the_password(
    tmp_path: Path, args: list[str]
) -> None:
    password = "hunter2-" + secrets.token_hex(6)
    url = f"postgresql://steerway:{password}@127.0.0.1:1/steerway"
    result = steerway(*args, env=clean_env(STEERWAY_DATABASE_URL=url), cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert password not in output
    assert result.stderr.startswith("steerway: "), result.stderr
    assert_clean_failure(result)


# --- migrate ----------------------------------------------------------------------------------


def test_migrate_creates_the_tables_and_is_repeatable(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "steerway.db"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    first = steerway("migrate", env=clean_env(STEERWAY_DATABASE_URL=url))
    assert first.returncode == 0, first.stderr
    head = migrations.head()
    assert head is not None and head in first.stdout

    with sqlite3.connect(path) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        workspaces = conn.execute("SELECT slug FROM workspaces").fetchall()
    expected = {"workspaces", "api_keys", "traces", "spans", "decisions", "ai_interactions"}
    assert expected | {"usage_rollups"} <= tables
    assert workspaces == [("default",)]

    again = steerway("migrate", "--database-url", url, env=clean_env())
    assert again.returncode == 0, again.stderr
    assert migrations.current(url) == head


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["keys", "create", "--name", "x", "--expires", "tomorrow"], id="bad-expiry"),
        pytest.param(["keys", "list", "--workspace", "no-such-workspace"], id="unknown-workspace"),
        pytest.param(["keys", "revoke", "no-such-key"], id="unknown-key"),
    ],
)
def test_bad_key_commands_fail_cleanly(sqlite_database: Database, args: list[str]) -> None:
    result = steerway(*args, env=clean_env(STEERWAY_DATABASE_URL=sqlite_database.url))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("steerway: "), result.stderr
    assert_clean_failure(result)
    assert sqlite_database.rows("SELECT key_id FROM api_keys") == []


# --- zero configuration -----------------------------------------------------------------------


def test_without_config_or_provider_key_the_embedded_mock_serves(
    sqlite_database: Database, start_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = start_gateway(sqlite_database, None, master_key="sk-master-" + secrets.token_hex(8))
    client = gateway.client()
    assert {m.id for m in client.models.list()} == set(MOCK_MODELS)
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=[{"role": "user", "content": "hello there"}]
    )
    assert raw.headers["x-steerway-provider"] == "mock"
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert "hello there" in completion.choices[0].message.content
    embedding = client.embeddings.create(model="mock-embedding", input="x", dimensions=4)
    assert len(embedding.data[0].embedding) == 4
    row = sqlite_database.wait_rows(
        "SELECT provider, status FROM ai_interactions WHERE trace_id = :t",
        t=raw.headers["x-steerway-trace-id"],
    )
    assert row == [{"provider": "mock", "status": "ok"}]
