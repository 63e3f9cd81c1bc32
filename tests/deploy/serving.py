"""`steerway serve` on a SQLite file, started the way the tests of the image start it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def sqlite_environment(database: Path) -> dict[str, str]:
    """This process's environment without provider keys or a config, on `database`."""
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.pop("STEERWAY_CONFIG", None)
    environ["STEERWAY_DATABASE_URL"] = f"sqlite:///{database}"
    return environ


def start_serve(
    steerway: str, port: int, environ: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [steerway, "serve", "--port", str(port)],
        env=environ,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
