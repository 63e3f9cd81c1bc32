"""`python -m benchmarks profile`: Steerway under wrk load, sampled by py-spy.

py-spy lives in `.bench/pyspy-venv` (installed on first use), never in the project's venv. The
profile lands in `.bench/` as speedscope JSON (open it at speedscope's site or any viewer that
reads the format) or as a flamegraph SVG, and the hottest functions are printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from benchmarks.harness import Harness, Options
from benchmarks.peers import BENCH_DIR, REPO, PeerUnavailable, ensure_py_spy
from benchmarks.processes import StartupError
from benchmarks.scenarios import load
from benchmarks.tail_workload import Store, keyed_target, load_model, tail_options
from benchmarks.targets import STREAM_MODEL, SteerwayOptions, Workspace
from benchmarks.wrk import INSTALL_HINT, WrkError, wrk_path


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.cli import positive_float, positive_int

    parser = argparse.ArgumentParser(prog="python -m benchmarks profile", description=__doc__)
    parser.add_argument("--seconds", type=positive_float, default=10.0, help="load time")
    parser.add_argument("--connections", type=positive_int, default=32)
    parser.add_argument("--workers", type=positive_int, default=1, help="Steerway workers")
    parser.add_argument("--rate", type=positive_int, default=250, help="py-spy samples/s")
    parser.add_argument("--stream", action="store_true", help="profile streamed completions")
    parser.add_argument("--format", choices=("speedscope", "flamegraph"), default="speedscope")
    parser.add_argument("--top", type=positive_int, default=25, help="functions to print")
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (py-spy --gil)"
    )
    parser.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    parser.add_argument(
        "--tail",
        action="store_true",
        help="profile the tail scenario's Steerway (50 rules, a limited key, guardrails defined)",
    )
    return parser


def function_label(frame: dict[str, Any]) -> str:
    """`name (file)`, the file shortened to its package path; lines of one function merge."""
    where = str(frame.get("file", ""))
    for marker in ("site-packages/", str(REPO) + "/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{frame['name']} ({where})"


def top_functions(speedscope: dict[str, Any], limit: int) -> list[tuple[str, float, float]]:
    """(function, self share, total share) of the functions with the most self time."""
    labels = [function_label(frame) for frame in speedscope["shared"]["frames"]]
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    weight_sum = 0.0
    for profile in speedscope["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=False):
            if not stack:
                continue
            weight_sum += weight
            own[labels[stack[-1]]] += weight
            for label in {labels[index] for index in stack}:
                total[label] += weight
    if weight_sum == 0:
        return []
    return [
        (label, weight / weight_sum, total[label] / weight_sum)
        for label, weight in own.most_common(limit)
    ]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if wrk_path() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    try:
        py_spy = ensure_py_spy()
    except PeerUnavailable as error:
        print(f"py-spy not installed: {error}", file=sys.stderr)
        return 1
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    suffix = "speedscope.json" if args.format == "speedscope" else "svg"
    output = BENCH_DIR / f"profile-{stamp}.{suffix}"
    workspace = Workspace(root=BENCH_DIR / "runs" / f"profile-{stamp}")
    harness = Harness(Options(connections=args.connections, duration_s=args.seconds), workspace)
    recorder: subprocess.Popen[bytes] | None = None
    try:
        if args.tail:
            options = dataclasses.replace(
                tail_options(Store("sqlite", None), "uvicorn"), workers=args.workers
            )
            target = keyed_target(harness.start_variant(options))
        else:
            target = harness.start_variant(SteerwayOptions(workers=args.workers))
        assert target.process is not None
        model = STREAM_MODEL if args.stream else load_model(target)
        load(harness, target, connections=args.connections, model=model, duration_s=2)
        recorder = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(target.process.pid),
                "--subprocesses",
                "--rate",
                str(args.rate),
                "--duration",
                str(round(args.seconds) + 1),
                "--format",
                args.format,
                "--output",
                str(output),
                "--nonblocking",
                *(["--gil"] if args.gil else []),
                *(["--native"] if args.native else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        result = load(harness, target, connections=args.connections, model=model)
        _, errors = recorder.communicate(timeout=args.seconds + 60)
        if recorder.returncode != 0:
            print(f"py-spy failed: {errors.decode(errors='replace')[-500:]}", file=sys.stderr)
            return 1
    except (StartupError, WrkError) as error:
        print(f"[profile] {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if recorder is not None and recorder.poll() is None:
            recorder.terminate()
            recorder.wait(timeout=10)
        workspace.stop_all()
    print(f"[profile] {result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.2f} ms under py-spy")
    print(f"[profile] written to {output}")
    if args.format == "speedscope":
        print(f"\n{'self':>6} {'total':>6}  function")
        for name, own, total in top_functions(json.loads(output.read_text()), args.top):
            print(f"{own:6.1%} {total:6.1%}  {name}")
    return 0


__all__ = ["main", "top_functions"]
