"""The admin API fuzzed from its own OpenAPI document with schemathesis (its command line, run
against a real gateway): every operation, valid and invalid bodies, query and path values, and
the stateful phase that follows the document's links from each create to what it created."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass(frozen=True)
class AdminFuzzResult:
    returncode: int
    output: str


def fuzz_admin_api(
    url: str,
    admin_key: str,
    *,
    examples: int,
    seed: int,
    report_dir: Path,
    max_time: int | None = None,
) -> AdminFuzzResult:
    """Run schemathesis with the server-error check over every admin operation."""
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/admin/api/openapi.json",
        "--header",
        f"Authorization: Bearer {admin_key}",
        "--checks",
        "not_a_server_error",
        "--mode",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    if max_time is not None:
        command += ["--max-time", str(max_time)]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=(max_time or 600) + 120
    )
    return AdminFuzzResult(completed.returncode, completed.stdout + completed.stderr)
