"""The processes, database and files around the gateway that the fault scenario breaks and mends.

`FaultStack` is what every fault of a run shares: the mock provider, the database (Postgres
reached through a forwarder process, or a SQLite file), Redis reached through a forwarder of its
own, and the virtual keys. `FaultGateway` is one `steerway serve` with its own config and spill
folder, which a fault may stop, restart, starve of disk or of its spill folder.

The database goes away as it does in production: Postgres behind a forwarder that drops every
connection and refuses new ones; SQLite held by another process in a write transaction (reads,
and so key checks, go on; every write waits out the busy timeout, then fails). Nothing here
touches the Postgres or Redis server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import secrets
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import yaml

from benchmarks import peers
from benchmarks.faults_catalog import GatewaySpec
from benchmarks.faults_load import CHAT_MODEL, EMBEDDING_MODEL
from benchmarks.forwarder import ForwarderProcess
from benchmarks.processes import (
    ManagedProcess,
    StartupError,
    base_environment,
    free_port,
    run_checked,
    wait_until_ready,
)
from benchmarks.stores import create_database, drop_database, flush_redis, sum_samples
from benchmarks.targets import UPSTREAM_MODEL, Workspace, create_keys

FIRST_BYTE_TIMEOUT_S: Final = 2.0
COOLDOWN_PERIOD_S: Final = 5
KEY_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "plain": (),
    "limited": ("--rpm", "1000000", "--tpm", "1000000000", "--max-parallel", "1000"),
    "budgeted": ("--budget", "100000/daily"),
}
"""Virtual keys: one without limits, one with rate limits that never bite, one with a budget
that is never reached (with Redis, each of the three concerns has a key it applies to)."""
MASTER: Final = "master"
REPLAY_TIMEOUT_S: Final = 120.0
SIGXFSZ_MASK: Final = 1 << (signal.SIGXFSZ - 1)


class FaultStack:
    """The mock, database, Redis and keys that every fault of one run shares."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        mock_base_url: str,
        store: str,
        postgres_url: str,
        redis_url: str,
        keys: Mapping[str, tuple[str, ...]] = KEY_OPTIONS,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.postgres_url = postgres_url
        self.redis_url = redis_url
        self.mock_base_url = mock_base_url
        self.home = workspace.root / f"faults-{store}-{secrets.token_hex(3)}"
        self.home.mkdir(parents=True)
        self.executable = str(peers.steerway_executable())
        self.master_key = f"sk-fault-master-{secrets.token_hex(16)}"
        self._database_forwarder: ForwarderProcess | None = None
        self._redis_forwarder: ForwarderProcess | None = None
        self._sqlite_holder: sqlite3.Connection | None = None
        if store == "postgres":
            self.database_url = create_database(postgres_url)
            self._database_forwarder = ForwarderProcess.for_url(self.database_url)
            self.gateway_database_url = self._database_forwarder.url(self.database_url)
        else:
            self.database_url = f"sqlite:///{self.home / 'steerway.db'}"
            self.gateway_database_url = self.database_url
        env = self.environment(self.database_url)
        run_checked([self.executable, "migrate"], env=env, timeout=120, what="steerway migrate")
        created = create_keys([self.executable], env, keys)
        self.keys: dict[str, str] = {name: key.plaintext for name, key in created.items()}
        self.keys[MASTER] = self.master_key

    def environment(self, database_url: str) -> dict[str, str]:
        return base_environment(self.home) | {
            "STEERWAY_DATABASE_URL": database_url,
            "STEERWAY_MASTER_KEY": self.master_key,
        }

    def redis_forwarder(self) -> ForwarderProcess:
        if self._redis_forwarder is None:
            self._redis_forwarder = ForwarderProcess.for_url(self.redis_url, 6379)
        return self._redis_forwarder

    def flush_redis(self) -> None:
        flush_redis(self.redis_url)

    # -- the database going away -----------------------------------------------------------

    def database_away(self) -> None:
        if self._database_forwarder is not None:
            self._database_forwarder.cut()
            return
        path = self.database_url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        self._sqlite_holder = holder

    def database_stalled(self) -> None:
        """Postgres stops answering without dropping a connection; SQLite: as `database_away`."""
        if self._database_forwarder is not None:
            self._database_forwarder.stall()
            return
        self.database_away()

    def database_back(self) -> None:
        if self._database_forwarder is not None:
            self._database_forwarder.restore()
            return
        holder, self._sqlite_holder = self._sqlite_holder, None
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()

    # -- what was recorded -----------------------------------------------------------------

    def recorded(self, trace_ids: list[str]) -> dict[str, int | None]:
        """The `http_status` stored for each of these trace ids that has a trace row."""
        if not trace_ids:
            return {}
        if self.store == "sqlite":
            path = self.database_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
                connection.execute("CREATE TEMP TABLE wanted (trace_id TEXT PRIMARY KEY)")
                connection.executemany(
                    "INSERT OR IGNORE INTO wanted VALUES (?)", [(t,) for t in trace_ids]
                )
                rows = connection.execute(
                    "SELECT trace_id, http_status FROM traces JOIN wanted USING (trace_id)"
                ).fetchall()
                return {str(trace_id): status for trace_id, status in rows}

        async def fetch() -> dict[str, int | None]:
            connection = await asyncpg.connect(self.database_url, timeout=10)
            try:
                rows = await connection.fetch(
                    "SELECT trace_id, http_status FROM traces WHERE trace_id = ANY($1::text[])",
                    trace_ids,
                )
            finally:
                await connection.close()
            return {str(row["trace_id"]): row["http_status"] for row in rows}

        return asyncio.run(fetch())

    def processed(self, request_ids: list[str]) -> set[str]:
        """Which of these `x-request-id` values have a trace row: requests the gateway handled."""
        if not request_ids:
            return set()
        if self.store == "sqlite":
            path = self.database_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
                marks = ",".join("?" * len(request_ids))
                rows = connection.execute(
                    f"SELECT request_id FROM traces WHERE request_id IN ({marks})", request_ids
                ).fetchall()
                return {str(row[0]) for row in rows}

        async def fetch() -> set[str]:
            connection = await asyncpg.connect(self.database_url, timeout=10)
            try:
                rows = await connection.fetch(
                    "SELECT request_id FROM traces WHERE request_id = ANY($1::text[])",
                    request_ids,
                )
            finally:
                await connection.close()
            return {str(row["request_id"]) for row in rows}

        return asyncio.run(fetch())

    def close(self) -> None:
        self.database_back()
        for forwarder in (self._database_forwarder, self._redis_forwarder):
            if forwarder is not None:
                forwarder.close()
        if self.store == "postgres":
            with contextlib.suppress(Exception):
                drop_database(self.postgres_url, self.database_url)


