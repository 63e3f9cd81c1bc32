"""Mutated OTLP exports to `POST /v1/traces` (protobuf and JSON, gzip, content types, keys), on
SQLite and Postgres: every answer is in OTLP's shape and none is a 5xx."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import Database
from tests.fuzz.harness import FuzzGateway, Report, check_log
from tests.fuzz.otlp import PATH, check_answer, otlp_cases

OTLP_CASES = 300
SEED = 13


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
