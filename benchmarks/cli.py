"""`python -m benchmarks [SCENARIO ...]` and `python -m benchmarks profile`."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from benchmarks.faults_catalog import FAULT_NAMES
from benchmarks.harness import COMPARED_TARGETS, OPTIONAL_TARGETS, Harness, Options
from benchmarks.machine import describe_machine, load_average
from benchmarks.peers import BENCH_DIR
from benchmarks.processes import StartupError
from benchmarks.report import Report, update_readme
from benchmarks.results import ScenarioResult
from benchmarks.scenarios import SCENARIOS, Scenario, run_scenario
from benchmarks.soak import SoakSettings, run_soak
from benchmarks.targets import LITELLM_ENVIRONMENT, Workspace
from benchmarks.wrk import INSTALL_HINT, wrk_path

RESULTS_DIR = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"


def guardrails(harness: Harness) -> list[ScenarioResult]:
    from benchmarks.guardrails_scenario import run_guardrails

    return run_guardrails(harness)


def durability(harness: Harness) -> list[ScenarioResult]:
    from benchmarks.durability_scenario import run_durability

    return run_durability(harness)


def recorder(harness: Harness) -> list[ScenarioResult]:
    from benchmarks.recorder_scenario import run_recorder

    return run_recorder(harness)


def tail(harness: Harness) -> ScenarioResult:
    from benchmarks.tail_scenario import run_tail

    return run_tail(harness)


def faults(harness: Harness) -> list[ScenarioResult]:
    from benchmarks.faults_scenario import run_faults

    return run_faults(harness)


ALL_SCENARIOS: dict[str, Scenario] = {
    **SCENARIOS,
    "guardrails": guardrails,
    "durability": durability,
    "recorder": recorder,
    "faults": faults,
    "tail": tail,
}
"""Every scenario, in the order a full run takes them."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def name_list(choices: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def int_list(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Load Steerway, LiteLLM and Portkey side by side against the mock provider. "
        "`python -m benchmarks profile --help` profiles Steerway under load; "
        "`python -m benchmarks protocol` times the connection guard per request; "
        "`python -m benchmarks writer --help` times the telemetry writer in process; "
        "`python -m benchmarks writer_growth --help` times SQLite's writer as its file grows; "
        "`python -m benchmarks partitions --help` times it on day partitions and plain tables; "
        "`python -m benchmarks ingest --help` feeds the recorder at a rate into Postgres; "
        "`python -m benchmarks otlp --help` times what the OTLP span export costs; "
        "`python -m benchmarks live --help` times the live feed's cost per request; "
        "`python -m benchmarks lists --help` times the console's list pages on a large history; "
        "`python -m benchmarks console --help` times the traces list and a trace on demo data; "
        "`python -m benchmarks analytics --help` times analytics queries on demo data; "
        "`python -m benchmarks demo_data --help` times `steerway demo-data`.",
    )
    defaults = Options()
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"scenarios to run (default: all): {', '.join(ALL_SCENARIOS)}",
    )
    parser.add_argument(
        "--targets",
        type=name_list(COMPARED_TARGETS + OPTIONAL_TARGETS),
        default=defaults.targets,
        help="comma-separated head-to-head targets (default: the first four); `floor` is a "
        "minimal proxy on Steerway's server and upstream client (benchmarks/floor_proxy.py)",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=defaults.runs,
        help="rounds per scenario; medians are over rounds (default: 3)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=defaults.duration_s,
        help="seconds of load per cell (default: 5)",
    )
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=defaults.connections,
        help="connections for the throughput-style scenarios (default: 32)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=defaults.wrk_threads,
        help="wrk threads (default: 2)",
    )
    parser.add_argument(
        "--mock-workers",
        type=positive_int,
        default=defaults.mock_workers,
        help="worker processes of each mock provider (default: 2)",
    )
    parser.add_argument(
        "--stream-samples",
        type=positive_int,
        default=defaults.stream_samples,
        help="streams timed per round for TTFB (default: 100)",
    )
    parser.add_argument(
        "--scaling-workers",
        type=int_list,
        default=defaults.scaling_workers,
        help="Steerway worker counts for `scaling` (default: 1,2,4)",
    )
    parser.add_argument(
        "--postgres-url",
        default=defaults.postgres_url,
        help="maintenance database URL used to create and drop the bench database",
    )
    parser.add_argument(
        "--redis-url",
        default=defaults.redis_url,
        help="Redis database for `redis`; `limits` uses database 12 of the same server "
        "(each flushed before and after)",
    )
    soak = SoakSettings()
    parser.add_argument(
        "--soak-requests",
        type=positive_int,
        default=soak.requests,
        help=f"requests for `soak`, after its warm-up (default: {soak.requests})",
    )
    parser.add_argument(
        "--soak-samples",
        type=positive_int,
        default=soak.samples,
        help=f"equal slices of `soak`, memory read after each (default: {soak.samples})",
    )
    parser.add_argument(
        "--baseline-source",
        metavar="PATH",
        help="`durability`, `recorder` and `tail` also run Steerway from this checkout (e.g. a `git worktree` of the "
        "commit before a change), for a before/after of the default mode in the same run",
    )
    parser.add_argument(
        "--fault-duration",
        type=positive_float,
        default=defaults.fault_s,
        help=f"`faults`: seconds each upstream, Redis or SIGTERM fault lasts (default: {defaults.fault_s:g})",
    )
    parser.add_argument(
        "--outage-duration",
        type=positive_float,
        default=defaults.outage_s,
        help=f"`faults`: seconds the database stays away (default: {defaults.outage_s:g})",
    )
    parser.add_argument(
        "--fault-rate",
        type=positive_float,
        default=defaults.fault_rate,
        help="`faults`: the most requests per second its clients send in all "
        f"(default: {defaults.fault_rate:g}); --connections sets how many clients",
    )
    parser.add_argument(
        "--faults",
        type=name_list(FAULT_NAMES),
        default=defaults.faults,
        help=f"`faults`: comma-separated faults to apply (default: all): {', '.join(FAULT_NAMES)}",
    )
    parser.add_argument(
        "--fault-stores",
        type=name_list(("postgres", "sqlite")),
        default=defaults.fault_stores,
        help="`faults`: the stores to run them on, comma-separated (default: postgres)",
    )
    parser.add_argument("--output", type=Path, help="results file (default: results/DATE.md)")
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="do not rewrite the latest-results section of benchmarks/README.md",
    )
    return parser


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def settings_lines(
    options: Options,
    harness: Harness,
    soak: SoakSettings | None = None,
    *,
    faults: bool = False,
) -> list[tuple[str, str]]:
    versions = harness.versions
    lines = [
        ("rounds per cell", str(options.runs)),
        ("load per cell", f"{options.duration_s:g} s (after a {options.warmup_s:g} s warm-up)"),
        (
            "wrk",
            f"{options.wrk_threads} threads; {options.connections} connections for "
            "throughput, streaming and memory; 1 for serial",
        ),
        (
            "mock provider",
            f"`steerway mock-provider`, {options.mock_workers} workers each: "
            "one for plain completions, one for streams "
            f"(TTFT {options.stream_ttft_ms:g} ms, {options.stream_chunks} chunks, "
            f"{options.stream_chunk_interval_ms:g} ms apart)",
        ),
    ]
    descriptions = {
        "steerway": "1 worker, SQLite store, in-process state",
        "litellm": "1 worker, no database, env "
        + ", ".join(f"{k}={v}" for k, v in LITELLM_ENVIRONMENT.items()),
        "portkey": "one Node.js process, `--headless`, NODE_ENV=production, bound to 127.0.0.1",
        "floor": "benchmarks/floor_proxy.py: forwards to the mock through providers.http_client "
        "under uvicorn (httptools, uvloop), nothing else",
    }
    for name in options.targets:
        if name == "direct":
            continue
        if name in versions:
            lines.append((name, f"{versions[name]} ({descriptions[name]})"))
        elif name in harness.unavailable:
            lines.append((name, harness.unavailable[name]))
    if faults:
        lines.append(
            (
                "faults",
                f"{options.connections} clients, at most {options.fault_rate:g} requests/s; "
                f"each fault {options.fault_s:g} s, the database away {options.outage_s:g} s; "
                f"stores: {', '.join(options.fault_stores)}; a fresh Steerway per fault "
                "(1 worker, Postgres behind a TCP forwarder or SQLite; Redis behind one when "
                "the fault needs it)",
            )
        )
    if soak is not None:
        lines.append(
            (
                "soak",
                f"{soak.requests:,} requests in {soak.samples} slices after "
                f"{soak.warmup_requests:,} warm-up requests, {options.connections} connections, "
                "1 wrk thread; a fresh Steerway (1 worker, SQLite store, telemetry on)",
            )
        )
    return lines


