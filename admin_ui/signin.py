"""Signing in and out of the console, creating the first owner, setting a password from a link.

`/admin/signin` (GET shows the form, POST signs in), `/admin/signout` (POST, with the session's
CSRF token), `/admin/setup` (the first owner, from the link `steerway serve` prints or with the
master key while there is no user), `/admin/reset` (a one-time password link). Plain HTML forms:
no JavaScript is needed. A POST with a JSON body gets a JSON answer instead of a page (for
scripts and tests).

A failed sign-in says "Wrong email or password" whatever failed (no such account, a disabled
one, a wrong password) and takes as long either way; failures are counted per account and per
address (see `admin_ui.throttle`), and past the limit the form answers 429 with `Retry-After`.
After signing in, the browser goes to `next` when that is a path on this site, else to /admin/.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

from litestar import MediaType, Request, Response, Router, get, post
from litestar.response import Redirect

from admin_ui.auth import global_admin
from admin_ui.console_auth import (
    SESSION_COOKIE,
    access_of,
    check_csrf,
    check_origin,
    client_address,
    is_https,
    safe_next,
    session_cookie,
    session_cookie_cleared,
    session_principal,
)
from admin_ui.passwords import (
    MIN_PASSWORD_LENGTH,
    check_password,
    hash_password_async,
    needs_rehash,
    verify_password_async,
)
from admin_ui.serialise import iso_time
from admin_ui.signin_links import (
    FIRST_OWNER,
    RESET,
    SetupClosed,
    create_first_owner,
    peek,
    use_password_link,
)
from admin_ui.signin_templates import SECURITY_HEADERS, render
from admin_ui.state import gateway_of
from admin_ui.users import User, parse_email
from gateway.entry.json_body import decode_json_body
from gateway.errors import GatewayError, error_body
from gateway.keys.limits import InvalidField
from gateway.keys.store import parse_name

AnyRequest = Request[Any, Any, Any]

HOME: Final = "/admin/"
WRONG: Final = "Wrong email or password."
SETUP_ACCOUNT: Final = "(first owner setup)"
"""The throttle's account for master-key attempts on the setup page."""
MAX_FIELD: Final = 4096


# --- reading forms --------------------------------------------------------------------------


def _wants_json(request: AnyRequest) -> bool:
    return request.headers.get("content-type", "").lower().startswith("application/json")


async def _fields(request: AnyRequest) -> dict[str, str]:
    """The posted fields (form or JSON object) as short strings; anything else is dropped."""
    if _wants_json(request):
        try:
            body = decode_json_body(await request.body())
        except GatewayError:
            body = None
        items: Iterable[tuple[Any, Any]] = body.items() if isinstance(body, dict) else ()
    else:
        items = (await request.form()).items()
    return {
        str(name): value
        for name, value in items
        if isinstance(value, str) and len(value) <= MAX_FIELD
    }


