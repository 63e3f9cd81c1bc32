"""Installs the peer gateways (and py-spy) into `.bench/`, pinned, outside the project's venv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"
LITELLM_VERSION = "1.106.2"
PORTKEY_VERSION = "1.15.2"
PORTKEY_PACKAGE = "@portkey-ai/gateway"
INSTALL_TIMEOUT_S = 900


class PeerUnavailable(RuntimeError):
    """A peer cannot be installed or started; the message is the reason shown in the results."""


def steerway_executable() -> Path:
    return Path(sys.prefix) / "bin" / "steerway"


def _run_install(argv: list[str], *, cwd: Path | None, log: Path, what: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("wb") as out:
            done = subprocess.run(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT_S,
            )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PeerUnavailable(f"{what} failed: {error}") from error
    if done.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise PeerUnavailable(f"{what} exited with {done.returncode} (see {log}): {tail}")


def _python_package_version(python: Path, package: str) -> str | None:
    try:
        done = subprocess.run(
            [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _ensure_venv_package(venv: Path, requirement: str, package: str, version: str | None) -> Path:
    python = venv / "bin" / "python"
    installed = _python_package_version(python, package) if python.exists() else None
    if installed is not None and (version is None or installed == version):
        return python
    if not python.exists():
        _run_install(
            ["python3", "-m", "venv", str(venv)],
            cwd=None,
            log=BENCH_DIR / f"{venv.name}-install.log",
            what=f"python3 -m venv {venv.name}",
        )
    _run_install(
        [str(python), "-m", "pip", "install", "--quiet", requirement],
        cwd=None,
        log=BENCH_DIR / f"{venv.name}-install.log",
        what=f"pip install {requirement}",
    )
    return python


def ensure_litellm() -> tuple[Path, str]:
    """The `litellm` executable of `.bench/litellm-venv` and its version, installing it first."""
    venv = BENCH_DIR / "litellm-venv"
    python = _ensure_venv_package(
        venv, f"litellm[proxy]=={LITELLM_VERSION}", "litellm", LITELLM_VERSION
    )
    executable = venv / "bin" / "litellm"
    if not executable.exists():
        raise PeerUnavailable(f"{executable} missing after install")
    return executable, _python_package_version(python, "litellm") or "unknown"


def portkey_manifest() -> dict[str, object]:
    return {
        "name": "steerway-bench-portkey",
        "private": True,
        "dependencies": {PORTKEY_PACKAGE: PORTKEY_VERSION},
    }


def ensure_portkey() -> tuple[Path, str]:
    """Portkey's `start-server.js` under `.bench/portkey` and its version, installing it first."""
    root = BENCH_DIR / "portkey"
    package_dir = root / "node_modules" / "@portkey-ai" / "gateway"
    entry = package_dir / "build" / "start-server.js"
    installed = _package_json_version(package_dir / "package.json")
    if installed != PORTKEY_VERSION or not entry.exists():
        if shutil.which("npm") is None:
            raise PeerUnavailable("npm is not on PATH (Node.js 20 with npm is needed)")
        root.mkdir(parents=True, exist_ok=True)
        (root / "package.json").write_text(json.dumps(portkey_manifest(), indent=2) + "\n")
        _run_install(
            ["npm", "install", "--no-audit", "--no-fund"],
            cwd=root,
            log=BENCH_DIR / "portkey-install.log",
            what=f"npm install {PORTKEY_PACKAGE}@{PORTKEY_VERSION}",
        )
    if not entry.exists():
        raise PeerUnavailable(f"{entry} missing after npm install")
    return entry, _package_json_version(package_dir / "package.json") or "unknown"


def ensure_py_spy() -> Path:
    venv = BENCH_DIR / "pyspy-venv"
    _ensure_venv_package(venv, "py-spy", "py-spy", None)
    executable = venv / "bin" / "py-spy"
    if not executable.exists():
        raise PeerUnavailable(f"{executable} missing after install")
    return executable


def _package_json_version(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "not installed"
    try:
        return subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
