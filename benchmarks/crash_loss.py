"""Crash loss: how many served requests a `kill -9` of Steerway takes with it.

One case: a fresh database (a SQLite file or a new Postgres database) and spill folder; Steerway
started against the plain mock with the case's `telemetry.durability`; a burst of chat
completions from `concurrency` clients, each complete 2xx answer's `x-steerway-trace-id` kept;
`kill -9` of the gateway as soon as `served` answers are in (requests still in flight are cut
off, and answers already on their way still count as served); then the same Steerway started
again on the same database and spill folder, which replays what it finds; and the served trace
ids looked up in `traces`.

The writer "keeps up" when nothing holds it back. It is "behind" when another session holds a
lock on `traces` from before the burst until after the kill: its first batch then waits, and
everything after it waits in memory, as when the database is slower than the request rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp
import asyncpg
import yaml

from benchmarks import peers
from benchmarks.processes import (
    ManagedProcess,
    base_environment,
    free_port,
    run_checked,
    wait_until_ready,
)
from benchmarks.stores import create_database, drop_database
from benchmarks.targets import PLAIN_MODEL, Mocks, SteerwayOptions, Workspace, steerway_config

STORES: Final = ("sqlite", "postgres")
MODES: Final = ("memory", "spill-first")
WRITERS: Final = ("keeps up", "behind")
REPLAY_TIMEOUT_S: Final = 60.0
SETTLED_AFTER_S: Final = 1.0


@dataclass(frozen=True)
class CrashCase:
    store: str
    durability: str
    writer: str

    @property
    def name(self) -> str:
        return f"{self.durability}, {self.store}, writer {self.writer}"

    @property
    def slug(self) -> str:
        return f"crash-{self.durability}-{self.store}-{self.writer.replace(' ', '-')}"


@dataclass(frozen=True)
class CrashOutcome:
    served: int
    """Complete 2xx answers the clients received (some may arrive just after the kill)."""
    recorded: int
    """Served requests whose trace row is in the database after the restart's replay."""
    cut: int
    """Requests the kill cut off without a complete answer (not served, not counted)."""
    burst_s: float
    """From the first request to the kill."""

    @property
    def lost(self) -> int:
        return self.served - self.recorded


def all_cases(stores: tuple[str, ...] = STORES) -> list[CrashCase]:
    return [
        CrashCase(store, durability, writer)
        for durability in MODES
        for store in stores
        for writer in WRITERS
    ]


