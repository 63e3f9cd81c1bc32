"""A small fuzz run on every `make test`: mutated `/v1` requests and the admin API from its
OpenAPI document, on SQLite and Postgres. `python -m tests.fuzz` runs a large one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Database
from tests.fuzz.admin import fuzz_admin_api
from tests.fuzz.corpus import Corpus
from tests.fuzz.harness import FuzzGateway, Report, check_log, check_recorded, run
from tests.fuzz.otlp import PATH, check_answer, otlp_cases

V1_CASES = 400
OTLP_CASES = 300
ADMIN_EXAMPLES = 5
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


def test_mutated_otlp_exports_are_answered_in_otlps_shape_never_5xx(
    backend_database: Database, start_fuzz_gateway: Callable[..., FuzzGateway]
) -> None:
    gateway = start_fuzz_gateway(backend_database)
    problems: list[str] = []
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        for case in otlp_cases(SEED, gateway.master_key, OTLP_CASES):
            headers = {**case.headers, "content-type": case.content_type}
            response = client.post(PATH, content=case.body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            problem = check_answer(case, response)
            if problem is not None:
                problems.append(f"{case.describe()}: {problem}")
    report = Report()
    check_log(gateway.stop(), report)
    problems.extend(report.problems)
    if problems:
        pytest.fail(f"statuses {statuses}\n" + "\n".join(problems[:20]), pytrace=False)
    # the mutations reach the decoder and past it: both refusals and acceptances
    assert statuses.get(200, 0) >= OTLP_CASES // 10, statuses
    assert statuses.get(400, 0) >= OTLP_CASES // 10, statuses


def test_admin_api_fuzzed_from_its_openapi_document(
    backend_database: Database, start_fuzz_gateway: Callable[..., FuzzGateway], tmp_path: Path
) -> None:
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
