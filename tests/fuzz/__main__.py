"""A large fuzz run: `python -m tests.fuzz` (or `make fuzz`).

    python -m tests.fuzz --cases 20000 --admin-examples 200 --backend postgres --seed 7

Starts the mock provider and a gateway per backend, sends the mutated `/v1` corpus (several
clients at once with --concurrency), fuzzes the admin API from its OpenAPI document, and holds
the gateway to the invariants in `tests.fuzz.harness`; prints the gateway's memory as it goes.
A failing case is shown again with `--show INDEX` (same seed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import migrations
from tests.e2e.conftest import Database, MockProcess, _create_postgres, _drop_postgres, stop
from tests.fuzz.admin import fuzz_admin_api
from tests.fuzz.corpus import Corpus
from tests.fuzz.harness import FuzzGateway, Report, check_log, check_recorded, send


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cases", type=int, default=20_000, help="mutated /v1 requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4, help="clients sending at once")
    parser.add_argument(
        "--admin-examples", type=int, default=100, help="per admin operation; 0 skips"
    )
    parser.add_argument("--admin-max-time", type=int, default=300, help="seconds for the admin run")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--show", type=int, help="print case INDEX of the corpus and exit")
    options = parser.parse_args(argv)
    if options.show is not None:
        case = Corpus(options.seed, "<key>").case(options.show)
        print(case.describe())
        print(case.headers)
        print(case.body[:4000])
        return 0
    backends = ["sqlite", "postgres"] if options.backend == "both" else [options.backend]
    failed = False
    mock = MockProcess()
    try:
        for backend in backends:
            failed |= not _run_backend(backend, mock, options)
    finally:
        stop(mock.process)
    return 1 if failed else 0


def _run_backend(backend: str, mock: MockProcess, options: argparse.Namespace) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix=f"steerway-fuzz-{backend}-"))
    url = f"sqlite:///{tmp / 'steerway.db'}" if backend == "sqlite" else _create_postgres()
    try:
        migrations.upgrade(url)
        database = Database(url)
        gateway = FuzzGateway(database, mock, tmp)
        report = _send_all(gateway, Corpus(options.seed, gateway.master_key), options)
        if options.admin_examples:
            admin = fuzz_admin_api(
                gateway.url,
                gateway.master_key,
                examples=options.admin_examples,
                seed=options.seed,
                report_dir=tmp / "admin",
                max_time=options.admin_max_time,
            )
            print(admin.output[-3000:])
            if admin.returncode != 0:
                report.problems.append(f"schemathesis found failures (report in {tmp / 'admin'})")
        check_log(gateway.stop(), report)
        checked = check_recorded(database, report, timeout=60)
    finally:
        if backend == "postgres":
            _drop_postgres(url)
    print(f"[{backend}] {report.summary()}; {checked} accepted requests checked for their record")
    for problem in report.problems[:50]:
        print(f"[{backend}] PROBLEM {problem[:2000]}")
    print(f"[{backend}] log and reports in {tmp}")
    return not report.problems


def _send_all(gateway: FuzzGateway, corpus: Corpus, options: argparse.Namespace) -> Report:
    import time

    report = Report()
    started = time.monotonic()
    step = max(1, options.cases // 10)
    with (
        httpx.Client(base_url=gateway.url, timeout=60) as client,
        ThreadPoolExecutor(options.concurrency) as pool,
    ):
        for start in range(0, options.cases, step):
            count = min(step, options.cases - start)
            report.outcomes.extend(
                pool.map(lambda case: send(client, case), corpus.cases(count, start))
            )
            rss = gateway.rss_mb()
            if start == 0:
                report.rss_start_mb = rss
            print(f"{start + count:>8} sent, gateway RSS {rss:.0f} MB", flush=True)
            if gateway.process.poll() is not None:
                report.problems.append("the gateway exited")
                break
    report.seconds = time.monotonic() - started
    report.rss_end_mb = gateway.rss_mb()
    for outcome in report.outcomes:
        if outcome.problem is not None:
            report.problems.append(f"{outcome.case.describe()}: {outcome.problem}")
    return report


if __name__ == "__main__":
    sys.exit(main())
