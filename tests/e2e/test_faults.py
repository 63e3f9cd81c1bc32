"""A short run of the fault scenario (`python -m benchmarks faults`) against a real gateway under
light load, on SQLite and on Postgres: the upstream failing with 500s, streams cut midway, the
database away for 3 s, and SIGTERM with a restart, one after the other on one gateway.

Whatever the gateway answered while its key was accepted is recorded (found by the trace id the
answer carried, after a clean stop); no answer is a 500 `internal_error`; the log holds no
traceback; and every answer is one the documentation allows at its time. On Postgres the
database is cut behind a forwarder (virtual keys get 503 `service_unavailable` once their cache
entry expires); on SQLite another process holds the file for writing (key checks go on, writes
wait).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.faults_catalog import FAULTS
from benchmarks.faults_gateway import FaultStack
from benchmarks.faults_scenario import FaultTiming, LoadShape, run_sequence
from benchmarks.stores import StoreUnavailable
from benchmarks.targets import Workspace
from tests.conftest import POSTGRES_URL, REDIS_URL, service_missing
from tests.e2e.conftest import MockProcess

QUICK = FaultTiming(warm_s=1.0, fault_s=1.5, outage_s=3.0, recovery_s=1.0, settle_s=2.0)
LIGHT_LOAD = LoadShape(concurrency=4, rate=40.0)
SEQUENCE = ("upstream-5xx", "stream-cut", "database-away", "sigterm")


@pytest.fixture(params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, mock_provider: MockProcess
) -> Iterator[FaultStack]:
    workspace = Workspace(root=tmp_path / "faults")
    try:
        stack = FaultStack(
            workspace,
            mock_base_url=mock_provider.base_url,
            store=request.param,
            postgres_url=POSTGRES_URL,
            redis_url=REDIS_URL,
            keys={"plain": ()},
        )
    except StoreUnavailable as error:
        service_missing("Postgres", error)
    try:
        yield stack
    finally:
        workspace.stop_all()
        stack.close()


def test_faults_under_load_lose_nothing_accepted(stack: FaultStack) -> None:
    faults = [fault for name in SEQUENCE for fault in FAULTS if fault.name == name]
    report = run_sequence(stack, faults, QUICK, LIGHT_LOAD)
    counts = report.counts
    log = gateway_logs(stack)

    assert counts.lost == [], [o.trace_id for o in counts.lost]
    assert counts.untraceable == 0
    assert report.replayed
    assert counts.recorded == counts.to_record > 0
    assert counts.internal_errors == 0
    assert report.tracebacks == 0 and report.unhandled == 0, log
    assert not counts.unexpected, counts.unexpected

    during = counts.answers_during
    assert during["502 upstream_error"] > 0, during  # the upstream's 500s reached clients
    assert during["200 upstream_error incomplete"] > 0, during  # streams cut midway
    assert during["no answer (refused)"] > 0, during  # the gateway was down after SIGTERM
    if stack.store == "postgres":
        assert during["503 service_unavailable"] > 0, during
    # every request in flight at the signal was answered in full
    assert set(report.at_marks["SIGTERM"]) <= {"200"}, report.at_marks


def gateway_logs(stack: FaultStack) -> str:
    logs = sorted(stack.workspace.logs.glob("fault-*.log"))
    return "\n".join(path.read_text(errors="replace")[-4000:] for path in logs)
