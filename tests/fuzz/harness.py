"""Run fuzz cases against a real gateway and hold it to the invariants.

The gateway runs as `steerway serve` in a subprocess (its log in a file, read at the end), the
mock provider as a real HTTP server beside it. After the run:

- no 5xx that the gateway originated (upstream errors passed on are allowed, with their codes);
- every error answer has OpenAI's shape;
- no traceback in the gateway's log;
- every request the gateway accepted with the valid key is recorded (its trace row, by the id
  the response carried);
- the gateway's memory stays bounded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.conftest import STEERWAY, Database, MockProcess, free_port, wait_for
from tests.fuzz.corpus import Case

UPSTREAM_CODES = frozenset({"upstream_error", "upstream_timeout", "no_deployment_available"})
"""5xx answers that report the provider's failure rather than the gateway's."""
NOT_RECORDED_STATUSES = frozenset({401, 404, 405})
"""Refused before the request reached a route with a key: counted, not stored one by one."""


@dataclass
class Outcome:
    case: Case
    status: int
    trace_id: str | None
    error_code: str | None
    problem: str | None = None


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    seconds: float = 0.0

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        return (
            f"{len(self.outcomes)} requests in {self.seconds:.1f} s; statuses {self.statuses()}; "
            f"gateway RSS {self.rss_start_mb:.0f} -> {self.rss_end_mb:.0f} MB; "
            f"{len(self.problems)} problems"
        )


class FuzzGateway:
    """A gateway against the mock provider, its output in `log_path`."""

    def __init__(self, database: Database, mock: MockProcess, tmp: Path, **config: Any) -> None:
        self.database = database
        self.master_key = "sk-fuzz-master-" + secrets.token_hex(8)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"gateway-{self.port}.log"
        settings: dict[str, Any] = {
            "providers": {
                "mock": {
                    "type": "openai",
                    "base_url": mock.base_url,
                    "timeouts": {"connect": 2, "first_byte": 5, "total": 20},
                }
            },
            "models": {
                "mock-gpt": [{"provider": "mock", "model": "mock-gpt"}],
                "mock-embedding": [{"provider": "mock", "model": "mock-embedding"}],
            },
            "telemetry": {"spill_dir": str(tmp / "spill"), "store_content": "full"},
            "limits": {"max_body_bytes": 2_000_000},
            **config,
        }
        config_path = tmp / f"steerway-{self.port}.yaml"
        config_path.write_text(yaml.safe_dump(settings))
        environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        environ.update(
            STEERWAY_DATABASE_URL=database.url,
            STEERWAY_MASTER_KEY=self.master_key,
            STEERWAY_CONFIG=str(config_path),
        )
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [STEERWAY, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=tmp,
        )
        wait_for(f"{self.url}/readyz", self.process)

    def rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> str:
        """SIGTERM (the recorder writes what it holds), then the whole log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.log_path.read_text(errors="replace")


def send(client: httpx.Client, case: Case) -> Outcome:
    try:
        if case.stream:
            with client.stream(
                case.method, case.path, headers=case.headers, content=case.body
            ) as r:
                body = r.read()
        else:
            r = client.request(case.method, case.path, headers=case.headers, content=case.body)
            body = r.content
    except httpx.HTTPError as error:
        return Outcome(case, 0, None, None, f"transport error {type(error).__name__}: {error}")
    trace_id = r.headers.get("x-steerway-trace-id")
    outcome = Outcome(case, r.status_code, trace_id, None)
    if r.status_code >= 400:
        outcome.error_code, outcome.problem = _check_error(r.status_code, body)
    return outcome


def _check_error(status: int, body: bytes) -> tuple[str | None, str | None]:
    try:
        error = json.loads(body)["error"]
        code = error["code"]
        missing = {"message", "type", "param", "code"} - set(error)
    except (ValueError, KeyError, TypeError):
        return None, f"{status} without OpenAI's error shape: {body[:200]!r}"
    if missing:
        return code, f"{status} error lacks {sorted(missing)}"
    if status >= 500 and code not in UPSTREAM_CODES:
        return code, f"{status} {code} originated by the gateway: {error.get('message')!r}"
    return code, None


def run(gateway: FuzzGateway, cases: Iterable[Case], *, warmup: int = 50) -> Report:
    """Send the cases one after another, then check the invariants."""
    report = Report()
    started = time.monotonic()
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        for position, case in enumerate(cases):
            if position == warmup:
                report.rss_start_mb = gateway.rss_mb()
            report.outcomes.append(send(client, case))
            if gateway.process.poll() is not None:
                report.problems.append(f"the gateway exited after {case.describe()}")
                break
    report.seconds = time.monotonic() - started
    report.rss_end_mb = gateway.rss_mb()
    if not report.rss_start_mb:
        report.rss_start_mb = report.rss_end_mb
    for outcome in report.outcomes:
        if outcome.problem is not None:
            report.problems.append(f"{outcome.case.describe()}: {outcome.problem}")
    return report


def check_log(log: str, report: Report) -> None:
    for marker in ("Traceback (most recent call last)", "unhandled error"):
        if marker in log:
            at = log.index(marker)
            report.problems.append(
                f"gateway log holds {marker!r}:\n{log[max(0, at - 300) : at + 1500]}"
            )


def check_recorded(database: Database, report: Report, *, timeout: float = 30.0) -> int:
    """Every request accepted with the valid key has its trace row; returns how many were checked."""
    expected = {
        outcome.trace_id: outcome
        for outcome in report.outcomes
        if outcome.case.authenticated
        and outcome.trace_id
        and outcome.status not in NOT_RECORDED_STATUSES
    }
    deadline = time.monotonic() + timeout
    missing = set(expected)
    while missing and time.monotonic() < deadline:
        ids = sorted(missing)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = database.rows(
                "SELECT trace_id FROM traces WHERE trace_id IN ("
                + ", ".join(f":id{i}" for i in range(len(chunk)))
                + ")",
                **{f"id{i}": trace_id for i, trace_id in enumerate(chunk)},
            )
            missing -= {row["trace_id"] for row in rows}
        if missing:
            time.sleep(0.5)
    for trace_id in sorted(missing)[:20]:
        outcome = expected[trace_id]
        report.problems.append(
            f"{outcome.case.describe()}: answered {outcome.status} as trace {trace_id}, not recorded"
        )
    if len(missing) > 20:
        report.problems.append(f"... and {len(missing) - 20} more requests not recorded")
    return len(expected)
