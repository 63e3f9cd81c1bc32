"""Starts the mock provider and every target gateway, each its own process on 127.0.0.1."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import peers
from benchmarks.processes import (
    ManagedProcess,
    StartupError,
    base_environment,
    free_port,
    run_checked,
    spawn,
    wait_until_ready,
)

PLAIN_MODEL = "bench-model"
STREAM_MODEL = "bench-stream"
UPSTREAM_MODEL = "mock-gpt"
MOCK_COMMAND = [str(peers.steerway_executable()), "mock-provider"]
LOOPBACK_PRELOAD = Path(__file__).parent / "node" / "loopback.cjs"


@dataclass
class Workspace:
    """Where one harness run keeps its files, and every process it started (stopped at exit)."""

    root: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: Path | None = None,
        *,
        piped: bool = False,
    ) -> ManagedProcess:
        process = spawn(name, argv, env=env, log_dir=self.logs, cwd=cwd, piped=piped)
        self.processes.append(process)
        return process

    def stop(self, process: ManagedProcess) -> None:
        process.stop()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        while self.processes:
            self.processes.pop().stop()


@dataclass(frozen=True)
class MockProfile:
    name: str
    workers: int
    ttft_ms: float = 0.0
    chunks: int = 8
    chunk_interval_ms: float = 0.0


@dataclass
class RunningMock:
    profile: MockProfile
    port: int
    process: ManagedProcess

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@dataclass(frozen=True)
class Route:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class BenchKey:
    """A virtual key made with `steerway keys create` for one benchmark Steerway."""

    key_id: str
    plaintext: str


@dataclass
class Target:
    """A gateway under load: where each bench model is served and with which headers."""

    name: str
    version: str
    routes: dict[str, Route]
    process: ManagedProcess | None
    metrics_url: str | None = None
    keys: dict[str, BenchKey] = field(default_factory=dict)
    """Virtual keys by name (`SteerwayOptions.keys`); routes use the master key."""
    home: Path | None = None
    """A Steerway's own folder: config, SQLite store, logs of its CLI calls."""

    def route(self, model: str) -> Route:
        return self.routes[model]


@dataclass(frozen=True)
class Mocks:
    plain: RunningMock
    stream: RunningMock

    def base_url(self, model: str) -> str:
        return (self.stream if model == STREAM_MODEL else self.plain).base_url


def start_mock(workspace: Workspace, profile: MockProfile) -> RunningMock:
    port = free_port()
    argv = [
        *MOCK_COMMAND,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(profile.workers),
        "--ttft-ms",
        str(profile.ttft_ms),
        "--chunks",
        str(profile.chunks),
        "--chunk-interval-ms",
        str(profile.chunk_interval_ms),
    ]
    process = workspace.spawn(f"mock-{profile.name}", argv, base_environment(workspace.root))
    mock = RunningMock(profile=profile, port=port, process=process)
    wait_for_chat(process, Route(f"{mock.base_url}/chat/completions", {}), UPSTREAM_MODEL, 30)
    return mock


