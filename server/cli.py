"""The `steerway` command: serve, worker, migrate, keys, workspaces, users, alerts, demo-data,
mock-provider, check-config."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
from msgspec import UNSET

from gateway.config.console import ConsoleConfig
from gateway.config.file import ConfigError, GatewayConfig, check_config, load_config
from gateway.config.server import ServerConfig
from gateway.config.settings import SERVE_WORKERS_VARIABLE, Settings
from gateway.guardrails.config import unknown_names
from gateway.keys.limits import (
    BudgetLimit,
    InvalidField,
    WorkspaceLimits,
    parse_budgets,
    parse_count,
    parse_guardrail_names,
)
from gateway.keys.store import (
    ROLES,
    KeyInfo,
    KeyStore,
    UnknownWorkspace,
    WorkspaceExists,
    parse_allowed_models,
    parse_metadata,
    parse_tags,
)
from providers.mock.cli import add_arguments as add_mock_arguments
from server.cli_alerts import add_alerts_commands
from server.cli_users import add_users_commands
from server.cli_worker import add_worker_command
from telemetry import times
from telemetry.db import create_engine, redact_url
from telemetry.schema import DEFAULT_WORKSPACE_ID


class NotMigrated(Exception):
    pass


def _fail(message: str, code: int = 1) -> int:
    print(f"steerway: {message}", file=sys.stderr)
    return code


# --- serve ------------------------------------------------------------------------------------


def config_or_report(path: str) -> GatewayConfig | None:
    """The config file's settings; None after printing its problems to standard error."""
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"steerway: invalid configuration in {path}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    server = ServerConfig()
    console = ConsoleConfig()
    if settings.config_path:
        config = config_or_report(settings.config_path)
        if config is None:
            return 2
        server, console = config.server, config.console
    try:
        banner = asyncio.run(_prepare_master_key(settings))
        first_owner = asyncio.run(_first_owner_link(settings, console))
    except NotMigrated as error:
        return _fail(f"{error}; run 'steerway migrate' first")
    except Exception as error:
        return _fail(
            f"cannot use the database at {redact_url(settings.database_url)} "
            f"({type(error).__name__}); run 'steerway migrate' first"
        )
    print(banner, flush=True)
    if first_owner is not None:
        base = console.public_url or f"http://{_shown_host(args.host)}:{args.port}"
        hours = f"{console.first_owner_link_hours:g}"
        print(
            f"Open {base}/admin/setup?token={first_owner} to create the first owner "
            f"(the link works once, within {hours} hours).",
            flush=True,
        )
    os.environ[SERVE_WORKERS_VARIABLE] = str(args.workers)
    if args.workers > 1:
        _prepare_multiprocess_metrics()
        if not settings.redis_url:
            print(
                f"steerway: warning: {args.workers} workers without STEERWAY_REDIS_URL: each "
                "keeps its own cache, rate limits and budgets, so a limit can be reached once "
                "per worker, and the live feed shows the requests of one worker",
                file=sys.stderr,
                flush=True,
            )

    import uvicorn

    from gateway.entry.server_connections import (
        ConnectionGuard,
        connection_cap,
        raise_open_file_limit,
    )

    open_files = raise_open_file_limit()
    if connection_cap(server.max_connections) < server.max_connections:
        print(
            f"steerway: warning: at most {connection_cap(server.max_connections)} connections "
            f"per worker, not {server.max_connections} (server.max_connections): the open-file "
            f"limit is {open_files}",
            file=sys.stderr,
            flush=True,
        )
    print(f"Steerway listening on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(
        "server.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        # httptools with read and write deadlines and a connection cap (uvicorn has neither).
        http=cast("type[asyncio.Protocol]", ConnectionGuard(server)),
        ws="none",
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


async def _first_owner_link(settings: Settings, console: ConsoleConfig) -> str | None:
    """With no console user yet, a new one-time link's token to create the first (earlier
    links stop working); None once someone has signed up. Made here, before the workers start,
    so one start prints one link."""
    from admin_ui.signin_links import issue_first_owner_link

    engine = create_engine(settings.database_url)
    try:
        return await issue_first_owner_link(engine, hours=console.first_owner_link_hours)
    finally:
        await engine.dispose()


def _shown_host(host: str) -> str:
    """The host for a printed link: a wildcard address is reached on loopback."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


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


# --- keys and workspaces ----------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_CLEARED = "none"


def _store_command(
    run: Callable[[argparse.Namespace, KeyStore], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    """A `keys`/`workspaces` subcommand with a store and failures as one clean line each."""

    def command(args: argparse.Namespace) -> int:
        settings = Settings.from_env()

        async def with_store() -> int:
            engine = create_engine(settings.database_url)
            try:
                return await run(args, KeyStore(engine))
            finally:
                await engine.dispose()

        try:
            return asyncio.run(with_store())
        except (InvalidField, UnknownWorkspace, WorkspaceExists) as error:
            return _fail(str(error))
        except Exception as error:
            return _fail(
                f"cannot use the database at {redact_url(settings.database_url)} "
                f"({type(error).__name__}); is it running and migrated ('steerway migrate')?"
            )

    return command


def _expiry(text: str, *, updating: bool) -> datetime | None:
    """`--expires`: an ISO 8601 time (UTC unless it says otherwise), a duration from now such as
    30d, 12h, 90m or 2w, or (when updating) `never`."""
    if updating and text.lower() == "never":
        return None
    duration = _DURATION.match(text.strip().lower())
    if duration is not None:
        try:
            amount = timedelta(**{_DURATION_UNITS[duration.group(2)]: int(duration.group(1))})
            return times.later_by(datetime.now(UTC), amount)
        except (ValueError, OverflowError):  # more digits or days than Python holds
            raise InvalidField(
                "--expires", f"'{text[:64]}' from now is {times.out_of_range()}"
            ) from None
    try:
        return times.parse_iso_time(text)
    except times.OutOfRange as error:
        raise InvalidField("--expires", str(error)) from None
    except times.InvalidTime as error:
        raise InvalidField("--expires", f"{error}; or give a duration such as 30d") from None


def _count(text: str, option: str, *, updating: bool) -> int | None:
    if updating and text.lower() == _CLEARED:
        return None
    try:
        value: Any = int(text)
    except ValueError:
        value = text
    return parse_count(value, option)


def _metadata(text: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        raise InvalidField(
            "--metadata", "not valid JSON (UTF-8, no NaN, not nested too deep)"
        ) from None
    return parse_metadata(value, "--metadata")


def _budgets(args: argparse.Namespace) -> tuple[BudgetLimit, ...] | None:
    """The budgets given with --budget (None when the option was not used)."""
    if args.budget is None:
        return None
    budgets = [BudgetLimit.from_text(text, "--budget") for text in args.budget]
    return parse_budgets([budget.to_json() for budget in budgets], "--budget")


def _guardrails(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The names given with --guardrails as `pii,injection` (None when the option was not used;
    an empty text is an empty list). With STEERWAY_CONFIG set, each must be a guardrail that
    config defines."""
    if args.guardrails is None:
        return None
    text: str = args.guardrails
    names = [name.strip() for name in text.split(",")] if text.strip() else []
    parsed = parse_guardrail_names(names, "--guardrails")
    config_path = Settings.from_env().config_path
    if parsed and config_path:
        try:
            known = load_config(config_path).guardrails.names
        except ConfigError:
            known = None  # `check-config` reports the file's problems; the names keep their shape
        for index, name in enumerate(parsed if known is not None else ()):
            for problem in unknown_names([name], known or ()):
                raise InvalidField(f"--guardrails[{index}]", problem)
    return parsed


def _limit_options(args: argparse.Namespace, *, updating: bool) -> dict[str, Any]:
    """rpm, tpm and max parallel as given; with `updating`, `none` clears one."""
    changes: dict[str, Any] = {}
    for field, option in (("rpm", "--rpm"), ("tpm", "--tpm"), ("max_parallel", "--max-parallel")):
        text = getattr(args, field)
        if text is not None:
            name = "max_parallel" if field == "max_parallel" else f"{field}_limit"
            changes[name] = _count(text, option, updating=updating)
    return changes


def _key_options(args: argparse.Namespace, *, updating: bool) -> dict[str, Any]:
    """KeyStore keyword arguments for the options given (all of them when creating)."""
    changes = _limit_options(args, updating=updating)
    if args.models:
        changes["allowed_models"] = parse_allowed_models(args.models, "--models")
    elif updating and args.all_models:
        changes["allowed_models"] = None
    budgets = _budgets(args)
    if budgets is not None:
        changes["budgets"] = budgets
    elif updating and args.clear_budgets:
        changes["budgets"] = None
    if args.tag:
        changes["default_tags"] = parse_tags(args.tag, "--tag")
    elif updating and args.clear_tags:
        changes["default_tags"] = None
    guardrails = _guardrails(args)
    if guardrails is not None:
        changes["guardrails"] = guardrails
    if args.metadata is not None:
        changes["metadata"] = _metadata(args.metadata)
    if args.expires is not None:
        changes["expires_at"] = _expiry(args.expires, updating=updating)
    if args.role is not None:
        changes["role"] = args.role
    return changes


async def _keys_create(args: argparse.Namespace, store: KeyStore) -> int:
    if args.name is not None and args.name_option is not None and args.name != args.name_option:
        return _fail(f"two names given: '{args.name}' and --name '{args.name_option}'")
    name = args.name if args.name is not None else args.name_option
    if name is None:
        return _fail("give the key a name: 'steerway keys create NAME'")
    options = _key_options(args, updating=False)
    workspace_id = DEFAULT_WORKSPACE_ID
    if args.workspace:
        workspace_id = await store.ensure_workspace(args.workspace)
    created = await store.create(name, workspace_id=workspace_id, **options)
    info = created.info
    print(f"Created key {info.key_id} '{info.name}' in workspace {info.workspace_id}.")
    if info.role != "user":
        print(f"Role: {info.role}.")
    limits = _key_limits_text(info)
    if limits != "-":
        print(f"Limits: {limits}")
    print("The key is shown only now; store it safely:")
    print(f"\n    {created.plaintext}\n")
    return 0


async def _keys_list(args: argparse.Namespace, store: KeyStore) -> int:
    scope = await store.workspace_id(args.workspace) if args.workspace else None
    keys = await store.list(workspace_id=scope, include_revoked=args.all)
    slugs = {w.workspace_id: w.slug for w in await store.list_workspaces()}
    now = datetime.now(UTC)
    _print_table(
        ("KEY ID", "PREFIX", "ROLE", "STATUS", "CREATED", "WORKSPACE", "NAME", "LIMITS"),
        [
            (
                key.key_id,
                key.display_prefix,
                key.role,
                key.status(now),
                _when(key.created_at),
                slugs.get(key.workspace_id, key.workspace_id),
                key.name,
                _key_limits_text(key),
            )
            for key in keys
        ],
    )
    return 0


async def _keys_update(args: argparse.Namespace, store: KeyStore) -> int:
    changes = _key_options(args, updating=True)
    if args.name is not None:
        changes["name"] = args.name
    if not changes:
        return _fail("nothing to change: give at least one option (see --help)")
    updated = await store.update(args.key_id, **changes)
    if updated is None:
        return _fail(f"no key with id '{args.key_id}'")
    print(f"Updated key {updated.key_id} '{updated.name}'.")
    print(f"Limits: {_key_limits_text(updated)}")
    return 0


async def _keys_revoke(args: argparse.Namespace, store: KeyStore) -> int:
    revoked = await store.revoke(args.key)
    if revoked is None:
        return _fail(f"no single key matches '{args.key}' (give its id or its prefix)")
    print(f"Revoked {revoked.key_id} ({revoked.name}, {revoked.display_prefix}).")
    return 0


def _workspace_settings(args: argparse.Namespace, *, updating: bool) -> dict[str, Any]:
    settings = _limit_options(args, updating=updating)
    budgets = _budgets(args)
    if budgets is not None:
        settings["budgets"] = [budget.to_json() for budget in budgets]
    elif updating and args.clear_budgets:
        settings["budgets"] = None
    guardrails = _guardrails(args)
    if guardrails is not None:
        settings["guardrails"] = list(guardrails)
    return settings


async def _workspaces_create(args: argparse.Namespace, store: KeyStore) -> int:
    settings = _workspace_settings(args, updating=False)
    workspace = await store.create_workspace(args.slug, name=args.name, settings=settings)
    print(f"Created workspace {workspace.workspace_id} '{workspace.slug}' ({workspace.name}).")
    print(f"Limits: {_workspace_limits_text(workspace.limits)}")
    return 0


async def _workspaces_list(args: argparse.Namespace, store: KeyStore) -> int:
    keys: dict[str, int] = {}
    for key in await store.list():
        keys[key.workspace_id] = keys.get(key.workspace_id, 0) + 1
    _print_table(
        ("WORKSPACE ID", "SLUG", "CREATED", "KEYS", "NAME", "LIMITS"),
        [
            (
                w.workspace_id,
                w.slug,
                _when(w.created_at),
                str(keys.get(w.workspace_id, 0)),
                w.name,
                _workspace_limits_text(w.limits),
            )
            for w in await store.list_workspaces()
        ],
    )
    return 0


async def _workspaces_update(args: argparse.Namespace, store: KeyStore) -> int:
    settings = _workspace_settings(args, updating=True)
    if args.name is None and not settings:
        return _fail("nothing to change: give at least one option (see --help)")
    updated = await store.update_workspace(
        args.workspace,
        name=UNSET if args.name is None else args.name,
        settings=settings if settings else UNSET,
    )
    if updated is None:
        raise UnknownWorkspace(f"unknown workspace '{args.workspace}'")
    print(f"Updated workspace {updated.workspace_id} '{updated.slug}' ({updated.name}).")
    print(f"Limits: {_workspace_limits_text(updated.limits)}")
    return 0


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _rate_parts(rpm: int | None, tpm: int | None, parallel: int | None) -> list[str]:
    parts = [] if rpm is None else [f"rpm={rpm}"]
    parts += [] if tpm is None else [f"tpm={tpm}"]
    return parts + ([] if parallel is None else [f"parallel={parallel}"])


def _budget_parts(budgets: tuple[BudgetLimit, ...]) -> list[str]:
    return [f"budgets={','.join(b.describe() for b in budgets)}"] if budgets else []


def _guardrail_parts(guardrails: tuple[str, ...]) -> list[str]:
    return [f"guardrails={','.join(guardrails)}"] if guardrails else []


def _workspace_limits_text(limits: WorkspaceLimits) -> str:
    parts = _rate_parts(limits.rpm_limit, limits.tpm_limit, limits.max_parallel)
    parts += _budget_parts(limits.budgets) + _guardrail_parts(limits.guardrails)
    return " ".join(parts) or "-"


def _key_limits_text(key: KeyInfo) -> str:
    parts = [] if key.allowed_models is None else [f"models={','.join(key.allowed_models)}"]
    parts += _rate_parts(key.rpm_limit, key.tpm_limit, key.max_parallel)
    parts += _budget_parts(key.budgets)
    parts += [f"tags={','.join(key.default_tags)}"] if key.default_tags else []
    parts += _guardrail_parts(key.guardrails)
    parts += [f"expires={_when(key.expires_at)}"] if key.expires_at else []
    return " ".join(parts) or "-"


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last one is left as it is."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _add_key_options(parser: argparse.ArgumentParser, *, updating: bool) -> None:
    clear = " ('none' removes the limit)" if updating else ""
    parser.add_argument(
        "--models",
        nargs="+",
        action="extend",
        metavar="PATTERN",
        help="models the key may use, as patterns such as 'gpt-4o*' (default: all)",
    )
    parser.add_argument("--rpm", metavar="N", help=f"requests per minute{clear}")
    parser.add_argument("--tpm", metavar="N", help=f"tokens per minute{clear}")
    parser.add_argument(
        "--max-parallel", dest="max_parallel", metavar="N", help=f"requests at once{clear}"
    )
    parser.add_argument(
        "--budget",
        action="append",
        metavar="USD/WINDOW[@SOFT%]",
        help="a budget such as 10.00/monthly or 5/daily@80 (repeatable; windows: daily, "
        "weekly, monthly, total)" + ("; replaces the key's budgets" if updating else ""),
    )
    parser.add_argument(
        "--expires",
        metavar="TIME",
        help="ISO 8601 time (UTC unless it says otherwise) or a duration such as 30d"
        + (", or 'never'" if updating else ""),
    )
    parser.add_argument(
        "--tag", action="append", metavar="TAG", help="a tag added to every request (repeatable)"
    )
    _add_guardrails_option(parser, "every request of the key", updating=updating)
    parser.add_argument("--metadata", metavar="JSON", help="a JSON object kept with the key")
    parser.add_argument("--role", choices=ROLES, help="master: may use the admin API")
    if updating:
        parser.add_argument("--name")
        parser.add_argument("--all-models", action="store_true", help="allow every model")
        parser.add_argument("--clear-budgets", action="store_true", help="remove every budget")
        parser.add_argument("--clear-tags", action="store_true", help="remove the default tags")


def _add_workspace_options(parser: argparse.ArgumentParser, *, updating: bool) -> None:
    clear = " ('none' removes the limit)" if updating else ""
    parser.add_argument("--name")
    parser.add_argument(
        "--budget",
        action="append",
        metavar="USD/WINDOW[@SOFT%]",
        help="a budget for the whole workspace, such as 100/monthly@80 (repeatable)"
        + ("; replaces the workspace's budgets" if updating else ""),
    )
    parser.add_argument("--rpm", metavar="N", help=f"requests per minute, all keys{clear}")
    parser.add_argument("--tpm", metavar="N", help=f"tokens per minute, all keys{clear}")
    parser.add_argument(
        "--max-parallel", dest="max_parallel", metavar="N", help=f"requests at once{clear}"
    )
    _add_guardrails_option(parser, "every request of the workspace's keys", updating=updating)
    if updating:
        parser.add_argument("--clear-budgets", action="store_true", help="remove every budget")


def _add_guardrails_option(
    parser: argparse.ArgumentParser, applied_to: str, *, updating: bool
) -> None:
    parser.add_argument(
        "--guardrails",
        metavar="NAME,NAME",
        help=f"guardrails of the config run on {applied_to}, comma-separated"
        + ("; replaces the list, and '' removes every one" if updating else ""),
    )


def _add_keys_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage virtual keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key (shown once)")
    create.add_argument("name", nargs="?", help="what the key is for")
    create.add_argument("--name", dest="name_option", help=argparse.SUPPRESS)
    create.add_argument("--workspace", help="workspace slug or id (created if new)")
    _add_key_options(create, updating=False)
    create.set_defaults(run=_store_command(_keys_create))

    listing = key_commands.add_parser("list", help="list keys and their limits")
    listing.add_argument("--workspace")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(run=_store_command(_keys_list))

    update = key_commands.add_parser("update", help="change a key's name, limits or expiry")
    update.add_argument("key_id")
    _add_key_options(update, updating=True)
    update.set_defaults(run=_store_command(_keys_update))

    revoke = key_commands.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    revoke.set_defaults(run=_store_command(_keys_revoke))

    spaces = commands.add_parser("workspaces", help="manage workspaces")
    space_commands = spaces.add_subparsers(dest="workspaces_command", required=True)
    create_space = space_commands.add_parser("create", help="create a workspace")
    create_space.add_argument("slug")
    _add_workspace_options(create_space, updating=False)
    create_space.set_defaults(run=_store_command(_workspaces_create))
    list_spaces = space_commands.add_parser("list", help="list workspaces and their limits")
    list_spaces.set_defaults(run=_store_command(_workspaces_list))
    update_space = space_commands.add_parser("update", help="rename or change limits")
    update_space.add_argument("workspace", help="slug or id")
    _add_workspace_options(update_space, updating=True)
    update_space.set_defaults(run=_store_command(_workspaces_update))


# --- demo data --------------------------------------------------------------------------------


def _demo_data(args: argparse.Namespace) -> int:
    from gateway.demo.data import (
        DemoDataError,
        DemoOptions,
        HoldsRealTraffic,
        default_end,
        validate,
        write_demo_data,
    )

    try:
        validate(args.days, args.requests)
        end = default_end() if args.end is None else _minute(args.end)
    except (DemoDataError, InvalidField) as error:
        return _fail(str(error), 2)
    settings = Settings.from_env()
    options = DemoOptions(
        days=args.days, requests=args.requests, seed=args.seed, end=end, force=args.force
    )
    shown = redact_url(settings.database_url)
    print(
        f"Writing {options.requests:,} requests over {options.days} days "
        f"({options.start:%Y-%m-%d %H:%M} to {options.end:%Y-%m-%d %H:%M} UTC, seed "
        f"{options.seed}) into {shown}...",
        flush=True,
    )
    reporter = _DemoProgress()

    async def run() -> Any:
        await _require_migrated(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            return await write_demo_data(engine, options, reporter)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except HoldsRealTraffic as error:
        return _fail(f"refusing: {error}", 2)
    except DemoDataError as error:
        return _fail(str(error))
    except NotMigrated as error:
        return _fail(f"{error}; run 'steerway migrate' first")
    except KeyboardInterrupt:
        return _fail("interrupted: nothing was written", 130)
    except Exception as error:
        return _fail(
            f"cannot write to the database at {shown} ({type(error).__name__}); is it running "
            "and migrated ('steerway migrate')?"
        )
    rows = sum(report.rows.values())
    print(
        f"Wrote {report.traces:,} traces ({rows:,} rows) in {report.seconds:.1f} s "
        f"({report.traces_per_second:,.0f} traces/s): workspaces {', '.join(report.workspaces)}; "
        f"{report.keys} keys (no usable key exists for them)."
    )
    for plant in report.planted:
        print(f"Planted {plant.describe()}.")
    return 0


class _DemoProgress:
    """A line on stderr every few seconds while the history is written."""

    def __init__(self, every: float = 5.0) -> None:
        self._every = every
        self._last = 0.0

    def __call__(self, state: Any) -> None:
        if state.seconds - self._last < self._every and state.minutes_done < state.minutes:
            return
        self._last = state.seconds
        rate = state.traces / state.seconds if state.seconds else 0.0
        print(
            f"  {100 * state.minutes_done / state.minutes:5.1f}%  {state.traces:,} traces, through "
            f"{state.through:%Y-%m-%d %H:%M} UTC, {rate:,.0f} traces/s",
            file=sys.stderr,
            flush=True,
        )


def _minute(text: str) -> datetime:
    """`--end`: an ISO 8601 time, UTC unless it says otherwise, cut to the minute."""
    try:
        value = times.parse_iso_time(text)
    except (times.InvalidTime, times.OutOfRange) as error:
        raise InvalidField("--end", str(error)) from None
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def _add_demo_data_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo-data",
        help="write a made-up history of requests into the database (for trying the console)",
        description="Write a realistic, made-up history straight into the configured database "
        "(STEERWAY_DATABASE_URL): workspaces, keys, end users, requests over several models and "
        "providers at their prices, with a daily and weekly rhythm, errors, cache hits, rule "
        "matches, guardrail findings, retries and fallbacks. Refuses a database that holds real "
        "traffic unless --force.",
    )
    demo.add_argument(
        "--days", type=int, default=7, help="days of history, ending now (default: 7)"
    )
    demo.add_argument(
        "--requests", type=int, default=100_000, help="requests in all (default: 100000)"
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=1,
        help="the same seed (and options) writes the same history (default: 1)",
    )
    demo.add_argument(
        "--end",
        metavar="TIME",
        help="when the history ends, ISO 8601 (UTC unless it says otherwise; default: now)",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="write even though the database holds traffic demo-data did not write",
    )
    demo.set_defaults(run=_demo_data)


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
    add_worker_command(commands)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--database-url", help="default: STEERWAY_DATABASE_URL")
    migrate.set_defaults(run=_migrate)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", nargs="?", help="default: STEERWAY_CONFIG")
    check.set_defaults(run=_check_config)

    _add_keys_commands(commands)
    add_users_commands(commands)
    add_alerts_commands(commands)
    _add_demo_data_command(commands)

    mock = commands.add_parser("mock-provider", help="run the mock OpenAI-compatible provider")
    add_mock_arguments(mock)
    mock.set_defaults(run=_mock_provider)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
