"""Signing in to the console in a real browser: the form, a wrong password, throttling, signing
out, a viewer who may not create a key, and a change posted without its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import PageWatch, off_the_loop
from tests.console_users import PASSWORD, create_user
from tests.console_users import sign_in as session_for
from tests.e2e.conftest import GatewayProcess


def submit_sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_signing_in_and_out_with_the_form(
    console_gateway: GatewayProcess,
    open_context: Callable[..., BrowserContext],
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    page_watch.expect_error(r"status of (401|429)")
    user = off_the_loop(
        lambda: create_user(console_gateway.database.url, name="Ada Lovelace", role="admin")
    )
    page = open_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto("/admin/keys?state=active")
    expect(page).to_have_url(re.compile(r"/admin/signin\?next=/admin/keys%3Fstate%3Dactive$"))
    expect(page.get_by_label("Email")).to_be_focused()
    docs_screenshot(page, "signin", full_page=False)

    submit_sign_in(page, user.email, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value(user.email)
    expect(page.get_by_label("Password")).to_be_focused()

    submit_sign_in(page, user.email, PASSWORD)
    expect(page).to_have_url(re.compile(r"/admin/keys\?state=active$"))
    page.get_by_label("Account").click()
    menu = page.locator(".user-menu")
    expect(menu).to_contain_text("Ada Lovelace")
    expect(menu).to_contain_text(user.email)
    menu.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/admin/signin$"))
    page.goto("/admin/keys")
    expect(page).to_have_url(re.compile(r"/admin/signin\?next=/admin/keys$"))

    # Five failures (by script, from the same address) and the form says to wait.
    for _ in range(5):
        httpx.post(
            f"{console_gateway.url}/admin/signin",
            data={"email": user.email, "password": "guess"},
        )
    submit_sign_in(page, user.email, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins. Try again in")
    assert not [c for c in page.context.cookies() if c["name"] == "steerway_session"]


def test_a_viewer_may_not_create_a_key_and_a_change_needs_its_token(
    console_gateway: GatewayProcess,
    open_context: Callable[..., BrowserContext],
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
) -> None:
    page_watch.expect_error(r"status of 403")
    viewer = off_the_loop(lambda: create_user(console_gateway.database.url, role="viewer"))
    context = open_context()
    context.add_cookies(
        [off_the_loop(lambda: session_for(console_gateway.url, viewer)).browser_cookie()]
    )
    page = context.new_page()
    page.goto("/admin/keys")
    expect(page.locator("main")).to_be_visible()
    expect(page.locator("#new-key-link")).to_have_count(0)
    answer = page.goto("/admin/keys/new")
    assert answer is not None and answer.status == 403
    expect(page.locator("main")).to_contain_text("cannot create, change or revoke keys")

    # The operator's form, posted without the CSRF token its page carried: refused.
    operator_page = sign_in().new_page()
    operator_page.goto("/admin/keys/new")
    operator_page.locator("#field-name").fill("made without a token")
    operator_page.evaluate("document.querySelector('#key-form input[name=csrf_token]').remove()")
    operator_page.get_by_role("button", name="Create key").click()
    expect(operator_page.locator("main")).to_contain_text("needs the console's CSRF token")
    keys = console_gateway.database.rows(
        "SELECT 1 FROM api_keys WHERE name = :n", n="made without a token"
    )
    assert keys == []
