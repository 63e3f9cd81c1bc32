"""A small fuzz run on every `make test`: mutated `/v1` requests, on SQLite and Postgres. The admin
API's run (`test_fuzz_admin.py`) and the OTLP ingest's (`test_fuzz_otlp.py`) are files of their
own, so that `make test` may run them in different processes. `python -m tests.fuzz` runs a large one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Database
from tests.fuzz.corpus import Corpus
from tests.fuzz.harness import FuzzGateway, check_log, check_recorded, run

V1_CASES = 400
SEED = 13


def test_mutated_v1_requests_hold_the_invariants(
    backend_database: Database, start_fuzz_gateway: Callable[..., FuzzGateway]
) -> None:
    gateway = start_fuzz_gateway(backend_database)
    report = run(gateway, Corpus(SEED, gateway.master_key).cases(V1_CASES))
    check_log(gateway.stop(), report)
    checked = check_recorded(backend_database, report, timeout=10)
    if report.problems:
        pytest.fail(report.summary() + "\n" + "\n".join(report.problems[:20]), pytrace=False)
    statuses = report.statuses()
    # The corpus reaches the provider as well as the validation: not everything is refused.
    assert statuses.get(200, 0) >= V1_CASES // 10, statuses
    assert checked >= V1_CASES // 2
