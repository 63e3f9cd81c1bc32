"""Virtual keys and the master key, managed with the `steerway` CLI against a running gateway."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
_CREATED = re.compile(r"Created key ([0-9a-f]{32}) '([^']*)' in workspace ([0-9a-z-]+)\.")
_PLAINTEXT = re.compile(r"^\s+(sk-sw-[A-Za-z0-9_-]+)\s*$", re.MULTILINE)
REVOCATION_WINDOW = 2.0


class NewKey:
    def __init__(self, key_id: str, workspace_id: str, plaintext: str) -> None:
        self.key_id = key_id
        self.workspace_id = workspace_id
        self.plaintext = plaintext


def create_key(gateway: GatewayProcess, *args: str) -> NewKey:
    result = gateway.cli("keys", "create", *args)
    assert result.returncode == 0, result.stderr
    created = _CREATED.search(result.stdout)
    assert created is not None, result.stdout
    plaintexts = _PLAINTEXT.findall(result.stdout)
    assert len(plaintexts) == 1, result.stdout
    return NewKey(created.group(1), created.group(3), plaintexts[0])


def post_chat(http: httpx.Client, gateway: GatewayProcess, key: str) -> int:
    """One request on a fresh connection, so a multi-worker gateway may route it anywhere."""
    response = http.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "mock-gpt", "messages": HELLO},
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
    )
    return response.status_code


def chat_status(gateway: GatewayProcess, key: str) -> int:
    with httpx.Client(timeout=10) as http:
        return post_chat(http, gateway, key)


class KeepUsing:
    """Uses a key in a background thread until the block ends, keeping it in every key cache."""

    def __init__(self, gateway: GatewayProcess, key: str) -> None:
        self.statuses: list[int] = []
        self._gateway = gateway
        self._key = key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                self.statuses.append(post_chat(http, self._gateway, self._key))

    def __enter__(self) -> KeepUsing:
        self._thread.start()
        deadline = time.monotonic() + 5
        while len(self.statuses) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def assert_revocation_takes_effect(gateway: GatewayProcess, key: NewKey) -> None:
    """Revoke a key that is in use: it must stop working within the revocation window."""
    with KeepUsing(gateway, key.plaintext) as use:
        result = gateway.cli("keys", "revoke", key.key_id)
    revoked_at = time.monotonic()
    assert result.returncode == 0, result.stderr
    assert key.key_id in result.stdout
    assert use.statuses.count(200) >= 10, use.statuses

    deadline = revoked_at + REVOCATION_WINDOW
    while chat_status(gateway, key.plaintext) != 401:
        assert time.monotonic() < deadline, (
            f"the revoked key still worked {REVOCATION_WINDOW} s after revocation"
        )
        time.sleep(0.05)
    time.sleep(max(0.0, revoked_at + 1.5 - time.monotonic()))
    with httpx.Client(timeout=10) as http:
        statuses = [post_chat(http, gateway, key.plaintext) for _ in range(12)]
    assert statuses == [401] * 12, statuses


def assert_plaintext_not_stored(database: Database, plaintext: str) -> None:
    for table in ("api_keys", "workspaces", "traces", "spans", "ai_interactions"):
        for row in database.rows(f"SELECT * FROM {table}"):
            assert plaintext not in repr(row), (table, row)


# --- virtual keys -----------------------------------------------------------------------------


def test_created_key_is_shown_once_works_and_is_stored_hashed(gateway: GatewayProcess) -> None:
    key = create_key(gateway, "--name", "ci")
    assert key.plaintext.startswith("sk-sw-")

    raw = gateway.client(api_key=key.plaintext).chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO
    )
    assert raw.parse().choices[0].message.content
    trace = gateway.database.wait_rows(
        "SELECT api_key_id FROM traces WHERE trace_id = :t", t=raw.headers["x-steerway-trace-id"]
    )
    assert trace[0]["api_key_id"] == key.key_id

    listing = gateway.cli("keys", "list")
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if key.key_id in line)
    assert key.plaintext[:12] + "..." in line
    assert "ci" in line and "active" in line
    assert key.plaintext not in listing.stdout + listing.stderr

    rows = gateway.database.rows("SELECT * FROM api_keys WHERE key_id = :k", k=key.key_id)
    assert rows[0]["key_hash"] == hashlib.sha256(key.plaintext.encode()).hexdigest()
    assert rows[0]["display_prefix"] == key.plaintext[:12] + "..."
    assert_plaintext_not_stored(gateway.database, key.plaintext)


def test_revoked_key_is_rejected_within_the_cache_window(gateway: GatewayProcess) -> None:
    key = create_key(gateway, "--name", "to-revoke")
    assert_revocation_takes_effect(gateway, key)

    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client(api_key=key.plaintext).chat.completions.create(
            model="mock-gpt", messages=HELLO
        )
    assert caught.value.code == "invalid_api_key"
    everything = gateway.cli("keys", "list", "--all").stdout
    assert "revoked" in next(line for line in everything.splitlines() if key.key_id in line)


def test_revocation_reaches_every_worker(
    migrated_postgres_url: str,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    """Several workers is the production set-up, so this runs on Postgres."""
    gateway = start_gateway(
        Database(migrated_postgres_url),
        mock_config(mock_provider),
        master_key="sk-master-" + secrets.token_hex(8),
        workers=2,
    )
    key = create_key(gateway, "--name", "multi-worker")
    assert_revocation_takes_effect(gateway, key)


def test_key_in_a_workspace_stamps_its_traces(gateway: GatewayProcess) -> None:
    slug = "team-" + secrets.token_hex(3)
    key = create_key(gateway, "--name", "team key", "--workspace", slug)
    workspace = gateway.database.rows("SELECT * FROM workspaces WHERE slug = :s", s=slug)
    assert len(workspace) == 1
    assert workspace[0]["workspace_id"] == key.workspace_id

    raw = gateway.client(api_key=key.plaintext).chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    trace = gateway.database.wait_rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)
    assert trace[0]["workspace_id"] == key.workspace_id
    interaction = gateway.database.wait_rows(
        "SELECT workspace_id, api_key_id FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    assert interaction[0] == {"workspace_id": key.workspace_id, "api_key_id": key.key_id}
    spans = gateway.database.rows("SELECT workspace_id FROM spans WHERE trace_id = :t", t=trace_id)
    assert spans and {s["workspace_id"] for s in spans} == {key.workspace_id}

    listed = gateway.cli("keys", "list", "--workspace", slug).stdout.splitlines()[1:]
    assert [line.split()[0] for line in listed if line.strip()] == [key.key_id]


def test_expired_key_is_rejected(gateway: GatewayProcess) -> None:
    expired = create_key(gateway, "--name", "old", "--expires", "2000-01-01T00:00:00")
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client(api_key=expired.plaintext).chat.completions.create(
            model="mock-gpt", messages=HELLO
        )
    assert caught.value.code == "invalid_api_key"
    line = next(
        line for line in gateway.cli("keys", "list").stdout.splitlines() if expired.key_id in line
    )
    assert "expired" in line


# --- the master key ---------------------------------------------------------------------------


def _read_banner(gateway: GatewayProcess) -> str:
    """The lines `steerway serve` printed before it started listening."""
    stdout = gateway.process.stdout
    assert stdout is not None
    lines = []
    for raw in iter(stdout.readline, b""):
        line = raw.decode()
        lines.append(line)
        if "Steerway listening" in line:
            break
    return "".join(lines)


@pytest.fixture
def fresh_database(migrated_database_url: str) -> Database:
    return Database(migrated_database_url)


def test_generated_master_key_is_printed_once_and_stored_hashed(
    fresh_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    config = mock_config(mock_provider)
    first = start_gateway(fresh_database, config)
    banner = _read_banner(first)
    found = _PLAINTEXT.findall(banner)
    assert len(found) == 1, banner
    master = found[0]
    assert "Generated master key" in banner

    models = first.client(api_key=master).models.list()
    assert "mock-gpt" in {m.id for m in models}
    rows = fresh_database.rows("SELECT * FROM api_keys")
    assert [(r["role"], r["key_hash"]) for r in rows] == [
        ("master", hashlib.sha256(master.encode()).hexdigest())
    ]
    output = banner + first.stop()
    assert output.count(master) == 1
    assert_plaintext_not_stored(fresh_database, master)

    second = start_gateway(fresh_database, config)
    assert second.client(api_key=master).models.list().data
    later_output = second.stop()
    assert master not in later_output
    assert "Generated master key" not in later_output
    assert not _PLAINTEXT.search(later_output)
    assert len(fresh_database.rows("SELECT key_id FROM api_keys")) == 1
