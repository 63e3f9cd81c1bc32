"""End-to-end fixtures: the mock provider and the gateway as real processes on loopback.

The gateway runs as `steerway serve` in a subprocess, exactly as users start it, on SQLite and
on Postgres; the tests talk to it with the official `openai` SDK and read what it recorded
straight from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
import sqlalchemy as sa
import yaml

from telemetry.db import create_engine
from telemetry.rollup_folding import fold_pending
from tests.cli_in_process import run_cli
from tests.conftest import POSTGRES_URL, Dropper, copy_sqlite, service_missing
from tests.loopback import TLS
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
STEERWAY = str(Path(sys.executable).with_name("steerway"))


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until `url` answers 200. A process that never does is stopped here: the caller has no
    handle on it yet, and one left running would weigh on every test after.

    One client for every poll, not one a poll (`tests.loopback`)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0, verify=TLS) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"process exited with {process.returncode}:\n{output}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    output = stop(process)
    raise RuntimeError(f"{url} did not become ready in {timeout} s:\n{output}")


def stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM (graceful: the recorder flushes), then the captured output."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.stdout.read().decode() if process.stdout else ""


class MockProcess:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.process = subprocess.Popen(
            [STEERWAY, "mock-provider", "--host", "127.0.0.1", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_for(f"{self.url}/_mock/stats", self.process)

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_mock/stats", verify=TLS).json())

    def last_request(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_mock/last-request", verify=TLS).json())

    def reset(self) -> None:
        httpx.post(f"{self.url}/_mock/reset", verify=TLS)


class Database:
    """A database URL plus a way to run a query against it from synchronous tests."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            engine = create_engine(self.url)
            try:
                async with engine.connect() as conn:
                    result = await conn.execute(sa.text(sql), params)
                    return [dict(row._mapping) for row in result]
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def fold(self) -> None:
        """Sum the pending hour and day roll-ups now, as the gateway does every
        `telemetry.rollup_fold_interval_ms` (`telemetry.rollup_folding`)."""

        async def run() -> None:
            engine = create_engine(self.url)
            try:
                await fold_pending(engine)
            finally:
                await engine.dispose()

        asyncio.run(run())

    def wait_rows(
        self, sql: str, count: int = 1, timeout: float = 10.0, **params: Any
    ) -> list[dict[str, Any]]:
        """Poll until the recorder has written at least `count` rows for the query."""
        deadline = time.monotonic() + timeout
        rows = self.rows(sql, **params)
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            rows = self.rows(sql, **params)
        return rows


