"""Console sessions over HTTP with settings of their own, the application served in-process on
SQLite and Postgres: idle and absolute expiry, pages that send a stranger to the sign-in form,
the CSRF token as a form field, the master key creating the first owner, and old password
hashes re-made at sign-in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from litestar import Request, get, post
from litestar.testing import TestClient

from admin_ui.console_auth import SESSION_COOKIE, principal, require_console_user
from gateway.config.console import ConsoleConfig
from gateway.config.file import GatewayConfig, TelemetryConfig
from gateway.config.settings import Settings
from server.app import create_app
from telemetry.db import create_engine
from telemetry.schema import users
from tests.admin_ui.conftest import error_of
from tests.console_users import PASSWORD, create_user

MASTER_KEY = "sk-master-sessions-test-0123456789"


@get("/admin/probe", guards=[require_console_user], sync_to_thread=False)
def probe(request: Request[Any, Any, Any]) -> str:
    """A page: who is signed in."""
    return f"signed in as {principal(request).name}"


@post("/admin/probe", guards=[require_console_user], status_code=200, sync_to_thread=False)
def probe_form(request: Request[Any, Any, Any]) -> str:
    return "changed"


@pytest.fixture
def migrated(migrated_database_url: str) -> str:
    return migrated_database_url


def serve(url: str, tmp_path: Path, **console: Any) -> TestClient[Any]:
    config = GatewayConfig(
        telemetry=TelemetryConfig(spill_dir=str(tmp_path / "spill")),
        console=ConsoleConfig(**console),
    )
    app = create_app(Settings(database_url=url, master_key=MASTER_KEY), config)
    app.register(probe)
    app.register(probe_form)
    return TestClient(app, base_url="http://127.0.0.1:8080")


@pytest.fixture
def client(migrated: str, tmp_path: Path) -> Iterator[TestClient[Any]]:
    with serve(migrated, tmp_path) as test_client:
        yield test_client


def signed_in(client: TestClient[Any], email: str, password: str = PASSWORD) -> httpx.Response:
    answer = client.post("/admin/signin", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer


def test_sessions_end_when_idle_and_at_their_absolute_expiry(migrated: str, tmp_path: Path) -> None:
    user = create_user(migrated)
    with serve(migrated, tmp_path, session_idle_minutes=0.05, session_max_hours=0.0015) as http:
        start = time.monotonic()
        idle = signed_in(http, user.email).cookies[SESSION_COOKIE]
        busy = signed_in(http, user.email).cookies[SESSION_COOKIE]
        http.cookies.clear()

        def alive(token: str) -> bool:
            answer = http.get("/admin/api/session", cookies={SESSION_COOKIE: token})
            if answer.status_code == 401:
                assert error_of(answer, 401)["code"] == "session_expired"
                return False
            assert answer.status_code == 200, answer.text
            return True

        for second in (1, 2, 3, 4):  # 3 s idle, 5.4 s at most
            time.sleep(max(0.0, start + second - time.monotonic()))
            assert alive(busy), f"ended {time.monotonic() - start:.1f} s after sign-in"
        assert not alive(idle)  # unused for 4 s
        time.sleep(max(0.0, start + 6 - time.monotonic()))
        assert not alive(busy)  # used every second, but past its absolute expiry


def test_pages_send_strangers_to_the_sign_in_form(migrated: str, client: TestClient[Any]) -> None:
    for cookies in ({}, {SESSION_COOKIE: "no-such-session"}):
        answer = client.get(
            "/admin/probe?model=gpt-4o&last=15m", cookies=cookies, follow_redirects=False
        )
        assert answer.status_code == 303
        assert (
            answer.headers["location"]
            == "/admin/signin?next=/admin/probe%3Fmodel%3Dgpt-4o%26last%3D15m"
        )
    user = create_user(migrated)
    signed = signed_in(client, user.email)
    assert client.get("/admin/probe").text == f"signed in as {user.email}"

    # A plain HTML form carries the CSRF token as a field.
    token = signed.json()["csrf_token"]
    posted = client.post("/admin/probe", data={"csrf_token": token, "other": "field"})
    assert (posted.status_code, posted.text) == (200, "changed")
    for fields in ({"other": "field"}, {"csrf_token": token[:-1]}):
        refused = client.post("/admin/probe", data=fields)
        assert refused.status_code == 403
        assert "needs the console&#39;s CSRF token" in refused.text
    multipart = client.post("/admin/probe", files={"csrf_token": (None, token)})
    assert multipart.status_code == 200


def test_the_master_key_creates_the_first_owner_once(
    migrated: str, client: TestClient[Any]
) -> None:
    form = client.get("/admin/setup")
    assert form.status_code == 200
    assert '<label for="master_key">Master key</label>' in form.text
    stale = client.get("/admin/setup?token=not-a-real-token")
    assert "This link has expired" in stale.text and 'name="master_key"' in stale.text

    fields = {
        "email": "first@example.com",
        "name": "First Owner",
        "password": "first owner password",
        "password_confirm": "first owner password",
    }
    wrong = client.post("/admin/setup", data={**fields, "master_key": MASTER_KEY + "x"})
    assert wrong.status_code == 403 and "That is not the master key." in wrong.text
    differs = client.post(
        "/admin/setup",
        data={**fields, "master_key": MASTER_KEY, "password_confirm": "another password"},
    )
    assert differs.status_code == 400 and "the two passwords differ" in differs.text
    short = client.post("/admin/setup", json={**fields, "password": "short"})
    assert error_of(short, 400)["param"] == "password"

    made = client.post(
        "/admin/setup", data={**fields, "master_key": MASTER_KEY}, follow_redirects=False
    )
    assert (made.status_code, made.headers["location"]) == (303, "/admin/")
    me = client.get("/admin/api/session").json()
    assert (me["name"], me["operator"]) == ("first@example.com", True)
    assert me["workspaces"][0]["role"] == "owner"

    client.cookies.clear()
    again = client.post("/admin/setup", data={**fields, "master_key": MASTER_KEY})
    assert again.status_code == 410 and "already has users" in again.text
    assert client.get("/admin/setup").status_code == 410


def test_signing_in_remakes_a_hash_of_older_parameters(
    migrated: str, client: TestClient[Any]
) -> None:
    user = create_user(migrated)
    old = PasswordHasher().hash(PASSWORD)  # argon2-cffi's default parameters

    async def stored(value: str | None = None) -> str:
        engine = create_engine(migrated)
        try:
            async with engine.begin() as conn:
                if value is not None:
                    await conn.execute(
                        sa.update(users)
                        .where(users.c.user_id == user.user_id)
                        .values(password_hash=value)
                    )
                query = sa.select(users.c.password_hash).where(users.c.user_id == user.user_id)
                return str((await conn.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(stored(old)) == old
    session = signed_in(client, user.email).cookies[SESSION_COOKIE]
    remade = asyncio.run(stored())
    assert remade != old and remade.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # The same password, so the session it was made in goes on, and it signs in again.
    assert client.get("/admin/api/session", cookies={SESSION_COOKIE: session}).status_code == 200
    signed_in(client, user.email)
