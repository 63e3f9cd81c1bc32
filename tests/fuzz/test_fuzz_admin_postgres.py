"""The admin API's small fuzz run on Postgres (`test_fuzz_admin.py` has SQLite's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Database
from tests.fuzz.harness import FuzzGateway
from tests.fuzz.test_fuzz_admin import fuzz_and_check


@pytest.mark.parametrize("backend_database", ["postgres"], indirect=True)
def test_admin_api_fuzzed_from_its_openapi_document(
    backend_database: Database, start_fuzz_gateway: Callable[..., FuzzGateway], tmp_path: Path
) -> None:
    fuzz_and_check(backend_database, start_fuzz_gateway, tmp_path)
