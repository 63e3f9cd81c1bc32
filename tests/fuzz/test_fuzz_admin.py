"""A small fuzz run of the admin API from its OpenAPI document on every `make test`, on SQLite
here and on Postgres in `test_fuzz_admin_postgres.py`: the longest tests of the suite, in two
files so that two test processes run them at once. `python -m tests.fuzz` runs a large one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Database
from tests.fuzz.admin import fuzz_admin_api
from tests.fuzz.harness import FuzzGateway
from tests.fuzz.test_fuzz import SEED

ADMIN_EXAMPLES = 3
"""Random examples per operation in the fuzzing phase. Most of the run is the coverage phase
(some 7,500 cases of each parameter's boundaries and wrong types, whatever this number); each
random example costs several of those."""


@pytest.mark.parametrize("backend_database", ["sqlite"], indirect=True)
def test_admin_api_fuzzed_from_its_openapi_document(
    backend_database: Database, start_fuzz_gateway: Callable[..., FuzzGateway], tmp_path: Path
) -> None:
    fuzz_and_check(backend_database, start_fuzz_gateway, tmp_path)


def fuzz_and_check(
    backend_database: Database, start_fuzz_gateway: Callable[..., FuzzGateway], tmp_path: Path
) -> None:
    """Every operation of the document exercised, no error answer, no traceback logged."""
    gateway = start_fuzz_gateway(backend_database)
    document = httpx.get(f"{gateway.url}/admin/api/openapi.json", timeout=10).json()
    operations = sum(
        method in ("get", "post", "put", "patch", "delete")
        for item in document["paths"].values()
        for method in item
    )
    result = fuzz_admin_api(
        gateway.url, gateway.master_key, examples=ADMIN_EXAMPLES, seed=SEED, report_dir=tmp_path
    )
    log = gateway.stop()
    assert "Traceback" not in log, log[-4000:]
    assert result.returncode == 0, result.output[-6000:]
    # every operation of the document was exercised
    assert f"Tested: {operations}\n" in result.output, result.output[-2000:]