def probe_chat(route: Route, model: str) -> tuple[int, str]:
    body = {"model": model, "messages": [{"role": "user", "content": "probe"}], "max_tokens": 4}
    request = urllib.request.Request(
        route.url,
        data=json.dumps(body).encode(),
        headers={**route.headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(300).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(300).decode(errors="replace")


def wait_for_chat(process: ManagedProcess, route: Route, model: str, timeout: float) -> None:
    """Wait until a chat completion through `route` answers 200."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not process.alive():
            raise StartupError(
                f"{process.name} exited with {process.popen.returncode}; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        try:
            status, text = probe_chat(route, model)
        except OSError as error:
            last = type(error).__name__
        else:
            if status == 200:
                return
            last = f"HTTP {status}: {text[:200]}"
        time.sleep(0.2)
    raise StartupError(f"{process.name}: no successful chat completion in {timeout:.0f} s ({last})")


def verify_routes(target: Target) -> Target:
    """One chat completion per model, so a misconfigured target fails before it is measured."""
    for model, route in target.routes.items():
        status, text = probe_chat(route, model)
        if status != 200:
            raise StartupError(f"{target.name}: probe of {model} got HTTP {status}: {text[:200]}")
    return target


def direct_target(mocks: Mocks) -> Target:
    plain = f"{mocks.plain.base_url}/chat/completions"
    stream = f"{mocks.stream.base_url}/chat/completions"
    return Target(
        name="direct",
        version="steerway mock-provider",
        routes={PLAIN_MODEL: Route(plain, {}), STREAM_MODEL: Route(stream, {})},
        process=mocks.plain.process,
    )


@dataclass(frozen=True)
class SteerwayOptions:
    name: str = "steerway"
    workers: int = 1
    database_url: str | None = None
    redis_url: str | None = None
    models: tuple[str, ...] = ()
    """More public models, each served by the plain mock (for rules that route to them)."""
    rules: tuple[Mapping[str, Any], ...] = ()
    """Steering rules, written to the config file's `rules:` list."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """More top-level config sections, written as they are (e.g. `cache: {enabled: false}`)."""
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Virtual keys to create before the gateway starts: name -> `steerway keys create` options
    (e.g. `("--rpm", "600")`)."""
    source: Path | None = None
    """Run the code of this checkout (first on `PYTHONPATH`) instead of the installed one."""
    server: str = "uvicorn"
    """`uvicorn`: `steerway serve`. `granian`: the same app factory under granian (ASGI, uvloop),
    for a comparison of the two servers; one worker only."""


def steerway_config(mocks: Mocks, options: SteerwayOptions | None = None) -> dict[str, object]:
    models: dict[str, object] = {
        PLAIN_MODEL: [{"provider": "mock", "model": UPSTREAM_MODEL}],
        STREAM_MODEL: [{"provider": "mock-stream", "model": UPSTREAM_MODEL}],
    }
    config: dict[str, object] = {
        "providers": {
            "mock": {"type": "openai", "base_url": mocks.plain.base_url},
            "mock-stream": {"type": "openai", "base_url": mocks.stream.base_url},
        },
        "models": models,
    }
    if options is not None:
        for name in options.models:
            models[name] = [{"provider": "mock", "model": UPSTREAM_MODEL}]
        if options.rules:
            config["rules"] = [dict(rule) for rule in options.rules]
        config.update(options.config)
    return config


_CREATED_KEY = re.compile(r"^Created key (\S+) '")


def parse_created_key(output: str) -> BenchKey:
    """The key id and plaintext from what `steerway keys create` printed."""
    lines = [line.strip() for line in output.splitlines()]
    key_id = next((m.group(1) for line in lines if (m := _CREATED_KEY.match(line))), None)
    shown = next((i for i, line in enumerate(lines) if line.startswith("The key is shown")), None)
    plaintext = None
    if shown is not None:
        plaintext = next((line for line in lines[shown + 1 :] if line), None)
    if key_id is None or plaintext is None:
        raise StartupError("steerway keys create printed no key id or no key")
    return BenchKey(key_id=key_id, plaintext=plaintext)


def steerway_command(source: Path | None) -> list[str]:
    """The `steerway` command; for an older checkout, its own CLI module (the installed script
    names the current one, which moved from `gateway.cli` to `server.cli`; `-P`: the working
    directory, which may hold the current checkout, is not put before it)."""
    executable = peers.steerway_executable()
    if source is None:
        return [str(executable)]
    package = "server" if (source / "server" / "cli.py").exists() else "gateway"
    python = executable.with_name("python")
    return [
        str(python),
        "-P",
        "-c",
        f"import sys; from {package}.cli import main; sys.exit(main())",
    ]


def create_keys(
    command: Sequence[str], env: Mapping[str, str], keys: Mapping[str, tuple[str, ...]]
) -> dict[str, BenchKey]:
    """Create each key with `steerway keys create` in the database `env` points at."""
    created: dict[str, BenchKey] = {}
    for name, arguments in keys.items():
        output = run_checked(
            [*command, "keys", "create", name, *arguments],
            env=env,
            timeout=60,
            what=f"steerway keys create {name}",
        )
        created[name] = parse_created_key(output)
    return created


def steerway_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("steerway")
    except metadata.PackageNotFoundError:
        return "unknown"


APP_FACTORY = "server.app:create_app_from_env"
"""What `steerway serve` hands to uvicorn; granian is given the same factory."""


def granian_argv(port: int, workers: int) -> list[str]:
    """granian serving Steerway's app as `steerway serve` builds it: ASGI, uvloop, HTTP/1.1 (as
    uvicorn with httptools speaks), no websockets, no access log. `steerway serve` prepares the
    master key and checks migrations first; the harness has migrated and sets the key."""
    if workers != 1:
        raise ValueError(
            "granian runs are single-worker (multi-process metrics need steerway serve)"
        )
    return [
        str(peers.steerway_executable().with_name("granian")),
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--http",
        "1",
        "--no-ws",
        "--workers",
        "1",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        APP_FACTORY,
    ]


def start_steerway(workspace: Workspace, mocks: Mocks, options: SteerwayOptions) -> Target:
    home = workspace.root / options.name
    home.mkdir(parents=True, exist_ok=True)
    config = home / "steerway.yaml"
    config.write_text(yaml.safe_dump(steerway_config(mocks, options), sort_keys=False))
    master_key = f"sk-bench-{secrets.token_hex(16)}"
    env = base_environment(home)
    env |= {
        "STEERWAY_CONFIG": str(config),
        "STEERWAY_DATABASE_URL": options.database_url or f"sqlite:///{home / 'steerway.db'}",
        "STEERWAY_MASTER_KEY": master_key,
    }
    if options.redis_url:
        env["STEERWAY_REDIS_URL"] = options.redis_url
    if options.source is not None:
        env["PYTHONPATH"] = str(options.source.resolve())
    command = steerway_command(options.source)
    run_checked([*command, "migrate"], env=env, timeout=120, what="steerway migrate")
    keys = create_keys(command, env, options.keys)
    port = free_port()
    if options.server == "granian":
        argv = granian_argv(port, options.workers)
    else:
        argv = [*command, "serve", "--host", "127.0.0.1", "--port", str(port)]
        if options.workers != 1:
            argv += ["--workers", str(options.workers)]
    process = workspace.spawn(options.name, argv, env, cwd=home)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{base}/readyz", timeout=60)
    headers = {"Authorization": f"Bearer {master_key}"}
    url = f"{base}/v1/chat/completions"
    target = Target(
        name=options.name,
        version=steerway_version(),
        routes={PLAIN_MODEL: Route(url, headers), STREAM_MODEL: Route(url, headers)},
        process=process,
        metrics_url=f"{base}/metrics",
        keys=keys,
        home=home,
    )
    return verify_routes(target)


def litellm_config(mocks: Mocks, master_key: str) -> dict[str, object]:
    return {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{UPSTREAM_MODEL}",
                    "api_base": mocks.base_url(model),
                    "api_key": "dummy-key",
                },
            }
            for model in (PLAIN_MODEL, STREAM_MODEL)
        ],
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"num_retries": 0, "request_timeout": 30},
    }


LITELLM_ENVIRONMENT = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
}
"""Use the bundled price map instead of fetching one at startup; log errors only (no access log)."""


def start_litellm(workspace: Workspace, mocks: Mocks) -> Target:
    executable, version = peers.ensure_litellm()
    home = workspace.root / "litellm"
    home.mkdir(parents=True, exist_ok=True)
    master_key = f"sk-bench-{secrets.token_hex(16)}"
    config = home / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(mocks, master_key), sort_keys=False))
    env = base_environment(home) | LITELLM_ENVIRONMENT
    port = free_port()
    argv = [
        str(executable),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    process = workspace.spawn("litellm", argv, env, cwd=home)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{base}/health/liveliness", timeout=180)
    headers = {"Authorization": f"Bearer {master_key}"}
    url = f"{base}/v1/chat/completions"
    target = Target(
        name="litellm",
        version=f"litellm[proxy] {version}",
        routes={PLAIN_MODEL: Route(url, headers), STREAM_MODEL: Route(url, headers)},
        process=process,
    )
    return verify_routes(target)


def start_portkey(workspace: Workspace, mocks: Mocks) -> Target:
    entry, version = peers.ensure_portkey()
    home = workspace.root / "portkey"
    home.mkdir(parents=True, exist_ok=True)
    env = base_environment(home) | {"NODE_ENV": "production"}
    port = free_port()
    argv = [
        "node",
        "--require",
        str(LOOPBACK_PRELOAD),
        str(entry),
        f"--port={port}",
        "--headless",
    ]
    process = workspace.spawn("portkey", argv, env, cwd=entry.parent.parent)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{base}/", timeout=60)
    url = f"{base}/v1/chat/completions"

    def headers(model: str) -> dict[str, str]:
        return {
            "Authorization": "Bearer dummy",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": mocks.base_url(model),
        }

    target = Target(
        name="portkey",
        version=f"{peers.PORTKEY_PACKAGE} {version}",
        routes={model: Route(url, headers(model)) for model in (PLAIN_MODEL, STREAM_MODEL)},
        process=process,
    )
    return verify_routes(target)


def start_floor(workspace: Workspace, mocks: Mocks) -> Target:
    """`benchmarks/floor_proxy.py` under uvicorn with the options `steerway serve` uses."""
    home = workspace.root / "floor"
    home.mkdir(parents=True, exist_ok=True)
    env = base_environment(home) | {
        "FLOOR_PLAIN_UPSTREAM": mocks.plain.base_url,
        "FLOOR_STREAM_UPSTREAM": mocks.stream.base_url,
        "PYTHONPATH": str(peers.REPO),
    }
    port = free_port()
    argv = [
        str(peers.steerway_executable().with_name("python")),
        "-m",
        "uvicorn",
        "benchmarks.floor_proxy:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws",
        "none",
        "--no-access-log",
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]
    process = workspace.spawn("floor", argv, env, cwd=peers.REPO)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{base}/readyz", timeout=60)
    routes = {
        PLAIN_MODEL: Route(f"{base}/plain/v1/chat/completions", {}),
        STREAM_MODEL: Route(f"{base}/stream/v1/chat/completions", {}),
    }
    target = Target(
        name="floor", version="uvicorn + providers.http_client", routes=routes, process=process
    )
    return verify_routes(target)


PEER_LAUNCHERS: dict[str, Callable[[Workspace, Mocks], Target]] = {
    "litellm": start_litellm,
    "portkey": start_portkey,
    "floor": start_floor,
}
