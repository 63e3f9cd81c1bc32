"""`steerway alerts export --prometheus`: the stored alert rules as a Prometheus rule file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from gateway.config.settings import Settings
from gateway.keys.store import KeyStore, UnknownWorkspace
from server.cli_users import console_config
from telemetry.alerts.prometheus_export import Export, export_rules
from telemetry.alerts.rule_store import load_rules
from telemetry.db import create_engine, redact_url


def _fail(message: str) -> int:
    print(f"steerway: {message}", file=sys.stderr)
    return 1


async def _export(args: argparse.Namespace, database_url: str) -> Export:
    engine = create_engine(database_url)
    try:
        store = KeyStore(engine)
        slugs = {space.workspace_id: space.slug for space in await store.list_workspaces()}
        workspace_id = await store.workspace_id(args.workspace) if args.workspace else None
        rules = await load_rules(engine, workspace_id)
    finally:
        await engine.dispose()
    return export_rules(rules, slugs, console_url=console_config().public_url)


def _export_command(args: argparse.Namespace) -> int:
    if not args.prometheus:
        return _fail("say which format: --prometheus")
    database_url = Settings.from_env().database_url
    try:
        export = asyncio.run(_export(args, database_url))
    except UnknownWorkspace as error:
        return _fail(str(error))
    except Exception as error:
        return _fail(
            f"cannot use the database at {redact_url(database_url)} "
            f"({type(error).__name__}); is it running and migrated ('steerway migrate')?"
        )
    for item in export.skipped:
        print(f"steerway: skipped {item.rule.name!r}: {item.reason}", file=sys.stderr)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as file:
                file.write(export.text)
        except OSError as error:
            return _fail(f"cannot write {args.output} ({error.strerror})")
    else:
        sys.stdout.write(export.text)
    return 0


def add_alerts_commands(commands: Any) -> None:
    alerts = commands.add_parser("alerts", help="alert rules")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    export = alert_commands.add_parser(
        "export", help="write the alert rules in another system's format"
    )
    export.add_argument(
        "--prometheus", action="store_true", help="as a Prometheus rule file (YAML)"
    )
    export.add_argument("--workspace", help="one workspace's rules (slug or id); default: all")
    export.add_argument("--output", help="write to this file instead of standard output")
    export.set_defaults(run=_export_command)
