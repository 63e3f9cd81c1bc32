"""Admin keys: the master key, or a virtual key whose role is "master".

Keys are checked by the same `Authenticator` the proxy uses, so a revoked key stops working here
as quickly as it does on `/v1`. The master key and the admin keys of the default workspace are
the operator's and see every workspace; an admin key of any other workspace sees its own only.

`require_admin` accepts keys only; `admin_ui.console_auth.require_console_user` accepts a
console session as well. Both leave a `Principal` (see `admin_ui.principals`) on the request,
which everything after them reads.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from admin_ui.principals import STATE_KEY, Principal, key_principal, principal
from admin_ui.state import gateway_of, starting
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.errors import GatewayError
from gateway.keys.store import KeyInfo
from telemetry.schema import DEFAULT_WORKSPACE_ID

ADMIN_ROLE = "master"


def admin_required() -> GatewayError:
    return GatewayError(
        403,
        "This API needs an admin key: the master key or a key with the master role.",
        type="permission_error",
        code="admin_key_required",
    )


async def admin_key_principal(
    connection: ASGIConnection[Any, Any, Any, Any], address: str | None = None
) -> Principal:
    """The principal of the request's bearer key: 401 without a valid key, 403 for a key that
    is not an admin's."""
    proxy = gateway_of(connection).proxy
    if proxy is None:
        raise starting()
    key = await proxy.authenticator.authenticate(connection.headers.get("authorization"))
    if key.role != ADMIN_ROLE:
        raise admin_required()
    return key_principal(key, operator=global_admin(key), address=address)


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: an admin key, as the only way in."""
    connection.state[STATE_KEY] = await admin_key_principal(connection)


def provide_author(request: Request[Any, Any, Any]) -> str:
    """Dependency `author`: how changes made with this request are signed ("master" for the
    master key, a key's name, a user's email)."""
    return principal(request).name


def global_admin(key: KeyInfo) -> bool:
    """The operator: the master key, or an admin key of the default workspace. Every other
    admin key is its own workspace's admin only."""
    return key.key_id == MASTER_KEY_INFO.key_id or (
        key.role == ADMIN_ROLE and key.workspace_id == DEFAULT_WORKSPACE_ID
    )


def workspace_scope(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The one workspace this request shows, or None for every workspace."""
    return principal(connection).workspace_scope


def operator_required() -> GatewayError:
    return GatewayError(
        403,
        "This needs the master key or an admin key of the default workspace; a workspace's "
        "admin key manages only its own workspace's keys.",
        type="permission_error",
        code="operator_key_required",
    )


def operators_only() -> GatewayError:
    return GatewayError(
        403,
        "Only operators may do this (rules, simulation, replay and new workspaces are "
        "gateway-wide); ask an operator.",
        type="permission_error",
        code="operator_required",
    )


async def require_global_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard, after `require_admin` or `require_console_user`: 403 unless an operator."""
    found = principal(connection)
    if not found.is_operator:
        raise operator_required() if found.kind == "key" else operators_only()
