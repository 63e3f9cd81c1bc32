"""The `steerway` command: serve, migrate, keys, mock-provider, check-config."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.config import ConfigError, check_config, load_config
from gateway.keys import CreatedKey, KeyInfo, KeyStore, UnknownWorkspace
from gateway.settings import Settings
from telemetry.db import create_engine, redact_url
from telemetry.schema import DEFAULT_WORKSPACE_ID


class NotMigrated(Exception):
    pass


def _fail(message: str, code: int = 1) -> int:
    print(f"steerway: {message}", file=sys.stderr)
    return code


# --- serve ------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.config_path:
        try:
            load_config(settings.config_path)
        except ConfigError as error:
            print(f"steerway: invalid configuration in {settings.config_path}:", file=sys.stderr)
            for problem in error.problems:
                print(f"  {problem}", file=sys.stderr)
            return 2
    try:
        banner = asyncio.run(_prepare_master_key(settings))
    except NotMigrated as error:
        return _fail(f"{error}; run 'steerway migrate' first")
    except Exception as error:
        return _fail(
            f"cannot use the database at {redact_url(settings.database_url)} "
            f"({type(error).__name__}); run 'steerway migrate' first"
        )
    print(banner, flush=True)
    if args.workers > 1:
        _prepare_multiprocess_metrics()

    import uvicorn

    print(f"Steerway listening on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(
        "gateway.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


async def _prepare_master_key(settings: Settings) -> str:
    """Make sure a master key exists; a generated one is printed once and stored only hashed."""
    await _require_migrated(settings.database_url)
    if settings.master_key:
        return "Master key: from STEERWAY_MASTER_KEY."
    engine = create_engine(settings.database_url)
    try:
        store = KeyStore(engine)
        if await store.has_master_key():
            return (
                "Master key: generated earlier and shown once then; set STEERWAY_MASTER_KEY "
                "or create a key with 'steerway keys create --name NAME'."
            )
        created = await store.create("master key", role="master")
    finally:
        await engine.dispose()
    rule = "=" * 72
    return (
        f"{rule}\nGenerated master key (shown only now; stored hashed):\n\n"
        f"    {created.plaintext}\n\n"
        f"Use it as the OpenAI api_key with base_url http://HOST:PORT/v1.\n{rule}"
    )


async def _require_migrated(url: str) -> None:
    import migrations

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            revision = await connection.run_sync(migrations.revision_of)
    finally:
        await engine.dispose()
    if revision != migrations.head():
        raise NotMigrated(
            f"the database at {redact_url(url)} is at revision {revision or '(none)'}, "
            f"not {migrations.head()}"
        )


def _prepare_multiprocess_metrics() -> None:
    """Workers share metrics through files; a fresh folder per start avoids stale series."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        folder = tempfile.mkdtemp(prefix="steerway-metrics-")
    os.makedirs(folder, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


# --- migrate / check-config -------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    import migrations

    settings = Settings.from_env()
    url = args.database_url or settings.database_url
    try:
        migrations.upgrade(url)
    except Exception as error:
        return _fail(f"migration of {redact_url(url)} failed: {type(error).__name__}: {error}")
    print(f"Database {redact_url(url)} is at revision {migrations.head()}.")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    path = args.path or Settings.from_env().config_path
    if not path:
        return _fail("no file given: pass a path or set STEERWAY_CONFIG", 2)
    problems = check_config(path)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        print(f"{path}: {len(problems)} {noun}", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{path}: OK")
    return 0


# --- keys -------------------------------------------------------------------------------------


def _keys(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        return asyncio.run(_keys_async(args, settings))
    except UnknownWorkspace as error:
        return _fail(str(error))
    except Exception as error:
        return _fail(
            f"cannot use the database at {redact_url(settings.database_url)} "
            f"({type(error).__name__}); is it running and migrated ('steerway migrate')?"
        )


async def _keys_async(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    store = KeyStore(engine)
    try:
        if args.keys_command == "create":
            workspace_id = DEFAULT_WORKSPACE_ID
            if args.workspace:
                workspace_id = await store.ensure_workspace(args.workspace)
            expires = None
            if args.expires:
                try:
                    expires = datetime.fromisoformat(args.expires)
                except ValueError:
                    return _fail(f"--expires: not an ISO 8601 time: '{args.expires}'")
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=UTC)
            created = await store.create(args.name, workspace_id=workspace_id, expires_at=expires)
            _print_created(created)
            return 0
        if args.keys_command == "list":
            scope = await store.workspace_id(args.workspace) if args.workspace else None
            keys = await store.list(workspace_id=scope, include_revoked=args.all)
            _print_keys(keys)
            return 0
        revoked = await store.revoke(args.key)
        if revoked is None:
            return _fail(f"no single key matches '{args.key}' (give its id or its prefix)")
        print(f"Revoked {revoked.key_id} ({revoked.name}, {revoked.display_prefix}).")
        return 0
    finally:
        await engine.dispose()


def _print_created(created: CreatedKey) -> None:
    info = created.info
    print(f"Created key {info.key_id} '{info.name}' in workspace {info.workspace_id}.")
    print("The key is shown only now; store it safely:")
    print(f"\n    {created.plaintext}\n")


def _print_keys(keys: list[KeyInfo]) -> None:
    header = f"{'KEY ID':32}  {'PREFIX':16}  {'ROLE':6}  {'STATUS':8}  {'CREATED':20}  NAME"
    print(header)
    now = datetime.now(UTC)
    for key in keys:
        status = "active" if key.active(now) else ("revoked" if key.revoked_at else "expired")
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S") if key.created_at else "-"
        print(
            f"{key.key_id:32}  {key.display_prefix:16}  {key.role:6}  {status:8}  "
            f"{created:20}  {key.name}"
        )


# --- mock provider ----------------------------------------------------------------------------


def _mock_provider(args: argparse.Namespace) -> int:
    from providers.mock_server import run_mock_provider, settings_from_args

    run_mock_provider(args.host, args.port, settings_from_args(args), workers=args.workers)
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steerway", description="Steerway: an OpenAI-compatible LLM gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--database-url", help="default: STEERWAY_DATABASE_URL")
    migrate.set_defaults(run=_migrate)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", nargs="?", help="default: STEERWAY_CONFIG")
    check.set_defaults(run=_check_config)

    keys = commands.add_parser("keys", help="manage virtual keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--workspace", help="workspace slug or id (created if new)")
    create.add_argument("--expires", help="ISO 8601 time, UTC unless it says otherwise")
    listing = key_commands.add_parser("list", help="list keys")
    listing.add_argument("--workspace")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = key_commands.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    keys.set_defaults(run=_keys)

    mock = commands.add_parser("mock-provider", help="run the mock OpenAI-compatible provider")
    from providers.mock_server import add_arguments

    add_arguments(mock)
    mock.set_defaults(run=_mock_provider)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