def default_output(scenarios: list[str], today: str) -> Path:
    if scenarios == list(ALL_SCENARIOS):
        return RESULTS_DIR / f"{today}.md"
    return RESULTS_DIR / f"{today}-{'-'.join(scenarios)}.md"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "profile":
        from benchmarks.profiling import main as profile_main

        return profile_main(argv[1:])
    if argv and argv[0] == "protocol":
        from benchmarks.protocol_cost import main as protocol_main

        return protocol_main(argv[1:])

    if argv and argv[0] == "live":
        from benchmarks.live_cost import main as live_main

        return live_main(argv[1:])
    if argv and argv[0] == "console":
        from benchmarks.console_demo import main as console_main

        return console_main(argv[1:])
    if argv and argv[0] == "lists":
        from benchmarks.console_lists import main as lists_main

        return lists_main(argv[1:])
    if argv and argv[0] == "analytics":
        from benchmarks.analytics_queries import main as analytics_main

        return analytics_main(argv[1:])
    if argv and argv[0] == "rollup_grains":
        from benchmarks.rollup_grains import main as rollup_grains_main

        return rollup_grains_main(argv[1:])
    if argv and argv[0] == "ingest":
        from benchmarks.ingest_report import main as ingest_main

        return ingest_main(argv[1:])
    if argv and argv[0] == "writer":
        from benchmarks.writer import main as writer_main

        return writer_main(argv[1:])
    if argv and argv[0] == "writer_growth":
        from benchmarks.writer_growth import main as writer_growth_main

        return writer_growth_main(argv[1:])
    if argv and argv[0] == "partitions":
        from benchmarks.partitions_writer import main as partitions_main

        return partitions_main(argv[1:])
    if argv and argv[0] == "otlp":
        from benchmarks.otlp_export import main as otlp_main

        return otlp_main(argv[1:])
    if argv and argv[0] == "demo_data":
        from benchmarks.demo_data import main as demo_data_main

        return demo_data_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in ALL_SCENARIOS]
    if unknown:
        parser.error(
            f"unknown scenario {', '.join(unknown)}; choose from {', '.join(ALL_SCENARIOS)}"
        )
    if args.soak_samples > args.soak_requests:
        parser.error(
            f"--soak-samples ({args.soak_samples}) cannot exceed "
            f"--soak-requests ({args.soak_requests})"
        )
    if wrk_path() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    scenarios = [name for name in ALL_SCENARIOS if name in args.scenarios] or list(ALL_SCENARIOS)
    options = Options(
        runs=args.runs,
        duration_s=args.duration,
        connections=args.connections,
        wrk_threads=args.threads,
        mock_workers=args.mock_workers,
        stream_samples=args.stream_samples,
        scaling_workers=args.scaling_workers,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        targets=args.targets,
        baseline_source=args.baseline_source,
        fault_s=args.fault_duration,
        outage_s=args.outage_duration,
        fault_rate=args.fault_rate,
        faults=args.faults,
        fault_stores=args.fault_stores,
    )
    soak = SoakSettings(requests=args.soak_requests, samples=args.soak_samples)
    started = dt.datetime.now(dt.UTC)
    load_at_start = load_average()
    if float(load_at_start.replace("unknown", "0")) > 0.5:
        print(
            f"[bench] warning: load average {load_at_start} before the run; "
            "other work on the machine will skew the numbers",
            file=sys.stderr,
        )
    workspace = Workspace(root=BENCH_DIR / "runs" / started.strftime("%Y%m%d-%H%M%S"))
    workspace.root.mkdir(parents=True, exist_ok=True)
    harness = Harness(options, workspace)
    previous = {
        signum: signal.signal(signum, raise_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    results: list[ScenarioResult] = []
    try:
        harness.require_mocks()
        overrides: dict[str, Scenario] = {**ALL_SCENARIOS, "soak": lambda h: run_soak(h, soak)}
        for name in scenarios:
            results.extend(run_scenario(harness, name, overrides))
    except KeyboardInterrupt:
        print("[bench] interrupted; stopping every process", file=sys.stderr)
        return 130
    except StartupError as error:
        print(f"[bench] cannot run: {error}", file=sys.stderr)
        return 1
    finally:
        workspace.stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _remove_databases(workspace.root)
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    report = Report(
        title=f"Benchmark results {started:%Y-%m-%d %H:%M} UTC",
        command=command,
        machine=describe_machine(load_at_start),
        settings=settings_lines(
            options, harness, soak if "soak" in scenarios else None, faults="faults" in scenarios
        ),
        results=results,
    )
    output = args.output or default_output(scenarios, f"{started:%Y-%m-%d}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report.document())
    print(report.document())
    print(f"[bench] results written to {output}; logs in {workspace.logs}")
    if scenarios == list(ALL_SCENARIOS) and not args.no_readme:
        relative = (
            output.relative_to(README.parent) if output.is_relative_to(README.parent) else output
        )
        update_readme(README, report, str(relative))
        print(f"[bench] {README} updated")
    return 0


def _remove_databases(root: Path) -> None:
    """Keep the logs of a run, not its SQLite files."""
    for path in root.rglob("*.db*"):
        if path.is_file():
            path.unlink(missing_ok=True)
    for path in root.iterdir() if root.exists() else []:
        if path.is_dir() and path.name != "logs" and not any(path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)
