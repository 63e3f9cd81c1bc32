"""`steerway worker`: the background jobs alone, for deployments that keep them out of the
serving processes (with `alerts.run_in_serve: false` in the gateways' config). Stops cleanly on
SIGTERM and SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from gateway.config.file import ConfigError, GatewayConfig
from gateway.config.settings import Settings
from telemetry.db import redact_url


def _fail(message: str, code: int = 1) -> int:
    print(f"steerway: {message}", file=sys.stderr, flush=True)
    return code


async def _until_signalled(database_url: str, config: GatewayConfig, redis_url: str | None) -> None:
    from server.worker import run_worker  # the whole application: only for this command

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await run_worker(database_url, config, stopping, redis_url=redis_url)


def _worker(args: argparse.Namespace) -> int:
    from server.cli import NotMigrated, _require_migrated, config_or_report

    settings = Settings.from_env()
    config = GatewayConfig()
    if settings.config_path:
        loaded = config_or_report(settings.config_path)
        if loaded is None:
            return 2
        config = loaded
    try:
        asyncio.run(_require_migrated(settings.database_url))
    except NotMigrated as error:
        return _fail(f"{error}; run 'steerway migrate' first")
    except Exception as error:
        return _fail(
            f"cannot use the database at {redact_url(settings.database_url)} "
            f"({type(error).__name__}); run 'steerway migrate' first"
        )
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("steerway.worker").info("steerway worker started")
    try:
        asyncio.run(_until_signalled(settings.database_url, config, settings.redis_url))
    except ConfigError as error:
        return _fail(f"the config's alerts cannot be applied: {error}", 2)
    return 0


def add_worker_command(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help=(
            "run the background jobs (alert evaluation, scheduled reports, roll-up folding)"
            " without serving HTTP"
        ),
    )
    worker.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    worker.set_defaults(run=_worker)
