"""Runs wrk with the request script in `lua/chat.lua` and parses its JSON summary line."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).parent / "lua" / "chat.lua"
INSTALL_HINT = "wrk is not installed: run `apt-get install -y wrk` (Debian/Ubuntu) and retry"
MARKER = "BENCH_JSON "


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    """Completed responses, whatever their status."""
    non_2xx: int
    """Responses with status >= 400 (wrk's own count)."""
    socket_errors: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok_requests(self) -> int:
        return self.requests - self.non_2xx

    @property
    def requests_per_s(self) -> float:
        """Successful responses per second: error answers do not count as throughput."""
        return self.ok_requests / self.duration_s if self.duration_s > 0 else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse_wrk_output(stdout: str) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise WrkError("wrk printed no summary line; is benchmarks/lua/chat.lua intact?")
    latency = data["latency_us"]
    errors = data["errors"]
    return WrkResult(
        requests=int(data["requests"]),
        non_2xx=int(errors["status"]),
        socket_errors=sum(int(errors[key]) for key in ("connect", "read", "write", "timeout")),
        duration_s=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000.0,
        p90_ms=latency["p90"] / 1000.0,
        p99_ms=latency["p99"] / 1000.0,
        max_ms=latency["max"] / 1000.0,
    )


def run_wrk(
    url: str,
    *,
    headers: Mapping[str, str],
    connections: int,
    duration_s: float,
    threads: int = 1,
    model: str = "bench-model",
    stream: bool = False,
    max_tokens: int = 16,
    timeout_s: float = 10.0,
    script: Path = SCRIPT,
    script_args: Sequence[str] = (),
) -> WrkResult:
    """Load `url` for `duration_s`. `script` gets model, stream, max_tokens and a run token after
    `--`, then `script_args`."""
    executable = wrk_path()
    if executable is None:
        raise WrkError(INSTALL_HINT)
    argv = [
        executable,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(script),
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv += [
        url,
        "--",
        model,
        "true" if stream else "false",
        str(max_tokens),
        uuid.uuid4().hex[:12],
        *script_args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip()[:300]}")
    return parse_wrk_output(done.stdout)