class CrashRun:
    """The files, database and processes of one case; `close()` removes what it created."""

    def __init__(
        self, workspace: Workspace, mocks: Mocks, case: CrashCase, postgres_url: str
    ) -> None:
        self.case = case
        self.home = workspace.root / f"{case.slug}-{uuid.uuid4().hex[:6]}"
        self.home.mkdir(parents=True)
        self.workspace = workspace
        self.postgres_url = postgres_url
        self.database_url = (
            create_database(postgres_url)
            if case.store == "postgres"
            else f"sqlite:///{self.home / 'steerway.db'}"
        )
        self.spill_dir = self.home / "spill"
        telemetry: dict[str, object] = {"spill_dir": str(self.spill_dir)}
        if case.durability != "memory":
            telemetry["durability"] = case.durability
        config_path = self.home / "steerway.yaml"
        config = steerway_config(mocks, SteerwayOptions(config={"telemetry": telemetry}))
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.master_key = f"sk-bench-{secrets.token_hex(16)}"
        self.env = base_environment(self.home) | {
            "STEERWAY_CONFIG": str(config_path),
            "STEERWAY_DATABASE_URL": self.database_url,
            "STEERWAY_MASTER_KEY": self.master_key,
        }
        self.executable = str(peers.steerway_executable())
        run_checked([self.executable, "migrate"], env=self.env, timeout=120, what="migrate")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, label: str) -> ManagedProcess:
        argv = [self.executable, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        process = self.workspace.spawn(f"{self.case.slug}-{label}", argv, self.env, cwd=self.home)
        wait_until_ready(process, f"{self.base}/readyz", timeout=60)
        return process

    def close(self) -> None:
        if self.case.store == "postgres":
            with contextlib.suppress(Exception):
                drop_database(self.postgres_url, self.database_url)


def run_crash_case(
    workspace: Workspace,
    mocks: Mocks,
    case: CrashCase,
    *,
    served: int,
    concurrency: int,
    postgres_url: str,
) -> CrashOutcome:
    run = CrashRun(workspace, mocks, case, postgres_url)
    try:
        first = run.start("first")
        trace_ids, cut, burst_s = asyncio.run(_burst_and_kill(run, first, served, concurrency))
        workspace.stop(first)  # already dead; reaps it
        second = run.start("restart")
        try:
            recorded = _wait_for_replay(run, trace_ids)
        finally:
            workspace.stop(second)
        return CrashOutcome(len(trace_ids), recorded, cut, burst_s)
    finally:
        run.close()


async def _burst_and_kill(
    run: CrashRun, process: ManagedProcess, target: int, concurrency: int
) -> tuple[list[str], int, float]:
    served: list[str] = []
    cut = 0
    killed = asyncio.Event()
    started = time.monotonic()
    stopped_at = started
    url = f"{run.base}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {run.master_key}"}

    async def client(session: aiohttp.ClientSession, number: int) -> None:
        nonlocal cut, stopped_at
        sent = 0
        while not killed.is_set():
            sent += 1
            body = {
                "model": PLAIN_MODEL,
                "messages": [{"role": "user", "content": f"crash {number}-{sent}"}],
                "max_tokens": 8,
            }
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        served.append(response.headers["x-steerway-trace-id"])
            except (TimeoutError, aiohttp.ClientError):
                cut += 1
                return
            if len(served) >= target and not killed.is_set():
                os.killpg(process.pid, signal.SIGKILL)
                stopped_at = time.monotonic()
                killed.set()

    async with _writer_held_back(run) if run.case.writer == "behind" else _nothing():
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(client(session, i) for i in range(concurrency)))
        process.popen.wait(timeout=10)
    return served, cut, stopped_at - started


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


@contextlib.asynccontextmanager
async def _writer_held_back(run: CrashRun) -> AsyncIterator[None]:
    """Another session's lock on `traces`, held until the gateway is dead."""
    if run.case.store == "postgres":
        connection = await asyncpg.connect(run.database_url, timeout=5)
        try:
            transaction = connection.transaction()
            await transaction.start()
            await connection.execute("LOCK TABLE traces IN ACCESS EXCLUSIVE MODE")
            yield
            await transaction.rollback()
        finally:
            await connection.close()
        return
    path = run.database_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


def _wait_for_replay(run: CrashRun, trace_ids: list[str]) -> int:
    """Served trace ids found in `traces` once spill files are replayed and rows stop coming."""
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    found = _count_traces(run, trace_ids)
    changed = time.monotonic()
    while time.monotonic() < deadline and found < len(trace_ids):
        time.sleep(0.2)
        latest = _count_traces(run, trace_ids)
        if latest != found:
            found, changed = latest, time.monotonic()
        elif (
            not list(run.spill_dir.glob("*.spill.jsonl"))
            and time.monotonic() - changed >= SETTLED_AFTER_S
        ):
            break
    return found


def _count_traces(run: CrashRun, trace_ids: list[str]) -> int:
    if not trace_ids:
        return 0
    if run.case.store == "sqlite":
        path = run.database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as connection:
            connection.execute("CREATE TEMP TABLE served (trace_id TEXT PRIMARY KEY)")
            connection.executemany("INSERT INTO served VALUES (?)", [(t,) for t in trace_ids])
            query = "SELECT count(*) FROM traces JOIN served USING (trace_id)"
            return int(connection.execute(query).fetchone()[0])

    async def count() -> int:
        connection = await asyncpg.connect(run.database_url, timeout=5)
        try:
            query = "SELECT count(*) FROM traces WHERE trace_id = ANY($1::text[])"
            return int(await connection.fetchval(query, trace_ids))
        finally:
            await connection.close()

    return asyncio.run(count())


def describe(case: CrashCase, outcome: CrashOutcome) -> str:
    return (
        f"{case.name}: served {outcome.served}, recorded {outcome.recorded}, "
        f"lost {outcome.lost}, cut off {outcome.cut}, burst {outcome.burst_s:.2f} s"
    )