class _SdkHttpClient(openai.DefaultHttpxClient):
    """The SDK's default HTTP client, closed when dropped as the one it makes itself is."""

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class GatewayProcess:
    def __init__(
        self,
        database: Database,
        config: dict[str, Any] | None,
        tmp: Path,
        *,
        master_key: str | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.database = database
        self.master_key = master_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        environ.pop("STEERWAY_MASTER_KEY", None)
        environ.pop("STEERWAY_CONFIG", None)
        environ["STEERWAY_DATABASE_URL"] = database.url
        if master_key:
            environ["STEERWAY_MASTER_KEY"] = master_key
        if config is not None:
            path = tmp / f"steerway-{self.port}.yaml"
            config = {"telemetry": {"spill_dir": str(tmp / "spill")}, **config}
            path.write_text(yaml.safe_dump(config))
            environ["STEERWAY_CONFIG"] = str(path)
        environ.update(env or {})
        self.process = subprocess.Popen(
            [STEERWAY, "serve", "--port", str(self.port), "--workers", str(workers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=tmp,
            preexec_fn=preexec_fn,
        )
        wait_for(f"{self.url}/readyz", self.process, timeout=ready_timeout)

    def client(self, api_key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("http_client", _SdkHttpClient(verify=TLS))
        return openai.OpenAI(
            base_url=self.base_url, api_key=api_key or self.master_key, max_retries=0, **kwargs
        )

    def http(self, api_key: str | None = None) -> httpx.Client:
        key = api_key or self.master_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=TLS)

    def stream_and_leave(
        self, body: dict[str, Any], *, api_key: str | None = None, events: int = 3
    ) -> str:
        """Start a streamed chat, read `events` data events, then close the connection as a
        client that gives up would; the request's trace id."""
        with (
            self.http(api_key) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            seen = 0
            for line in response.iter_lines():
                seen += line.startswith("data:")
                if seen == events:
                    break
            return str(response.headers["x-steerway-trace-id"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`steerway ARGS` against this gateway's database, run in the test's process."""
        return run_cli(*args, env={"STEERWAY_DATABASE_URL": self.database.url})

    def stop(self) -> str:
        return stop(self.process)


def _create_postgres(template: str | None = None) -> str:
    """A new database's URL: empty, or a copy of `template`."""
    name = f"steerway_e2e_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""

    async def create() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as error:
        service_missing("Postgres", error)
    return f"{POSTGRES_URL.rpartition('/')[0]}/{name}"


def _drop_postgres(url: str) -> None:
    name = url.rpartition("/")[2]

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database of each backend in turn, shared by one test module: a copy of the
    session's migrated template."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "steerway.db"
        copy_sqlite(request.getfixturevalue("sqlite_template"), path)
        yield Database(f"sqlite:///{path}")
        return
    dropper: Dropper = request.getfixturevalue("dropper")
    url = _create_postgres(template=request.getfixturevalue("postgres_template"))
    try:
        yield Database(url)
    finally:
        dropper.drop(url.rpartition("/")[2])


_PROCESS_MOCK = pytest.StashKey[MockProcess]()


@pytest.fixture(scope="session")
def mock_provider(request: pytest.FixtureRequest) -> MockProcess:
    """The test process's one mock provider, started on first use, stopped after the session.

    Packages and modules outside tests/e2e import this fixture, and pytest keeps a definition
    (and a session value) per importer: all of them share this process. Its counters and
    scenario counts are the process's, so tests compare them before and after, or `reset()`.
    """
    mock = request.config.stash.get(_PROCESS_MOCK, None)
    if mock is None:
        mock = request.config.stash[_PROCESS_MOCK] = MockProcess()
        process = mock.process

        def stop_mock() -> None:
            stop(process)

        request.config.add_cleanup(stop_mock)
    return mock


def mock_config(mock: MockProcess, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "providers": {"mock": {"type": "openai", "base_url": mock.base_url}},
        "models": {
            "mock-gpt": [{"provider": "mock", "model": "mock-gpt"}],
            "mock-embedding": [{"provider": "mock", "model": "mock-embedding"}],
            "split": [
                {"provider": "mock", "model": "mock-gpt", "weight": 3},
                {"provider": "mock", "model": "mock-gpt-large", "weight": 1},
            ],
            "unpriced": [{"provider": "mock", "model": "some-unpriced-model"}],
        },
    }
    config.update(extra)
    return config


@pytest.fixture(scope="module")
def gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway on each backend in turn, configured against the mock provider."""
    tmp = tmp_path_factory.mktemp("gateway")
    config = mock_config(
        mock_provider,
        providers={
            "mock": {
                "type": "openai",
                "base_url": mock_provider.base_url,
                "timeouts": {"connect": 2, "first_byte": 2, "total": 10},
            }
        },
        limits={"max_body_bytes": 1_000_000},
        guardrails={
            "definitions": {
                "codenames": {"kind": "deny_list", "words": ["project falcon"], "action": "log"},
                "injection": {"kind": "prompt_injection", "action": "log"},
                "deny.words": {"kind": "deny_list", "words": ["unwelcome"], "action": "log"},
            }
        },
    )
    process = GatewayProcess(
        backend_database, config, tmp, master_key="sk-master-" + secrets.token_hex(8)
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def start_gateway(
    tmp_path: Path,
) -> Iterator[Callable[..., GatewayProcess]]:
    """Start extra gateways with their own settings; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def start(database: Database, config: dict[str, Any] | None, **kwargs: Any) -> GatewayProcess:
        process = GatewayProcess(database, config, tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
