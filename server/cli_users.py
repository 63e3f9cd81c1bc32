"""`steerway users create|list|disable|enable|reset-password`: console users from the server.

Passwords are never taken from the command line (they would stay in the shell's history and
in the process list): they are asked for at the terminal, read from standard input with
`--password-stdin`, or left for the user to set through a one-time link (`--link`). Every
change is written to the audit log as made by "cli".
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.audit import CLI_ACTOR
from admin_ui.passwords import check_password, hash_password_async
from admin_ui.signin_links import RESET_PATH, issue_password_link
from admin_ui.users import ROLES, User, UserExists, UserStore, parse_email
from gateway.config.console import ConsoleConfig
from gateway.config.file import ConfigError, load_config
from gateway.config.settings import Settings
from gateway.keys.limits import InvalidField
from gateway.keys.store import UnknownWorkspace
from telemetry.db import create_engine, redact_url
from telemetry.schema import DEFAULT_WORKSPACE_ID

DEFAULT_URL = "http://127.0.0.1:8080"


class CommandError(Exception):
    """A problem to report as one line."""


def _fail(message: str) -> int:
    print(f"steerway: {message}", file=sys.stderr)
    return 1


def _engine_command(
    run: Callable[[argparse.Namespace, AsyncEngine], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        settings = Settings.from_env()

        async def with_engine() -> int:
            engine = create_engine(settings.database_url)
            try:
                return await run(args, engine)
            finally:
                await engine.dispose()

        try:
            return asyncio.run(with_engine())
        except (CommandError, UnknownWorkspace, UserExists) as error:
            return _fail(str(error))
        except InvalidField as error:
            return _fail(f"{error.param}: {error.problem}")
        except KeyboardInterrupt:
            return _fail("interrupted")
        except Exception as error:
            return _fail(
                f"cannot use the database at {redact_url(settings.database_url)} "
                f"({type(error).__name__}); is it running and migrated ('steerway migrate')?"
            )

    return command


def console_config() -> ConsoleConfig:
    """The `console` section of `STEERWAY_CONFIG`; the defaults without one or with a bad one."""
    path = Settings.from_env().config_path
    if not path:
        return ConsoleConfig()
    try:
        return load_config(path).console
    except ConfigError:
        return ConsoleConfig()  # `check-config` reports the file's problems


def _password(args: argparse.Namespace, email: str) -> str | None:
    """The new password: None with --link, else from stdin or asked twice at the terminal."""
    if args.link:
        return None
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        return check_password(password.removesuffix("\r"), "password", email)
    if not sys.stdin.isatty():
        raise CommandError(
            "no terminal to ask for the password: pipe it with --password-stdin, or use --link"
        )
    password = check_password(getpass.getpass("Password: "), "password", email)
    if getpass.getpass("Password again: ") != password:
        raise CommandError("the two passwords differ")
    return password


def _roles(args: argparse.Namespace) -> dict[str, str]:
    """--role/--workspace pairs: one role for every --workspace, or one per --workspace in
    order; a --role without --workspace is a role in the default workspace."""
    roles: list[str] = args.role or []
    spaces: list[str] = args.workspace or []
    if spaces and not roles:
        raise CommandError("give the user's --role (owner, admin or viewer) in the workspace")
    if roles and not spaces:
        spaces = [DEFAULT_WORKSPACE_ID]
    if len(roles) == 1:
        roles = roles * len(spaces)
    if len(roles) != len(spaces):
        raise CommandError("give one --role for all workspaces, or one --role per --workspace")
    return dict(zip(spaces, roles, strict=True))


def _describe(user: User) -> str:
    parts = ["operator"] if user.is_operator else []
    parts += [f"{m.role} of {m.slug}" for m in user.memberships]
    return ", ".join(parts) or "no role yet"


async def _print_link(engine: AsyncEngine, user: User, args: argparse.Namespace) -> None:
    config = console_config()
    base = (args.url or config.public_url or DEFAULT_URL).rstrip("/")
    token, expires = await issue_password_link(
        engine, user.user_id, hours=config.reset_link_hours, actor=CLI_ACTOR
    )
    print(
        f"Send this one-time link to {user.email}; it sets the password once, until "
        f"{expires.strftime('%Y-%m-%d %H:%M')} UTC:\n\n    {base}{RESET_PATH}?token={token}\n"
    )


async def _create(args: argparse.Namespace, engine: AsyncEngine) -> int:
    email = parse_email(args.email, "--email")
    roles = _roles(args)
    if not roles and not args.operator:
        raise CommandError("give a --role (and --workspace), or --operator")
    password = _password(args, email)
    created = await UserStore(engine).create(
        email=email,
        name=args.name or email.split("@", 1)[0],
        password_hash=None if password is None else await hash_password_async(password),
        is_operator=args.operator,
        roles=roles,
        actor=CLI_ACTOR,
    )
    print(f"Created user {created.user_id} {created.email} ({_describe(created)}).")
    if password is None:
        await _print_link(engine, created, args)
    return 0


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


async def _list(args: argparse.Namespace, engine: AsyncEngine) -> int:
    from gateway.keys.store import KeyStore
    from server.cli import _print_table

    scope = None
    if args.workspace:
        scope = {await KeyStore(engine).workspace_id(args.workspace)}
    found = await UserStore(engine).list(scope)
    _print_table(
        ("USER ID", "EMAIL", "STATUS", "LAST SIGN-IN", "NAME", "ROLES"),
        [
            (
                user.user_id,
                user.email,
                "disabled" if user.disabled else ("active" if user.has_password else "invited"),
                _when(user.last_sign_in_at),
                user.display_name,
                _describe(user),
            )
            for user in found
        ],
    )
    return 0


async def _found(store: UserStore, user: str) -> User:
    found = await store.get(user)
    if found is None:
        raise CommandError(f"no user '{user[:320]}' (give an email or a user id)")
    return found


async def _set_disabled(args: argparse.Namespace, engine: AsyncEngine, disabled: bool) -> int:
    store = UserStore(engine)
    user = await _found(store, args.user)
    updated = await store.update(user.user_id, disabled=disabled, actor=CLI_ACTOR)
    assert updated is not None
    state = "Disabled" if disabled else "Enabled"
    print(f"{state} {updated.email}" + ("; its sessions have ended." if disabled else "."))
    return 0


async def _disable(args: argparse.Namespace, engine: AsyncEngine) -> int:
    return await _set_disabled(args, engine, True)


async def _enable(args: argparse.Namespace, engine: AsyncEngine) -> int:
    return await _set_disabled(args, engine, False)


async def _reset_password(args: argparse.Namespace, engine: AsyncEngine) -> int:
    store = UserStore(engine)
    user = await _found(store, args.user)
    if user.disabled:
        raise CommandError(f"{user.email} is disabled; 'steerway users enable' it first")
    password = _password(args, user.email)
    if password is None:
        await _print_link(engine, user, args)
        return 0
    await store.set_password(user.user_id, await hash_password_async(password), actor=CLI_ACTOR)
    print(f"Set a new password for {user.email}; its other sessions have ended.")
    return 0


def _add_password_options(parser: argparse.ArgumentParser) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    given.add_argument(
        "--link",
        action="store_true",
        help="print a one-time link that lets the user set the password instead",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help=f"where the console is reached, for the link (default: console.public_url, "
        f"else {DEFAULT_URL})",
    )


def add_users_commands(commands: Any) -> None:
    users = commands.add_parser("users", help="manage console users")
    user_commands = users.add_subparsers(dest="users_command", required=True)

    create = user_commands.add_parser(
        "create", help="create a user (the password is asked for, never an argument)"
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name", help="shown in the console (default: the email's name)")
    create.add_argument(
        "--role",
        action="append",
        choices=ROLES,
        help="the role in the --workspace (repeatable, one per --workspace)",
    )
    create.add_argument(
        "--workspace",
        action="append",
        metavar="SLUG",
        help="a workspace slug or id (repeatable; default: the default workspace)",
    )
    create.add_argument(
        "--operator",
        action="store_true",
        help="an operator: every workspace, rules, simulation and replay",
    )
    _add_password_options(create)
    create.set_defaults(run=_engine_command(_create))

    listing = user_commands.add_parser("list", help="list users and their roles")
    listing.add_argument("--workspace", help="only users with a role in this workspace")
    listing.set_defaults(run=_engine_command(_list))

    for name, run, text in (
        ("disable", _disable, "disable a user; their sessions end"),
        ("enable", _enable, "enable a disabled user again"),
    ):
        parser = user_commands.add_parser(name, help=text)
        parser.add_argument("user", help="email or user id")
        parser.set_defaults(run=_engine_command(run))

    reset = user_commands.add_parser(
        "reset-password", help="set a user's password, or print a one-time link to set it"
    )
    reset.add_argument("user", help="email or user id")
    _add_password_options(reset)
    reset.set_defaults(run=_engine_command(_reset_password))
