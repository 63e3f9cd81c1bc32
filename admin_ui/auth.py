"""Who may use the admin API: the master key, or a virtual key whose role is "master".

Keys are checked by the same `Authenticator` the proxy uses, so a revoked key stops working here
as quickly as it does on `/v1`. The master key and the admin keys of the default workspace are
the operator's and see every workspace; an admin key of any other workspace sees its own only.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from admin_ui.state import gateway_of, starting
from gateway.auth import MASTER_KEY_INFO
from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from telemetry.schema import DEFAULT_WORKSPACE_ID

ADMIN_ROLE = "master"
_STATE_KEY = "steerway_admin_key"


def admin_required() -> GatewayError:
    return GatewayError(
        403,
        "This API needs an admin key: the master key or a key with the master role.",
        type="permission_error",
        code="admin_key_required",
    )


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: 401 without a valid key, 403 for a key that is not an admin's."""
    proxy = gateway_of(connection).proxy
    if proxy is None:
        raise starting()
    key = await proxy.authenticator.authenticate(connection.headers.get("authorization"))
    if key.role != ADMIN_ROLE:
        raise admin_required()
    connection.state[_STATE_KEY] = key


def admin_key(connection: ASGIConnection[Any, Any, Any, Any]) -> KeyInfo:
    """The key `require_admin` accepted for this request."""
    key: KeyInfo = connection.state[_STATE_KEY]
    return key


def provide_author(request: Request[Any, Any, Any]) -> str:
    """Dependency `author`: how changes made with this request's key are signed."""
    key = admin_key(request)
    return "master" if key.key_id == MASTER_KEY_INFO.key_id else key.name


def global_admin(key: KeyInfo) -> bool:
    """The operator: the master key, or an admin key of the default workspace. Every other
    admin key is its own workspace's admin only."""
    return key.key_id == MASTER_KEY_INFO.key_id or (
        key.role == ADMIN_ROLE and key.workspace_id == DEFAULT_WORKSPACE_ID
    )


def workspace_scope(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The one workspace this request's admin may see, or None for every workspace."""
    key = admin_key(connection)
    return None if global_admin(key) else key.workspace_id


def operator_required() -> GatewayError:
    return GatewayError(
        403,
        "This needs the master key or an admin key of the default workspace; a workspace's "
        "admin key manages only its own workspace's keys.",
        type="permission_error",
        code="operator_key_required",
    )


async def require_global_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard, after `require_admin`: 403 for an admin key scoped to one workspace."""
    if not global_admin(admin_key(connection)):
        raise operator_required()