def gateway_config(
    stack: FaultStack,
    spec: GatewaySpec,
    spill_dir: Path,
    *,
    first_byte_timeout_s: float = FIRST_BYTE_TIMEOUT_S,
    cooldown_period_s: float = COOLDOWN_PERIOD_S,
) -> dict[str, Any]:
    reliability = {
        "retries": {"attempts": 1, "backoff": 0.05, "max_backoff": 2},
        "cooldown": {"failures": 3, "window": 60, "period": cooldown_period_s},
    }
    telemetry: dict[str, Any] = {"spill_dir": str(spill_dir)}
    if spec.durability != "memory":
        telemetry["durability"] = spec.durability
    config: dict[str, Any] = {
        "providers": {
            "mock": {
                "type": "openai",
                "base_url": stack.mock_base_url,
                "timeouts": {"connect": 2, "first_byte": first_byte_timeout_s, "total": 30},
            }
        },
        "models": {
            CHAT_MODEL: {
                "deployments": [{"provider": "mock", "model": UPSTREAM_MODEL}],
                **reliability,
            },
            EMBEDDING_MODEL: {
                "deployments": [{"provider": "mock", "model": "mock-embedding"}],
                **reliability,
            },
        },
        "telemetry": telemetry,
    }
    if spec.stale_key_ttl_s:
        config["auth"] = {"stale_key_ttl_seconds": spec.stale_key_ttl_s}
    if spec.redis_policies_flipped:
        config["cache"] = {"on_redis_error": "closed"}
        config["rate_limits"] = {"on_redis_error": "closed"}
        config["budgets"] = {"on_redis_error": "open"}
    return config


