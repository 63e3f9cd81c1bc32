"""The state one benchmark run shares across scenarios: options, processes, mocks and targets."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.peers import PeerUnavailable
from benchmarks.processes import StartupError
from benchmarks.targets import (
    PEER_LAUNCHERS,
    MockProfile,
    Mocks,
    SteerwayOptions,
    Target,
    Workspace,
    direct_target,
    start_mock,
    start_steerway,
)

COMPARED_TARGETS = ("direct", "steerway", "litellm", "portkey")
OPTIONAL_TARGETS = ("floor",)
"""Run only when `--targets` names them: `floor` is `benchmarks/floor_proxy.py`."""


@dataclass(frozen=True)
class Options:
    runs: int = 3
    duration_s: float = 5.0
    connections: int = 32
    wrk_threads: int = 2
    warmup_s: float = 2.0
    mock_workers: int = 2
    stream_ttft_ms: float = 20.0
    stream_chunks: int = 50
    stream_chunk_interval_ms: float = 0.0
    stream_samples: int = 100
    stream_concurrency: int = 1
    scaling_workers: tuple[int, ...] = (1, 2, 4)
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/14"
    targets: tuple[str, ...] = COMPARED_TARGETS
    baseline_source: str | None = None
    """Another checkout whose code `durability` also runs, for a before/after in one run."""
    fault_s: float = 20.0
    outage_s: float = 60.0
    fault_rate: float = 200.0
    faults: tuple[str, ...] = ()
    """The faults `faults` applies; empty: all of them."""
    fault_stores: tuple[str, ...] = ("postgres",)


@dataclass
class Harness:
    options: Options
    workspace: Workspace
    mocks: Mocks | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def require_mocks(self) -> Mocks:
        if self.mocks is None:
            workers = self.options.mock_workers
            plain = start_mock(self.workspace, MockProfile("plain", workers))
            stream = start_mock(
                self.workspace,
                MockProfile(
                    "stream",
                    workers,
                    ttft_ms=self.options.stream_ttft_ms,
                    chunks=self.options.stream_chunks,
                    chunk_interval_ms=self.options.stream_chunk_interval_ms,
                ),
            )
            self.mocks = Mocks(plain=plain, stream=stream)
        return self.mocks

    def compared_targets(self) -> list[Target]:
        """The head-to-head targets in the order asked for, starting any not yet running."""
        started: list[Target] = []
        for name in self.options.targets:
            target = self.target(name)
            if target is not None:
                started.append(target)
        return started

    def target(self, name: str) -> Target | None:
        if name in self.targets:
            return self.targets[name]
        if name in self.unavailable:
            return None
        mocks = self.require_mocks()
        try:
            if name == "direct":
                target = direct_target(mocks)
            elif name == "steerway":
                target = start_steerway(self.workspace, mocks, SteerwayOptions())
            else:
                target = PEER_LAUNCHERS[name](self.workspace, mocks)
        except PeerUnavailable as error:
            self.unavailable[name] = f"not installed: {error}"
            print(f"[bench] {name}: not installed: {error}", flush=True)
            return None
        except (StartupError, OSError) as error:
            self.unavailable[name] = f"did not start: {error}".splitlines()[0]
            print(f"[bench] {name}: did not start: {error}", flush=True)
            return None
        self.targets[name] = target
        self.versions[name] = target.version
        print(f"[bench] {name} ready ({target.version})", flush=True)
        return target

    def start_variant(self, options: SteerwayOptions) -> Target:
        """A Steerway instance with non-default settings, for the Steerway-only scenarios."""
        target = start_steerway(self.workspace, self.require_mocks(), options)
        print(f"[bench] {options.name} ready", flush=True)
        return target
