"""docker-compose.yml, the Dockerfile and the files they name, checked without a Docker engine:
the structure, pinned images, files that exist, variables that .env.example sets, replicas that
share one database, Redis, master key and config, and the configs of HAProxy, the gateway,
Prometheus and Grafana agreeing with each other."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import copy_sqlite
from tests.deploy.serving import sqlite_environment, start_serve
from tests.deploy.stack_files import (
    COMPOSE,
    DASHBOARDS,
    DEPLOY,
    DOCKERFILE,
    GATEWAY_CONFIG,
    REPO,
    compose,
    dashboards,
    dockerfile_instructions,
    env_example_names,
)
from tests.e2e.conftest import stop, wait_for
from tests.ports import free_port

STEERWAY = str(Path(sys.executable).with_name("steerway"))
SHARED = ("STEERWAY_DATABASE_URL", "STEERWAY_REDIS_URL", "STEERWAY_MASTER_KEY", "STEERWAY_CONFIG")


def haproxy() -> str:
    found = shutil.which("haproxy")
    if found is None:
        pytest.fail(
            "haproxy is missing: `make haproxy` installs Debian's haproxy package "
            "(`make test` does it first)",
            pytrace=False,
        )
    return found


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def replicas() -> dict[str, dict[str, Any]]:
    """The services that run `steerway serve`."""
    return {
        name: service
        for name, service in services().items()
        if "build" in service and service.get("command", [None])[0] == "serve"
    }


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def test_every_service_has_a_pinned_image_or_the_dockerfile() -> None:
    for name, service in services().items():
        if "build" in service:
            build = service["build"]
            assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[\w.]+)?", tag), f"{name}: {image} is not pinned"


def test_every_bind_mounted_file_exists() -> None:
    mounted = 0
    for name, service in services().items():
        for source, _ in bind_mounts(service):
            assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            mounted += 1
    assert mounted >= 7


def test_env_example_sets_every_variable_the_compose_file_uses() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert {"POSTGRES_PASSWORD", "STEERWAY_MASTER_KEY", "STEERWAY_MASK_SECRET"} <= used
    assert used <= env_example_names(), used - env_example_names()
    # The gateway config's own ${VAR}s reach the replicas through their environment.
    for variable in re.findall(
        r"\$\{(\w+)", json.dumps(yaml.safe_load(GATEWAY_CONFIG.read_text()))
    ):
        for name, replica in replicas().items():
            assert variable in replica["environment"], f"{name} lacks {variable}"


def test_two_replicas_share_the_database_redis_master_key_and_config() -> None:
    found = replicas()
    assert len(found) >= 2
    first, *others = found.values()
    for name, replica in found.items():
        for variable in SHARED:
            assert replica["environment"][variable] == first["environment"][variable], (
                f"{name}: {variable}"
            )
        mounted = dict((target, source) for source, target in bind_mounts(replica))
        config = replica["environment"]["STEERWAY_CONFIG"]
        assert (REPO / mounted[config]).resolve() == GATEWAY_CONFIG, name
        assert "0.0.0.0" in replica["command"], f"{name} must listen beyond loopback"
    environment = first["environment"]
    assert environment["STEERWAY_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in environment["STEERWAY_DATABASE_URL"]
    assert environment["STEERWAY_REDIS_URL"].startswith("redis://redis:6379")
    assert others


def test_migrations_run_once_before_the_replicas_start() -> None:
    all_services = services()
    [migrate] = [s for s in all_services.values() if s.get("command") == ["migrate"]]
    assert migrate["restart"] == "no"
    assert (
        migrate["environment"]["STEERWAY_DATABASE_URL"]
        == next(iter(replicas().values()))["environment"]["STEERWAY_DATABASE_URL"]
    )
    migrate_name = next(n for n, s in all_services.items() if s is migrate)
    for name, replica in replicas().items():
        condition = replica["depends_on"][migrate_name]["condition"]
        assert condition == "service_completed_successfully", name


def test_services_waited_on_as_healthy_have_a_health_check() -> None:
    image_check = any(keyword == "HEALTHCHECK" for keyword, _ in dockerfile_instructions())
    all_services = services()
    waited = 0
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            continue
        for other, rule in depends.items():
            assert other in all_services, f"{name} depends on unknown {other}"
            if rule["condition"] != "service_healthy":
                continue
            waited += 1
            target = all_services[other]
            if "healthcheck" not in target:
                assert "build" in target and image_check, f"{other} has no health check"
    assert waited >= 5


def test_the_dockerfile_builds_from_the_lock_file_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    assert stages[-1].endswith("AS runtime")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "uv sync --locked --no-dev" in runs
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert f"ARG UV_VERSION={makefile_uv.group(1)}" in DOCKERFILE.read_text()
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any(rest.startswith("--from=builder") for rest in copies)
    # The last USER (the one the container runs as) is neither root nor uid 0.
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    [check] = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert "/readyz" in check and "python" in check and "curl" not in check


def test_the_healthcheck_command_exits_zero_on_a_ready_gateway_and_not_on_a_refused_port(
    tmp_path: Path, sqlite_template: Path
) -> None:
    [check] = [rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD [") + 4 :])
    assert command[0] == "python"
    port = free_port()
    copy_sqlite(sqlite_template, tmp_path / "steerway.db")
    environ = sqlite_environment(tmp_path / "steerway.db")
    probe_env = {**environ, "STEERWAY_HEALTHCHECK_PORT": str(port)}
    refused = subprocess.run(
        [sys.executable, *command[1:]], env=probe_env, capture_output=True, check=False
    )
    assert refused.returncode != 0
    process = start_serve(STEERWAY, port, environ, tmp_path)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process)
        ready = subprocess.run(
            [sys.executable, *command[1:]], env=probe_env, capture_output=True, check=False
        )
        assert ready.returncode == 0, ready.stderr
    finally:
        stop(process)


def test_the_gateway_config_passes_check_config() -> None:
    env = {**os.environ, "STEERWAY_MASK_SECRET": "a-shared-secret"}
    checked = subprocess.run(
        [STEERWAY, "check-config", str(GATEWAY_CONFIG)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == f"{GATEWAY_CONFIG}: OK"


def test_prometheus_scrapes_every_replica_on_the_metrics_port() -> None:
    listen = yaml.safe_load(GATEWAY_CONFIG.read_text())["metrics"]["listen"]
    port = listen.rpartition(":")[2]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "steerway"]
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    assert targets == {f"{name}:{port}" for name in replicas()}


def test_grafana_provisions_one_datasource_that_every_panel_uses() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    uids = set(re.findall(r'"uid": "([^"]+)"', "".join(p.read_text() for p in DASHBOARDS)))
    board_uids = {board["uid"] for board in dashboards().values()}
    assert uids - board_uids == {datasource["uid"]}
    [provider] = yaml.safe_load((provisioning / "dashboards" / "steerway.yml").read_text())[
        "providers"
    ]
    grafana = services()["grafana"]
    mounted = {target: (REPO / source).resolve() for source, target in bind_mounts(grafana)}
    assert mounted[provider["options"]["path"]] == DASHBOARDS[0].parent
    assert mounted["/etc/grafana/provisioning"] == provisioning
    assert len(board_uids) == len(DASHBOARDS) >= 2


def test_haproxy_accepts_its_config_and_balances_over_every_replica() -> None:
    config = DEPLOY / "haproxy" / "haproxy.cfg"
    checked = subprocess.run(
        [haproxy(), "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    servers = re.findall(r"^\s*server (\S+) (\S+)", config.read_text(), re.M)
    assert {address for _, address in servers} == {f"{name}:8080" for name in replicas()}
    assert "option httpchk GET /readyz" in config.read_text()
    balancer = services()["load-balancer"]
    assert any(target.endswith("/haproxy.cfg") for _, target in bind_mounts(balancer))
    for name in replicas():
        assert balancer["depends_on"][name]["condition"] == "service_healthy"


def test_every_dashboard_panel_has_an_id_a_place_on_the_grid_and_a_query() -> None:
    for name, board in dashboards().items():
        panels = board["panels"]
        ids = [panel["id"] for panel in panels]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        places = set()
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"
            place = (grid["x"], grid["y"])
            assert place not in places, f"{name}: two panels at {place}"
            places.add(place)
            if panel["type"] == "row":
                continue
            assert panel["description"] and panel["targets"], f"{name}: {panel['title']}"
            assert panel["fieldConfig"]["defaults"]["unit"], f"{name}: {panel['title']}"