@dataclass
class FaultGateway:
    """One `steerway serve` for one fault: its folder, config, spill folder and port stay the
    same across restarts."""

    stack: FaultStack
    spec: GatewaySpec
    name: str
    first_byte_timeout_s: float = FIRST_BYTE_TIMEOUT_S
    cooldown_period_s: float = COOLDOWN_PERIOD_S
    process: ManagedProcess | None = None
    scrapes: list[str] = field(default_factory=list)
    """`/metrics` of each process, taken just before it was stopped."""
    stop_seconds: list[float] = field(default_factory=list)
    """How long each SIGTERM took to end the process."""
    spilled_at_stops: int = 0
    """Requests the stops put in spill files (after the last scrape of their process)."""

    def __post_init__(self) -> None:
        self.home = self.stack.home / self.name
        self.home.mkdir(parents=True)
        self.spill_dir = self.home / "spill"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config_path = self.home / "steerway.yaml"
        config = gateway_config(
            self.stack,
            self.spec,
            self.spill_dir,
            first_byte_timeout_s=self.first_byte_timeout_s,
            cooldown_period_s=self.cooldown_period_s,
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.env = self.stack.environment(self.stack.gateway_database_url) | {
            "STEERWAY_CONFIG": str(config_path)
        }
        if self.spec.redis:
            self.env["STEERWAY_REDIS_URL"] = self.stack.redis_forwarder().url(self.stack.redis_url)
        self._file_size_limit: tuple[int, int] | None = None

    @property
    def log_path(self) -> Path:
        return self.stack.workspace.logs / f"fault-{self.name}.log"

    def start(self) -> None:
        argv = [self.stack.executable, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = self.stack.workspace.spawn(
            f"fault-{self.name}", argv, self.env, cwd=self.home, piped=True
        )
        wait_until_ready(self.process, f"{self.base_url}/readyz", timeout=90)

    def scrape(self) -> str:
        request = urllib.request.Request(f"{self.base_url}/metrics")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return str(response.read().decode())
        except (OSError, urllib.error.URLError):
            return ""

    def terminate(self) -> None:
        """SIGTERM (after a scrape of its metrics) and wait until the process is gone."""
        process = self.process
        if process is None:
            return
        waiting = self.spill_lines()
        self.scrapes.append(self.scrape())
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.popen.wait(timeout=60)
        except Exception:
            process.stop(timeout=1)
        self.stop_seconds.append(time.monotonic() - started)
        self.spilled_at_stops += max(0, self.spill_lines() - waiting)
        self.stack.workspace.stop(process)
        self.process = None

    def stop(self) -> None:
        self.terminate()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    # -- the spill folder ------------------------------------------------------------------

    def spill_lines(self) -> int:
        """Requests waiting in spill files (one line each)."""
        total = 0
        if not self.spill_dir.is_dir():
            return 0
        for path in self.spill_dir.glob("*.spill.jsonl"):
            with contextlib.suppress(OSError):
                total += path.read_bytes().count(b"\n")
        return total

    def replay_leftovers(self) -> bool:
        """Start the gateway once more when spill files are left, until it has replayed them
        (as the next start would); False when some are still there after the timeout."""
        if self.spill_lines() == 0:
            return True
        self.start()
        deadline = time.monotonic() + REPLAY_TIMEOUT_S
        while time.monotonic() < deadline and self.spill_lines():
            time.sleep(0.5)
        self.terminate()
        return self.spill_lines() == 0

    @property
    def _blocked_spill_dir(self) -> Path:
        return self.spill_dir.with_name("spill-moved-away")

    def block_spill_dir(self) -> None:
        """Put a file where the spill folder should be: creating it fails (for root too)."""
        if self.spill_dir.is_dir():
            self.spill_dir.rename(self._blocked_spill_dir)
        self.spill_dir.write_text("not a folder\n")

    def unblock_spill_dir(self) -> None:
        if self.spill_dir.is_file():
            self.spill_dir.unlink()
        if self._blocked_spill_dir.is_dir():
            self._blocked_spill_dir.rename(self.spill_dir)

    def limit_file_size(self, limit: int | None) -> None:
        """Make the disk look full to the gateway: no file it writes may grow past `limit`
        bytes (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write past it fails with EFBIG);
        None lifts it. Its log goes through a pipe, which the limit does not cover."""
        process = self.process
        if process is None:
            raise StartupError("the gateway is not running")
        if limit is None:
            if self._file_size_limit is not None:
                resource.prlimit(process.pid, resource.RLIMIT_FSIZE, self._file_size_limit)
                self._file_size_limit = None
            return
        if not _ignores_sigxfsz(process.pid):
            raise StartupError(
                "the gateway does not ignore SIGXFSZ: a file size limit would kill it"
            )
        previous = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        self._file_size_limit = self._file_size_limit or previous
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, previous[1]))


@dataclass
class FaultPhase:
    """What a fault's `begin` and `end` act on (they run in a thread beside the load)."""

    stack: FaultStack
    gateway: FaultGateway
    clock: Callable[[], float] = time.monotonic
    """The load's clock (`Load.now`), so marks line up with requests."""
    marks: dict[str, float] = field(default_factory=dict)
    """Moments worth reporting, such as when SIGTERM was sent."""

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def mark(self, name: str) -> None:
        self.marks[name] = self.clock()


def _ignores_sigxfsz(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return match is not None and bool(int(match.group(1), 16) & SIGXFSZ_MASK)


def metric(scrapes: list[str], name: str, **labels: str) -> float:
    """The sum of a counter over the processes scraped (each starts from zero)."""
    total = 0.0
    for text in scrapes:
        value = sum_samples(
            text, name, (lambda found: all(found.get(k) == v for k, v in labels.items()))
        )
        total += value or 0.0
    return total


_DROPPED_LINES: Final = (
    re.compile(r"telemetry: (\d+) bundles could not be written before shutdown; dropped"),
    re.compile(r"telemetry: (\d+) bundles lost"),
    re.compile(r"telemetry bundle for trace \S+ (?:rejected by the database|cannot be spilled)()"),
)
_SPEND_NOT_WRITTEN: Final = re.compile(
    r"budget spend of (\d+) micro-dollars could not be written on close"
)


def log_problems(text: str) -> dict[str, int]:
    """Tracebacks, unhandled errors, the records the recorder said it dropped and the budget
    spend a stop could not write, in a log."""
    dropped = 0
    for pattern in _DROPPED_LINES:
        for match in pattern.finditer(text):
            dropped += int(match.group(1) or 1)
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "unhandled": len(re.findall(r"unhandled error", text)),
        "dropped_logged": dropped,
        "spend_lost_micros": sum(int(m.group(1)) for m in _SPEND_NOT_WRITTEN.finditer(text)),
    }
