"""Signing in to the console over HTTP, against a running gateway on SQLite (sessions in the
database) and Postgres (sessions and throttling in Redis): plain HTML forms, failures that tell
nothing, throttling and recovery, CSRF and origin checks, sign-out, and the users CLI."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from admin_ui.console_auth import SESSION_COOKIE
from tests.admin_ui.conftest import error_of
from tests.admin_ui.console_fixtures import (
    PER_ACCOUNT,
    PER_ADDRESS,
    WINDOW_SECONDS,
    address,
    console_gateway,
)
from tests.cli_in_process import run_cli
from tests.console_users import PASSWORD, ConsoleUser, SignedIn, create_user, sign_in
from tests.e2e.conftest import GatewayProcess, backend_database, mock_provider

__all__ = ["backend_database", "console_gateway", "mock_provider"]

WRONG = "Wrong email or password."


def post_form(gateway: GatewayProcess, path: str, data: dict[str, str], **headers: str) -> Any:
    return httpx.post(f"{gateway.url}{path}", data=data, headers=headers, timeout=30)


def message_region(page: str) -> str:
    found = re.search(r'<div id="form-message".*?</div>', page, re.S)
    assert found is not None, page
    return found.group(0)


def set_cookie_of(response: httpx.Response) -> str:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return header


# --- signing in ---------------------------------------------------------------------------------


def test_the_sign_in_form_is_plain_accessible_html(console_gateway: GatewayProcess) -> None:
    page = httpx.get(f"{console_gateway.url}/admin/signin?next=/admin/traces")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert '<form method="post" action="/admin/signin"' in html
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert re.search(r'<input id="email"[^>]*autofocus', html)
    assert 'role="alert"' in html
    assert '<input type="hidden" name="next" value="/admin/traces">' in html
    assert "<script" not in html


def test_signing_in_sets_a_strict_session_cookie_and_goes_to_a_local_next(
    console_gateway: GatewayProcess,
) -> None:
    user = create_user(console_gateway.database.url)
    for next_path, expected in (
        ("/admin/traces?model=gpt-4o&last=15m", "/admin/traces?model=gpt-4o&last=15m"),
        ("//evil.example/admin", "/admin/"),
        ("https://evil.example/", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("", "/admin/"),
    ):
        response = post_form(
            console_gateway,
            "/admin/signin",
            {"email": user.email.upper(), "password": PASSWORD, "next": next_path},
            **address(),
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == expected
    cookie = set_cookie_of(response)
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/admin", "samesite=lax"} <= attributes
    assert "secure" not in attributes  # plain HTTP
    assert any(part.startswith("max-age=") for part in attributes)

    # Behind a TLS proxy the gateway trusts, the cookie is Secure.
    behind_tls = post_form(
        console_gateway,
        "/admin/signin",
        {"email": user.email, "password": PASSWORD},
        **address(),
        **{"x-forwarded-proto": "https"},
    )
    assert "secure" in {p.strip().lower() for p in set_cookie_of(behind_tls).split(";")}

    token = response.cookies[SESSION_COOKIE]
    with httpx.Client(base_url=console_gateway.url) as browser:
        browser.cookies.set(SESSION_COOKIE, token, domain="127.0.0.1", path="/admin")
        again = browser.get("/admin/signin?next=/admin/keys")
        assert (again.status_code, again.headers["location"]) == (303, "/admin/keys")
        me = browser.get("/admin/api/session").json()
        assert (me["kind"], me["name"], me["operator"]) == ("user", user.email, False)
    (row,) = console_gateway.database.rows(
        "SELECT last_sign_in_at FROM users WHERE user_id = :u", u=user.user_id
    )
    assert row["last_sign_in_at"] is not None


def test_a_failed_sign_in_never_says_whether_the_account_exists(
    console_gateway: GatewayProcess,
) -> None:
    user = create_user(console_gateway.database.url)
    disabled = create_user(console_gateway.database.url)
    with httpx.Client(base_url=console_gateway.url) as http:
        token = sign_in(console_gateway.url, disabled, **address()).token
        session = http.get("/admin/api/session", cookies={SESSION_COOKIE: token})
        assert session.status_code == 200
    master = console_gateway.http()
    master.patch(f"/admin/api/users/{disabled.user_id}", json={"disabled": True}).raise_for_status()

    answers = [
        post_form(console_gateway, "/admin/signin", fields, **address())
        for fields in (
            {"email": user.email, "password": PASSWORD + "!"},
            {"email": "nobody-" + user.email, "password": PASSWORD},
            {"email": disabled.email, "password": PASSWORD},
            {"email": "not an email", "password": PASSWORD},
            {"email": "", "password": ""},
        )
    ]
    assert [answer.status_code for answer in answers] == [401] * 5
    regions = {message_region(answer.text) for answer in answers}
    assert regions == {
        '<div id="form-message" class="signin-message" role="alert" aria-live="assertive">'
        f'<p class="signin-error">{WRONG}</p></div>'
    }
    assert all(SESSION_COOKIE not in answer.cookies for answer in answers)
    # The disabled user's session ended with the account.
    ended = httpx.get(f"{console_gateway.url}/admin/api/session", cookies={SESSION_COOKIE: token})
    assert error_of(ended, 401)["code"] == "session_expired"

    as_json = httpx.post(
        f"{console_gateway.url}/admin/signin",
        json={"email": user.email, "password": "nope"},
        headers=address(),
    )
    assert error_of(as_json, 401) == {
        "message": WRONG,
        "type": "invalid_request_error",
        "param": None,
        "code": "wrong_credentials",
    }


def test_failed_sign_ins_are_throttled_per_account_then_let_through(
    console_gateway: GatewayProcess,
) -> None:
    user = create_user(console_gateway.database.url)
    for _ in range(PER_ACCOUNT):
        wrong = post_form(
            console_gateway, "/admin/signin", {"email": user.email, "password": "x"}, **address()
        )
        assert wrong.status_code == 401
    # From anywhere, even with the right password, the account now waits.
    throttled = post_form(
        console_gateway,
        "/admin/signin",
        {"email": user.email, "password": PASSWORD},
        **address(),
    )
    assert throttled.status_code == 429
    wait = int(throttled.headers["retry-after"])
    assert 1 <= wait <= WINDOW_SECONDS + 1
    assert "Too many failed sign-ins. Try again in" in message_region(throttled.text)
    assert SESSION_COOKIE not in throttled.cookies
    as_json = httpx.post(
        f"{console_gateway.url}/admin/signin",
        json={"email": user.email.upper(), "password": PASSWORD},
        headers=address(),
    )
    assert error_of(as_json, 429)["code"] == "too_many_signin_attempts"
    # An account that does not exist is throttled the same way.
    for _ in range(PER_ACCOUNT):
        post_form(
            console_gateway,
            "/admin/signin",
            {"email": "ghost@example.com", "password": "x"},
            **address(),
        )
    ghost = post_form(
        console_gateway,
        "/admin/signin",
        {"email": "ghost@example.com", "password": "x"},
        **address(),
    )
    assert ghost.status_code == 429

    time.sleep(wait + 0.2)
    recovered = post_form(
        console_gateway,
        "/admin/signin",
        {"email": user.email, "password": PASSWORD},
        **address(),
    )
    assert recovered.status_code == 303
    # A success starts the account's count afresh.
    for _ in range(PER_ACCOUNT - 1):
        post_form(
            console_gateway, "/admin/signin", {"email": user.email, "password": "x"}, **address()
        )
    assert sign_in(console_gateway.url, user, **address()).token


def test_failed_sign_ins_are_throttled_per_address(console_gateway: GatewayProcess) -> None:
    user = create_user(console_gateway.database.url)
    one_place = address()
    for n in range(PER_ADDRESS):
        refused = post_form(
            console_gateway,
            "/admin/signin",
            {"email": f"guess-{n}@example.com", "password": "x"},
            **one_place,
        )
        assert refused.status_code == 401
    blocked = post_form(
        console_gateway,
        "/admin/signin",
        {"email": user.email, "password": PASSWORD},
        **one_place,
    )
    assert blocked.status_code == 429
    elsewhere = post_form(
        console_gateway, "/admin/signin", {"email": user.email, "password": PASSWORD}, **address()
    )
    assert elsewhere.status_code == 303


# --- CSRF, origins and signing out --------------------------------------------------------------


def test_changes_need_the_csrf_token_and_the_consoles_origin(
    console_gateway: GatewayProcess,
) -> None:
    user = create_user(console_gateway.database.url, role="admin")
    session = sign_in(console_gateway.url, user, **address())
    with session.client() as http:
        bare = httpx.Client(base_url=console_gateway.url)
        bare.cookies.set(SESSION_COOKIE, session.token, domain="127.0.0.1", path="/admin")
        assert bare.get("/admin/api/keys").status_code == 200  # reading needs no token
        for headers in ({}, {"x-csrf-token": "not-the-token"}, {"x-csrf-token": ""}):
            refused = bare.post("/admin/api/keys", json={"name": "no token"}, headers=headers)
            assert error_of(refused, 403)["code"] == "csrf_token_invalid"
        # Only the form field or the header counts: a JSON field of that name does not.
        in_body = bare.post("/admin/api/keys", json={"name": "x", "csrf_token": session.csrf_token})
        assert error_of(in_body, 403)["code"] == "csrf_token_invalid"

        for headers in (
            {"origin": "http://evil.example"},
            {"origin": "null"},
            {"origin": console_gateway.url.replace("127.0.0.1", "localhost")},
            {"sec-fetch-site": "cross-site"},
            {"sec-fetch-site": "same-site"},
        ):
            refused = http.post("/admin/api/keys", json={"name": "foreign"}, headers=headers)
            assert error_of(refused, 403)["code"] == "cross_site_request"
        for headers in (
            {},
            {"origin": console_gateway.url},
            {"sec-fetch-site": "same-origin"},
            {"origin": console_gateway.url, "sec-fetch-site": "same-origin"},
        ):
            made = http.post("/admin/api/keys", json={"name": "from the console"}, headers=headers)
            assert made.status_code == 201, made.text
        names = [key["name"] for key in http.get("/admin/api/keys").json()["data"]]
        assert "no token" not in names and "foreign" not in names and "x" not in names
        bare.close()

    # A bearer key needs no CSRF token: no cookie is involved.
    with console_gateway.http() as master:
        assert master.post("/admin/api/keys", json={"name": "by key"}).status_code == 201


def test_signing_out_needs_the_token_and_ends_the_session(
    console_gateway: GatewayProcess,
) -> None:
    user = create_user(console_gateway.database.url)
    session = sign_in(console_gateway.url, user, **address())
    other = sign_in(console_gateway.url, user, **address())
    cookies = {SESSION_COOKIE: session.token}
    refused = httpx.post(f"{console_gateway.url}/admin/signout", cookies=cookies)
    assert refused.status_code == 403  # a page, as the browser posting the form would see
    assert "needs the console&#39;s CSRF token" in refused.text
    assert httpx.get(f"{console_gateway.url}/admin/api/session", cookies=cookies).status_code == 200

    out = httpx.post(
        f"{console_gateway.url}/admin/signout",
        data={"csrf_token": session.csrf_token},
        cookies=cookies,
    )
    assert (out.status_code, out.headers["location"]) == (303, "/admin/signin")
    cleared = set_cookie_of(out)
    assert cleared.startswith(f'{SESSION_COOKIE}="";') and "Max-Age=0" in cleared
    ended = httpx.get(f"{console_gateway.url}/admin/api/session", cookies=cookies)
    assert error_of(ended, 401)["code"] == "session_expired"
    # The user's other session goes on.
    with other.client() as http:
        assert http.get("/admin/api/session").status_code == 200
    # Signing out without a session only clears the cookie.
    again = httpx.post(f"{console_gateway.url}/admin/signout", cookies=cookies)
    assert again.status_code == 303


# --- the users command --------------------------------------------------------------------------


def steerway(gateway: GatewayProcess, *args: str, stdin: str | None = None) -> Any:
    env = {"STEERWAY_DATABASE_URL": gateway.database.url, "STEERWAY_CONFIG": None}
    return run_cli(*args, env=env, stdin=stdin)


def test_the_users_command_creates_lists_disables_and_resets(
    console_gateway: GatewayProcess,
) -> None:
    with console_gateway.http() as master:
        team = master.post("/admin/api/workspaces", json={"slug": f"cli-{time.time_ns()}"}).json()
    email = f"cli-{time.time_ns()}@example.com"
    created = steerway(
        console_gateway,
        "users", "create", "--email", email, "--name", "Cli User",
        "--role", "admin", "--workspace", team["slug"], "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert re.match(
        rf"Created user [0-9a-f]{{32}} {email} \(admin of {team['slug']}\)\.", created.stdout
    )
    assert PASSWORD not in created.stdout + created.stderr
    user_id = created.stdout.split()[2]
    session = sign_in(console_gateway.url, _user(user_id, email), **address())
    assert session.user["workspaces"] == [
        {"workspace_id": team["id"], "slug": team["slug"], "role": "admin"}
    ]

    listed = steerway(console_gateway, "users", "list", "--workspace", team["slug"])
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if email in row]
    assert line.split()[:3] == [user_id, email, "active"]

    for args, stdin, problem in (
        (("users", "create", "--email", "x@example.com", "--password-stdin"), PASSWORD, "--role"),
        (("users", "create", "--email", "x@example.com", "--operator", "--password-stdin"),
         "short\n", "password: at least 10 characters"),
        (("users", "create", "--email", "x@example.com", "--operator"), None, "--password-stdin"),
    ):  # fmt: skip
        failed = steerway(console_gateway, *args, stdin=stdin)
        assert failed.returncode == 1, failed.stdout
        assert failed.stderr.startswith("steerway: ") and problem in failed.stderr
        assert "Traceback" not in failed.stderr

    disabled = steerway(console_gateway, "users", "disable", email.upper())
    assert disabled.returncode == 0, disabled.stderr
    ended = httpx.get(
        f"{console_gateway.url}/admin/api/session", cookies={SESSION_COOKIE: session.token}
    )
    assert error_of(ended, 401)["code"] == "session_expired"
    refused = post_form(
        console_gateway, "/admin/signin", {"email": email, "password": PASSWORD}, **address()
    )
    assert refused.status_code == 401
    assert steerway(console_gateway, "users", "enable", user_id).returncode == 0

    session = sign_in(console_gateway.url, _user(user_id, email), **address())
    linked = steerway(console_gateway, "users", "reset-password", email, "--link", "--url",
                      console_gateway.url)  # fmt: skip
    assert linked.returncode == 0, linked.stderr
    url = re.search(r"(http://\S+/admin/reset\?token=\S+)", linked.stdout)
    assert url is not None
    form = httpx.get(url.group(1))
    assert form.status_code == 200 and email in form.text
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token is not None
    new_password = "a brand new password"
    changed = post_form(
        console_gateway,
        "/admin/reset",
        {"token": token.group(1), "password": new_password, "password_confirm": new_password},
    )
    assert changed.status_code == 303 and SESSION_COOKIE in changed.cookies
    ended = httpx.get(
        f"{console_gateway.url}/admin/api/session", cookies={SESSION_COOKIE: session.token}
    )
    assert error_of(ended, 401)["code"] == "session_expired"  # sessions before it ended
    assert httpx.get(url.group(1)).status_code == 410  # the link worked once

    stdin_reset = steerway(
        console_gateway, "users", "reset-password", user_id, "--password-stdin",
        stdin=PASSWORD + "\r\n",
    )  # fmt: skip
    assert stdin_reset.returncode == 0, stdin_reset.stderr
    assert sign_in(console_gateway.url, _user(user_id, email), **address()).token

    actions = console_gateway.database.rows(
        "SELECT action, actor, actor_kind FROM audit_log WHERE target_id = :u ORDER BY audit_id",
        u=user_id,
    )
    assert [(row["action"], row["actor"]) for row in actions] == [
        ("user.create", "cli"),
        ("user.disable", "cli"),
        ("user.enable", "cli"),
        ("user.password_link", "cli"),
        ("user.password_change", email),
        ("user.password_change", "cli"),
    ]


def _user(user_id: str, email: str, password: str = PASSWORD) -> ConsoleUser:
    return ConsoleUser(user_id, email, password)


def test_a_session_signs_in_a_client_for_the_api(console_gateway: GatewayProcess) -> None:
    """The helper other tests use: a user, signed in, with a client that sends the token."""
    user = create_user(console_gateway.database.url, role="viewer")
    session: SignedIn = sign_in(console_gateway.url, user, **address())
    assert session.browser_cookie()["name"] == SESSION_COOKIE
    with session.client() as http:
        assert http.get("/admin/api/keys").status_code == 200
        denied = http.post("/admin/api/keys", json={"name": "viewer key"})
        assert error_of(denied, 403)["code"] == "permission_denied"
