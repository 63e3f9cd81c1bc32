"""Console users for tests: create one in the database, sign it in over HTTP, and hand the
session to httpx or to a Playwright browser context.

    user = create_user(gateway.database.url, role="viewer", workspace="team-a")
    session = sign_in(gateway.url, user)
    with session.client() as http:             # cookie set, X-CSRF-Token sent on every request
        http.get("/admin/api/keys")
    context.add_cookies([session.browser_cookie()])   # Playwright: the browser is signed in
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from admin_ui.audit import CLI_ACTOR
from admin_ui.console_auth import SESSION_COOKIE
from admin_ui.passwords import hash_password
from admin_ui.users import UserStore
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.loopback import TLS

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class ConsoleUser:
    user_id: str
    email: str
    password: str


@dataclass(frozen=True)
class SignedIn:
    base_url: str
    token: str
    """The `steerway_session` cookie's value."""
    csrf_token: str
    user: dict[str, Any]

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client of this session: its cookie, and its CSRF token on every request."""
        kwargs.setdefault("verify", TLS)
        client = httpx.Client(
            base_url=self.base_url,
            headers={"x-csrf-token": self.csrf_token},
            timeout=30,
            **kwargs,
        )
        client.cookies.set(SESSION_COOKIE, self.token, domain=_host(self.base_url), path="/admin")
        return client

    def browser_cookie(self) -> dict[str, Any]:
        """The session cookie for Playwright's `BrowserContext.add_cookies`."""
        return {
            "name": SESSION_COOKIE,
            "value": self.token,
            "domain": _host(self.base_url),
            "path": "/admin",
            "httpOnly": True,
            "sameSite": "Lax",
        }


def _host(url: str) -> str:
    return httpx.URL(url).host


def create_user(
    database_url: str,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    role: str | None = "owner",
    workspace: str = DEFAULT_WORKSPACE_ID,
    operator: bool = False,
    name: str | None = None,
) -> ConsoleUser:
    """A user stored as `steerway users create` stores one: `role` in `workspace` (id or
    slug; no role with None), an operator with `operator`."""
    email = email or f"user-{secrets.token_hex(4)}@example.com"

    async def create() -> str:
        engine = create_engine(database_url)
        try:
            user = await UserStore(engine).create(
                email=email,
                name=name or email.split("@")[0],
                password_hash=hash_password(password),
                is_operator=operator,
                roles={} if role is None else {workspace: role},
                actor=CLI_ACTOR,
            )
        finally:
            await engine.dispose()
        return user.user_id

    return ConsoleUser(asyncio.run(create()), email, password)


def sign_in(base_url: str, user: ConsoleUser, **headers: str) -> SignedIn:
    """Sign `user` in through `POST /admin/signin` (JSON); fails the test if refused."""
    response = httpx.post(
        f"{base_url}/admin/signin",
        json={"email": user.email, "password": user.password},
        headers=headers,
        timeout=30,
        verify=TLS,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return SignedIn(
        base_url=base_url,
        token=response.cookies[SESSION_COOKIE],
        csrf_token=body["csrf_token"],
        user=body["user"],
    )
