"""Child processes that always die with the harness: each runs in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


class StartupError(RuntimeError):
    """A process did not come up; the message says why and is safe to print."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_environment(home: Path) -> dict[str, str]:
    """A minimal environment: no credentials or proxy settings leak into a child."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMPDIR": str(home),
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    return env


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after `timeout` seconds."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None and not _group_alive(self.pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_dir: Path,
    cwd: Path | None = None,
    piped: bool = False,
) -> ManagedProcess:
    """Start a process in its own group, its output appended to `<log_dir>/<name>.log`.

    `piped`: the output goes through a pipe that a thread of this process copies to the log,
    rather than straight into the file, so a limit on the sizes of the files the child writes
    (RLIMIT_FSIZE, set to make its disk look full) does not cut its log short.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    if piped:
        popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert popen.stdout is not None
        threading.Thread(
            target=_copy_output, args=(popen.stdout, log_path), name=f"log-{name}", daemon=True
        ).start()
    else:
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    return ManagedProcess(name=name, argv=list(argv), popen=popen, log_path=log_path)


def _copy_output(source: IO[bytes], log_path: Path) -> None:
    with source, log_path.open("ab") as log:
        for line in source:
            log.write(line)
            log.flush()


def run_checked(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, what: str) -> str:
    """Run a short command and return its standard output; raise StartupError with the tail of
    its output when it fails."""
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as error:
        raise StartupError(f"{what} did not finish within {timeout:.0f} s") from error
    except OSError as error:
        raise StartupError(f"{what} could not run: {error}") from error
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
        tail = " | ".join(output[-5:])
        raise StartupError(f"{what} exited with {done.returncode}: {tail}")
    return done.stdout.decode(errors="replace")


def wait_until_ready(
    process: ManagedProcess,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Poll `url` until it answers 200, failing early when the process exits."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not process.alive():
            raise StartupError(
                f"{process.name} exited with {process.popen.returncode} during startup; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        request = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            last = type(error).__name__
        time.sleep(0.2)
    raise StartupError(
        f"{process.name} not ready at {url} after {timeout:.0f} s ({last}); "
        f"log {process.log_path}:\n{process.log_tail()}"
    )
