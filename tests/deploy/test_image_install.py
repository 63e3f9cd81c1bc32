"""The Dockerfile's builder stage replayed without Docker: its COPY instructions copy the same
files into a fresh folder, its `uv sync` commands run there with the Makefile's uv, and the
environment they make serves from a folder outside the sources, as the runtime stage does: the
schema migrates, `/readyz` answers, the console's templates and stylesheets are in the package,
and no development dependency came along."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.deploy.serving import sqlite_environment, start_serve
from tests.deploy.stack_files import REPO, builder_stage
from tests.e2e.conftest import stop, wait_for
from tests.ports import free_port

UV = REPO / ".tools" / "bin" / "uv"


def _environment(rest: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(rest))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not UV.exists():
        pytest.fail("the Makefile's uv is missing: run `make install`", pytrace=False)
    root = tmp_path_factory.mktemp("image")
    venv = root / "venv"
    workdir = root
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    synced = 0
    for keyword, rest in builder_stage():
        if keyword == "ENV":
            env.update(_environment(rest))
        elif keyword == "WORKDIR":
            workdir = root / rest.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, target = shlex.split(rest)
            for source in sources:
                destination = (workdir / target).resolve()
                if (REPO / source).is_dir():
                    shutil.copytree(
                        REPO / source,
                        destination,
                        ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True,
                    )
                else:
                    shutil.copy(
                        REPO / source, destination / source if target.endswith("/") else destination
                    )
        elif keyword == "RUN" and rest.startswith("uv sync"):
            env["UV_PROJECT_ENVIRONMENT"] = str(venv)
            ran = subprocess.run(
                [str(UV), *shlex.split(rest)[1:]],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert ran.returncode == 0, ran.stderr
            synced += 1
    assert synced == 2
    return venv


def test_the_image_environment_holds_the_runtime_dependencies_only(installed: Path) -> None:
    python = str(installed / "bin" / "python")
    # Run from the environment's folder, so the sources beside the tests cannot be imported.
    for module in ("litestar", "asyncpg", "redis", "presidio_analyzer", "server.cli"):
        found = subprocess.run(
            [python, "-c", f"import {module}"], cwd=installed, capture_output=True, check=False
        )
        assert found.returncode == 0, (module, found.stderr)
    for module in ("pytest", "mypy", "openai", "playwright"):
        found = subprocess.run(
            [python, "-c", f"import {module}"], cwd=installed, capture_output=True, check=False
        )
        assert found.returncode != 0, f"{module} is a development dependency"
    # Installed as a package, not as a link back to the sources.
    located = subprocess.run(
        [python, "-c", "import gateway; print(gateway.__file__)"],
        cwd=installed,
        capture_output=True,
        text=True,
        check=True,
    )
    assert located.stdout.startswith(str(installed))


def test_the_image_environment_migrates_and_serves_outside_the_sources(
    installed: Path, tmp_path: Path
) -> None:
    steerway = str(installed / "bin" / "steerway")
    environ = sqlite_environment(tmp_path / "steerway.db")
    migrated = subprocess.run(
        [steerway, "migrate"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert re.search(r"is at revision \d{4}", migrated.stdout)
    port = free_port()
    process = start_serve(steerway, port, environ, tmp_path)
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", process)
        setup = httpx.get(f"http://127.0.0.1:{port}/admin/setup")
        assert setup.status_code == 200
        [stylesheet] = re.findall(r'href="(/admin/static/console\.css[^"]*)"', setup.text)
        css = httpx.get(f"http://127.0.0.1:{port}{stylesheet}")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
    finally:
        stop(process)