def _retry_text(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    if seconds < 90:
        return f"{math.ceil(seconds)} seconds"
    return f"{minutes} minutes"


def _answer(
    request: AnyRequest,
    template: str,
    *,
    status: int,
    error: str,
    code: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response[Any]:
    """A refusal: the form again with the message, or the API's error shape for JSON."""
    if _wants_json(request):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return Response(
            error_body(error, kind, code, param),
            status_code=status,
            media_type=MediaType.JSON,
            headers={**SECURITY_HEADERS, **(headers or {})},
        )
    return render(template, status=status, headers=dict(headers or {}), error=error, **context)


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.user_id,
        "email": user.email,
        "name": user.display_name,
        "operator": user.is_operator,
        "workspaces": [
            {"workspace_id": m.workspace_id, "slug": m.slug, "role": m.role}
            for m in user.memberships
        ],
    }


async def _signed_in(request: AnyRequest, user: User, target: str) -> Response[Any]:
    """Start a session for `user`: the cookie, then `target` (or JSON with the CSRF token)."""
    console = access_of(request)
    config = console.config
    token, session = await console.sessions.create(
        user.user_id,
        address=client_address(request, config),
        user_agent=request.headers.get("user-agent"),
    )
    cookie = session_cookie(
        token,
        secure=is_https(request, config),
        max_age=int(config.session_max_hours * 3600),
    )
    if _wants_json(request):
        return Response(
            {
                "object": "session",
                "user": user_json(user),
                "csrf_token": session.csrf_token,
                "expires_at": iso_time(session.expires_at),
            },
            status_code=200,
            cookies=[cookie],
            headers=SECURITY_HEADERS,
        )
    return Redirect(target, status_code=303, cookies=[cookie], headers=SECURITY_HEADERS)


# --- sign in and out ------------------------------------------------------------------------


@get("/signin", include_in_schema=False)
async def signin_form(request: AnyRequest) -> Response[Any]:
    target = safe_next(request.query_params.get("next"))
    if await session_principal(request) is not None:
        return Redirect(target, status_code=303, headers=SECURITY_HEADERS)
    return render("signin.html", next=target, email="", error=None)


@post("/signin", include_in_schema=False, status_code=303)
async def signin(request: AnyRequest) -> Response[Any]:
    console = access_of(request)
    check_origin(request, console.config)
    fields = await _fields(request)
    email = fields.get("email", "").strip()
    password = fields.get("password", "")
    target = safe_next(fields.get("next"))
    context: dict[str, Any] = {"next": target, "email": email[:320]}
    address = client_address(request, console.config)
    wait = await console.throttle.retry_after(email, address)
    if wait is not None:
        return _answer(
            request,
            "signin.html",
            status=429,
            error=f"Too many failed sign-ins. Try again in {_retry_text(wait)}.",
            code="too_many_signin_attempts",
            headers={"retry-after": str(math.ceil(wait))},
            **context,
        )
    user, stored = await console.users.credentials(email)
    matched = await verify_password_async(stored, password)
    if user is None or user.disabled or not matched or stored is None:
        await console.throttle.failed(email, address)
        return _answer(
            request, "signin.html", status=401, error=WRONG, code="wrong_credentials", **context
        )
    await console.throttle.succeeded(email)
    rehashed = await hash_password_async(password) if needs_rehash(stored) else None
    await console.users.signed_in(user.user_id, rehashed)
    return await _signed_in(request, await console.users.get(user.user_id) or user, target)


@post("/signout", include_in_schema=False, status_code=303)
async def signout(request: AnyRequest) -> Response[Any]:
    """Ends the session (with its CSRF token); without a live session, only the cookie goes."""
    console = access_of(request)
    found = await session_principal(request)
    token = request.cookies.get(SESSION_COOKIE)
    if found is not None and token:
        check_origin(request, console.config)
        assert found.csrf_token is not None
        await check_csrf(request, found.csrf_token)
        await console.sessions.delete(token)
    cleared = session_cookie_cleared(secure=is_https(request, console.config))
    return Redirect("/admin/signin", status_code=303, cookies=[cleared], headers=SECURITY_HEADERS)


# --- the first owner ------------------------------------------------------------------------


def _setup_context(**extra: Any) -> dict[str, Any]:
    return {
        "closed": False,
        "token": None,
        "email": "",
        "name": "",
        "min_length": MIN_PASSWORD_LENGTH,
        **extra,
    }


@get("/setup", include_in_schema=False)
async def setup_form(request: AnyRequest) -> Response[Any]:
    console = access_of(request)
    if await console.users.count():
        return render("setup.html", status=410, **_setup_context(closed=True))
    token = request.query_params.get("token")
    link = await peek(console.engine, token, FIRST_OWNER)
    error = None
    if token and link is None:
        error = "This link has expired, was used, or a later start printed a newer one."
    return render("setup.html", error=error, **_setup_context(token=token if link else None))


def _new_account(fields: dict[str, str]) -> tuple[str, str, str]:
    """Email, name and password from a form; `InvalidField` for the first problem."""
    email = parse_email(fields.get("email", ""), "email")
    name = parse_name(fields.get("name") or email.split("@", 1)[0], "name")
    password = check_password(fields.get("password", ""), "password", email)
    if fields.get("password_confirm", password) != password:
        raise InvalidField("password_confirm", "the two passwords differ")
    return email, name, password


@post("/setup", include_in_schema=False, status_code=303)
async def setup(request: AnyRequest) -> Response[Any]:
    console = access_of(request)
    check_origin(request, console.config)
    fields = await _fields(request)
    token = fields.get("token") or None
    context = _setup_context(
        token=token, email=fields.get("email", "")[:320], name=fields.get("name", "")[:200]
    )
    if await console.users.count():
        return _answer(
            request,
            "setup.html",
            status=410,
            error="Steerway already has users; sign in instead.",
            code="setup_closed",
            **{**context, "closed": True},
        )
    try:
        email, name, password = _new_account(fields)
    except InvalidField as error:
        return _answer(
            request,
            "setup.html",
            status=400,
            error=f"{error.param}: {error.problem}.",
            code="invalid_value",
            param=error.param,
            **context,
        )
    address = client_address(request, console.config)
    if token is None:
        refusal = await _check_master_key(
            request, fields.get("master_key", ""), address, {**context, "token": None}
        )
        if refusal is not None:
            return refusal
    try:
        user = await create_first_owner(
            console.engine,
            token=token,
            email=email,
            name=name,
            password_hash=await hash_password_async(password),
            address=address,
        )
    except SetupClosed:
        return _answer(
            request,
            "setup.html",
            status=403,
            error="This link has expired, was used, or a later start printed a newer one. "
            "Use the newest link, or the master key.",
            code="setup_link_invalid",
            **{**context, "token": None},
        )
    return await _signed_in(request, user, HOME)


async def _check_master_key(
    request: AnyRequest, master_key: str, address: str, context: dict[str, Any]
) -> Response[Any] | None:
    """None when `master_key` is an operator's key; else the refusal (counted as a failed
    sign-in of the setup page, so it cannot be guessed at speed)."""
    console = access_of(request)
    wait = await console.throttle.retry_after(SETUP_ACCOUNT, address)
    if wait is not None:
        return _answer(
            request,
            "setup.html",
            status=429,
            error=f"Too many wrong master keys. Try again in {_retry_text(wait)}.",
            code="too_many_signin_attempts",
            headers={"retry-after": str(math.ceil(wait))},
            **context,
        )
    proxy = gateway_of(request).proxy
    accepted = False
    if proxy is not None and master_key:
        try:
            key = await proxy.authenticator.authenticate(f"Bearer {master_key}")
            accepted = global_admin(key)
        except GatewayError as error:
            if error.status != 401:
                raise
    if accepted:
        return None
    await console.throttle.failed(SETUP_ACCOUNT, address)
    return _answer(
        request,
        "setup.html",
        status=403,
        error="That is not the master key.",
        code="invalid_master_key",
        param="master_key",
        **context,
    )


# --- password links -------------------------------------------------------------------------


def _password_context(**extra: Any) -> dict[str, Any]:
    return {"token": None, "email": "", "min_length": MIN_PASSWORD_LENGTH, **extra}


@get("/reset", include_in_schema=False)
async def reset_form(request: AnyRequest) -> Response[Any]:
    console = access_of(request)
    token = request.query_params.get("token")
    link = await peek(console.engine, token, RESET)
    user = await console.users.get(link.user_id) if link and link.user_id else None
    if user is None or user.disabled:
        return render("password.html", status=410, **_password_context())
    return render("password.html", **_password_context(token=token, email=user.email))


@post("/reset", include_in_schema=False, status_code=303)
async def reset(request: AnyRequest) -> Response[Any]:
    console = access_of(request)
    check_origin(request, console.config)
    fields = await _fields(request)
    token = fields.get("token", "")
    link = await peek(console.engine, token, RESET)
    user = await console.users.get(link.user_id) if link and link.user_id else None
    if user is None or user.disabled:
        return _answer(
            request,
            "password.html",
            status=410,
            error="This link has expired or was used already.",
            code="password_link_invalid",
            **_password_context(),
        )
    context = _password_context(token=token, email=user.email)
    password = fields.get("password", "")
    try:
        check_password(password, "password", user.email)
        if fields.get("password_confirm", password) != password:
            raise InvalidField("password_confirm", "the two passwords differ")
    except InvalidField as error:
        return _answer(
            request,
            "password.html",
            status=400,
            error=f"{error.param}: {error.problem}.",
            code="invalid_value",
            param=error.param,
            **context,
        )
    address = client_address(request, console.config)
    changed = await use_password_link(
        console.engine, token, await hash_password_async(password), address=address
    )
    if changed is None:
        return _answer(
            request,
            "password.html",
            status=410,
            error="This link has expired or was used already.",
            code="password_link_invalid",
            **_password_context(),
        )
    return await _signed_in(request, changed, HOME)


def signin_router() -> Router:
    """The pages that work without a session, under /admin."""
    return Router(
        path="/admin",
        route_handlers=[signin_form, signin, signout, setup_form, setup, reset_form, reset],
    )


def sign_in_redirect(_: AnyRequest, error: Exception) -> Response[Any]:
    """The answer to `SignInRequired` on a page: off to the sign-in form."""
    location = getattr(error, "location", "/admin/signin")
    return Redirect(location, status_code=303, headers={"cache-control": "no-store"})
