"""The Docker Compose stack brought up for real: a request through the load balancer reaches the
mock provider, both replicas take traffic, Prometheus scrapes both, and Grafana has the
dashboards. It needs a Docker engine and the compose plugin; where either is missing it skips
and says which (the only test of the deployment that may skip)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.deploy.stack_files import COMPOSE, ENV_EXAMPLE, REPO
from tests.ports import free_port

STARTUP_TIMEOUT_S = 900


def docker_compose_missing() -> str | None:
    """Why the stack cannot be brought up here, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH"
    info = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info` ({reason})"
    compose = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if compose.returncode != 0:
        return "the docker compose plugin is missing (`docker compose version` failed)"
    return None


@dataclass
class Stack:
    gateway_url: str
    prometheus_url: str
    grafana_url: str
    master_key: str
    grafana_password: str


def _env_file(path: Path, values: dict[str, str]) -> None:
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.partition("=")[0]
        lines.append(f"{name}={values[name]}" if name in values else line)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    missing = docker_compose_missing()
    if missing is not None:
        pytest.skip(f"the Docker Compose stack needs a Docker engine and compose: {missing}")
    values = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "STEERWAY_MASTER_KEY": "sk-steerway-" + secrets.token_hex(16),
        "STEERWAY_MASK_SECRET": secrets.token_hex(16),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(16),
        "STEERWAY_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
        "GRAFANA_PORT": str(free_port()),
    }
    env_file = tmp_path_factory.mktemp("stack") / ".env"
    _env_file(env_file, values)
    compose = [
        "docker",
        "compose",
        "--project-name",
        f"steerway-test-{secrets.token_hex(4)}",
        "--env-file",
        str(env_file),
        "--file",
        str(COMPOSE),
    ]
    try:
        up = subprocess.run(
            [*compose, "up", "--detach", "--build", "--wait", "--wait-timeout", "600"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_S,
            check=False,
        )
        if up.returncode != 0:
            logs = subprocess.run([*compose, "logs"], capture_output=True, text=True, check=False)
            pytest.fail(f"docker compose up failed:\n{up.stderr}\n{logs.stdout[-20000:]}")
        yield Stack(
            gateway_url=f"http://127.0.0.1:{values['STEERWAY_PORT']}",
            prometheus_url=f"http://127.0.0.1:{values['PROMETHEUS_PORT']}",
            grafana_url=f"http://127.0.0.1:{values['GRAFANA_PORT']}",
            master_key=values["STEERWAY_MASTER_KEY"],
            grafana_password=values["GRAFANA_ADMIN_PASSWORD"],
        )
    finally:
        subprocess.run(
            [*compose, "down", "--volumes", "--remove-orphans"],
            cwd=REPO,
            capture_output=True,
            timeout=300,
            check=False,
        )


def test_docker_compose_stack_answers_through_the_load_balancer_and_is_scraped(
    stack: Stack,
) -> None:
    client = openai.OpenAI(
        base_url=f"{stack.gateway_url}/v1", api_key=stack.master_key, max_retries=0
    )
    replies = [
        client.chat.completions.with_raw_response.create(
            model="mock-gpt", messages=[{"role": "user", "content": f"hello {number}"}]
        )
        for number in range(20)
    ]
    first = replies[0].parse()
    assert first.choices[0].message.content is not None
    assert first.choices[0].message.content.startswith("Echo: hello 0")
    assert all(reply.headers.get("x-steerway-trace-id") for reply in replies)
    assert httpx.get(f"{stack.gateway_url}/metrics").status_code == 404

    # Both replicas served some of the requests, and Prometheus scraped both.
    query = 'sum by (instance) (steerway_requests_total{route="/v1/chat/completions"})'
    deadline = time.monotonic() + 120
    served: dict[str, float] = {}
    while time.monotonic() < deadline:
        answer = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": query})
        served = {
            row["metric"]["instance"]: float(row["value"][1])
            for row in answer.json()["data"]["result"]
        }
        if len(served) == 2 and sum(served.values()) >= 20:
            break
        time.sleep(2)
    assert set(served) == {"gateway-1:9464", "gateway-2:9464"}
    assert sum(served.values()) >= 20 and min(served.values()) > 0

    search = httpx.get(
        f"{stack.grafana_url}/api/search",
        params={"tag": "steerway"},
        auth=("admin", stack.grafana_password),
    )
    assert search.status_code == 200
    assert {board["uid"] for board in search.json()} == {
        "steerway-traffic",
        "steerway-controls-health",
    }
