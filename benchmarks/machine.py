"""A description of the machine a run happened on, from /proc and the tools' own versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from benchmarks.peers import REPO, node_version
from benchmarks.wrk import wrk_path


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def memory_total_gib(meminfo: str) -> float | None:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _command_output(argv: list[str], *, any_status: bool = False) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    if not lines or (done.returncode != 0 and not any_status):
        return "unknown"
    return lines[0]


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every number of a run."""
    fields = _read("/proc/loadavg").split()
    return fields[0] if fields else "unknown"


def describe_machine(load_at_start: str) -> list[tuple[str, str]]:
    memory = memory_total_gib(_read("/proc/meminfo"))
    wrk = wrk_path()
    wrk_version = (
        _command_output([wrk, "--version"], any_status=True).split(" Copyright")[0]
        if wrk
        else "missing"
    )
    return [
        ("CPU", f"{cpu_model(_read('/proc/cpuinfo'))}, {os.cpu_count()} cores"),
        ("memory", f"{memory:.1f} GiB" if memory else "unknown"),
        ("kernel", platform.release()),
        ("Python", sys.version.split()[0]),
        ("Node.js", node_version()),
        ("wrk", wrk_version),
        ("load average (1 min) at start / end", f"{load_at_start} / {load_average()}"),
        ("Steerway commit", _command_output(["git", "rev-parse", "--short", "HEAD"])),
    ]
