"""Access to the console's pages and the admin API: a console session or a bearer admin key.

`require_console_user` is the guard. A request with an `Authorization` header is judged by its
key exactly as `admin_ui.auth.require_admin` judges it (a browser never adds that header by
itself, so such a request needs no CSRF token). Otherwise the `steerway_session` cookie must
name a live session of an enabled user whose password has not changed since it began; a user
who is not an operator must have a role in at least one workspace.

Every state-changing request made with a session (any method but GET, HEAD and OPTIONS) must
carry the session's CSRF token, as the form field `csrf_token` or the header `X-CSRF-Token`,
and, when the browser says where it comes from (`Origin`, `Sec-Fetch-Site`), come from the
console's own origin or one of `console.allowed_origins`. Refusals are 403 in the API's shape.

Without a session, a page request is redirected to the sign-in page (`SignInRequired`, which
the application turns into a 303) and an API request is answered 401.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler

from admin_ui.auth import admin_key_principal, operator_required
from admin_ui.principals import STATE_KEY, Principal, principal, user_principal
from admin_ui.state import gateway_of, starting
from gateway.errors import GatewayError, missing_key

if TYPE_CHECKING:
    from admin_ui.console_access import ConsoleAccess
    from admin_ui.users import User
    from gateway.config.console import ConsoleConfig

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Principal",
    "SignInRequired",
    "access_of",
    "check_csrf",
    "check_origin",
    "client_address",
    "is_https",
    "permission_denied",
    "principal",
    "require_console_user",
    "require_permission",
    "safe_next",
    "session_cookie",
    "session_cookie_cleared",
]

SESSION_COOKIE: Final = "steerway_session"
COOKIE_PATH: Final = "/admin"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
SIGNIN_PATH: Final = "/admin/signin"
API_PREFIX: Final = "/admin/api"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_SAME_ORIGIN_FETCH: Final = frozenset({"same-origin", "none"})

AnyConnection = ASGIConnection[Any, Any, Any, Any]


class SignInRequired(GatewayError):
    """A page asked for without a live session: answered with a redirect to the sign-in page
    (`location`), or as a 401 wherever no such answer is set up."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(401, message, code="sign_in_required")
        self.location = location


def access_of(connection: AnyConnection) -> ConsoleAccess:
    """The worker's sign-in parts: users, sessions, throttling, settings."""
    access = gateway_of(connection).console_access
    if access is None:
        raise starting()
    return access


# --- the request's origin and address -------------------------------------------------------


def _forwarded(connection: AnyConnection, name: str, config: ConsoleConfig) -> str | None:
    if not config.trust_forwarded_headers:
        return None
    value = connection.headers.get(name)
    return value.strip() if value else None


def is_https(connection: AnyConnection, config: ConsoleConfig) -> bool:
    proto = _forwarded(connection, "x-forwarded-proto", config)
    if proto:
        return proto.split(",")[0].strip().lower() == "https"
    return connection.scope.get("scheme") == "https"


def own_origin(connection: AnyConnection, config: ConsoleConfig) -> str:
    host = _forwarded(connection, "x-forwarded-host", config) or connection.headers.get("host")
    scheme = "https" if is_https(connection, config) else "http"
    return f"{scheme}://{(host or '').split(',')[0].strip()}".lower()


def client_address(connection: AnyConnection, config: ConsoleConfig) -> str:
    """The client's address: the last hop a trusted proxy saw, or the peer's."""
    forwarded = _forwarded(connection, "x-forwarded-for", config)
    if forwarded:
        return forwarded.split(",")[-1].strip()[:64]
    client = connection.client
    return client.host if client is not None else "unknown"


def cross_site() -> GatewayError:
    return GatewayError(
        403,
        "This change came from another site and was refused. Make it from the console itself "
        "(behind a proxy, see console.trust_forwarded_headers and console.allowed_origins).",
        type="permission_error",
        code="cross_site_request",
    )


def check_origin(connection: AnyConnection, config: ConsoleConfig) -> None:
    """403 when the browser says the request comes from a foreign origin."""
    origin = connection.headers.get("origin")
    if origin is not None:
        origin = origin.strip().lower()
        if origin != own_origin(connection, config) and origin not in config.allowed_origins:
            raise cross_site()
        return
    fetch_site = connection.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in _SAME_ORIGIN_FETCH:
        raise cross_site()


def csrf_refused() -> GatewayError:
    return GatewayError(
        403,
        "This change needs the console's CSRF token (the form field 'csrf_token' or the "
        "header 'X-CSRF-Token'); reload the page and try again.",
        type="permission_error",
        code="csrf_token_invalid",
    )


async def check_csrf(connection: AnyConnection, expected: str) -> None:
    sent = connection.headers.get(CSRF_HEADER)
    if sent is None and isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "").lower()
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await connection.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise csrf_refused()


# --- cookies and redirects ------------------------------------------------------------------


def session_cookie(token: str, *, secure: bool, max_age: int) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def session_cookie_cleared(*, secure: bool) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value="",
        path=COOKIE_PATH,
        max_age=0,
        expires=0,
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def safe_next(value: str | None, default: str = "/admin/") -> str:
    """A path on this site to go to after signing in: never another host (`//host`,
    `https://…`, `/\\host`), never a control character; `default` otherwise."""
    if not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in value):
        return default
    return value


def _signin_location(connection: AnyConnection) -> str:
    target = connection.url.path
    if connection.url.query:
        target += "?" + connection.url.query
    return f"{SIGNIN_PATH}?next={quote(safe_next(target), safe='/')}"


def _not_signed_in(connection: AnyConnection, *, ended: bool) -> GatewayError:
    path = connection.url.path
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        if not ended:
            return missing_key()
        return GatewayError(
            401,
            "Your console session has ended; sign in again at /admin/signin.",
            code="session_expired",
        )
    message = "Your session has ended; sign in again." if ended else "Sign in to continue."
    return SignInRequired(_signin_location(connection), message)


def no_workspace() -> GatewayError:
    return GatewayError(
        403,
        "Your account has no role in any workspace yet; ask a workspace owner or an operator "
        "to add you.",
        type="permission_error",
        code="no_workspace",
    )


def session_valid_for(user: User | None, session_started: Any) -> bool:
    """A session's user may still use it: enabled, and no password change since it began."""
    if user is None or user.disabled:
        return False
    changed = user.password_changed_at
    return changed is None or session_started >= changed


# --- the guard ------------------------------------------------------------------------------


async def session_principal(connection: AnyConnection) -> Principal | None:
    """The principal of the request's session cookie, or None when it names no live session."""
    token = connection.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    console = access_of(connection)
    session = await console.sessions.find(token)
    if session is None:
        return None
    user = await console.users.get(session.user_id)
    if user is None or not session_valid_for(user, session.created_at):
        await console.sessions.delete(token)
        return None
    return user_principal(
        user,
        csrf_token=session.csrf_token,
        chosen=connection.query_params.get("workspace"),
        address=client_address(connection, console.config),
    )


async def require_console_user(connection: AnyConnection, _: BaseRouteHandler) -> None:
    """Guard: a bearer admin key, or a console session (with its CSRF token and origin on every
    change). Once per request: a router nested in another that has it too does not repeat it."""
    if STATE_KEY in connection.state:
        return
    console = access_of(connection)
    address = client_address(connection, console.config)
    if connection.headers.get("authorization"):
        connection.state[STATE_KEY] = await admin_key_principal(connection, address)
        return
    had_cookie = bool(connection.cookies.get(SESSION_COOKIE))
    found = await session_principal(connection)
    if found is None:
        raise _not_signed_in(connection, ended=had_cookie)
    if not found.is_operator and not found.roles:
        raise no_workspace()
    if connection.scope.get("method", "GET") not in SAFE_METHODS:
        check_origin(connection, console.config)
        assert found.csrf_token is not None
        await check_csrf(connection, found.csrf_token)
    connection.state[STATE_KEY] = found


# --- permissions ----------------------------------------------------------------------------

_DENIED: Final = {
    "keys.write": "Your role in this workspace cannot create, change or revoke keys.",
    "settings.write": "Your role in this workspace cannot change its settings.",
    "users.read": "Your role in this workspace cannot see its users.",
    "users.write": "Only the workspace's owners can manage its users.",
    "audit.read": "Your role in this workspace cannot read its audit log.",
    "alerts.write": "Your role in this workspace cannot change its alerts, rules or channels.",
    "reports.write": "Your role in this workspace cannot change or run its reports.",
    "evaluations.write": "Your role in this workspace cannot queue evaluations.",
    "users.operator": "Only operators can make or unmake operators.",
    "keys.operator": "Only operators can manage admin keys of the default workspace: such a "
    "key acts as an operator.",
}


def permission_denied(found: Principal, permission: str) -> GatewayError:
    """The 403 for a principal lacking `permission`: a key gets the answer it always got."""
    if found.kind == "key":
        return operator_required()
    message = _DENIED.get(permission)
    if message is None:
        message = "Only operators may do this; ask an operator."
    return GatewayError(403, message, type="permission_error", code="permission_denied")


def require_permission(
    connection: AnyConnection, permission: str, workspace_id: str | None = None
) -> Principal:
    """The request's principal, when it may `permission` in `workspace_id`; else a 403."""
    found = principal(connection)
    if not found.can(permission, workspace_id):
        raise permission_denied(found, permission)
    return found
