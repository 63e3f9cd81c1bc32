"""The Keys pages in a real browser: a key made on the create form, typed with the keyboard only,
copied from its one-time page, used with the openai SDK within its model allowlist and rate limit,
then revoked on its confirm page and refused with 401."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import PageWatch
from tests.console.views import WIDE, keyboard_to, look_at, look_at_phone_width
from tests.e2e.conftest import GatewayProcess

REVOCATION_WINDOW = 3.0  # the key cache's time to live is 1 s


def chat(client: openai.OpenAI, model: str = "mock-gpt") -> str:
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello from the console test"}]
    )
    return answer.choices[0].message.content or ""


def refused_within(client: openai.OpenAI, seconds: float) -> openai.AuthenticationError:
    """The 401 a revoked key gets once every worker's key cache has let it go (until then the
    key is still known, and over its rate limit: 429)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            chat(client)
        except openai.AuthenticationError as error:
            return error
        except openai.RateLimitError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the revoked key still works after {seconds} s")
        time.sleep(0.2)


def test_a_key_made_in_the_console_works_with_the_sdk_until_it_is_revoked(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    page_watch.expect_error(r"status of 400")
    context = sign_in(viewport=WIDE, permissions=["clipboard-read", "clipboard-write"])
    page: Page = context.new_page()
    page.goto("/admin/keys")
    expect(page.locator("#keys-empty")).to_be_visible()
    look_at_phone_width(page)
    page.locator("#new-key-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create a key")

    # The form with the keyboard only: skip to the content, then Tab from field to field, each
    # one showing where the focus is.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    # the jump to #content lands a moment after the key press: Tab only once the content has it
    expect(page.locator("main#content")).to_be_focused()
    keyboard_to(page, "#field-name")
    page.keyboard.type("support-bot")
    keyboard_to(page, 'input[name=allowed_models][value="mock-gpt"]')
    page.keyboard.press("Space")
    keyboard_to(page, "#field-rpm_limit")
    page.keyboard.type("0")
    page.keyboard.press("Enter")

    # refused: the problem next to the field, everything typed kept
    expect(page.locator("#error-form")).to_be_visible()
    expect(page.locator("#error-rpm_limit")).to_have_text(
        "Expected a positive whole number, got 0."
    )
    rpm = page.locator("#field-rpm_limit")
    expect(rpm).to_have_attribute("aria-invalid", "true")
    expect(rpm).to_have_value("0")
    describedby = rpm.get_attribute("aria-describedby") or ""
    assert "error-rpm_limit" in describedby.split()
    field = page.locator(".field", has=rpm)
    expect(field.locator(".field-error")).to_have_id("error-rpm_limit")
    expect(page.locator("#field-name")).to_have_value("support-bot")
    expect(page.locator('input[name=allowed_models][value="mock-gpt"]')).to_be_checked()
    expect(page.locator('input[name=allowed_models][value="large"]')).not_to_be_checked()
    look_at(page, docs_screenshot, "keys-new-error", pictures=("light", "phone"))

    rpm.fill("2")
    page.locator("#create-key").click()

    # the key, once, and its copy button
    expect(page.get_by_role("heading", level=1)).to_have_text("Key “support-bot” created")
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert secret.startswith("sk-")
    assert secret in page.locator("#new-key-snippet").inner_text()
    assert console_gateway.base_url in page.locator("#new-key-snippet").inner_text()
    page.locator("#copy-new-key-secret").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    expect(page.locator("#copy-new-key-secret")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    look_at(page, docs_screenshot, "key-created", pictures=("light", "phone-dark"))

    # the key with the openai SDK: its model allowed, another refused, its rate limit kept
    client = console_gateway.client(secret)
    assert chat(client)
    with pytest.raises(openai.PermissionDeniedError) as not_allowed:
        chat(client, "large")
    assert "may not use the model 'large'" in str(not_allowed.value)
    assert chat(client)
    with pytest.raises(openai.RateLimitError):
        chat(client)

    # its page, then revoke through the confirm form
    page.locator("#new-key-detail-link").click()
    expect(page.locator("#key-state")).to_have_text("active")
    expect(page.locator("#key-summary")).to_contain_text("2 requests/min")
    assert secret not in page.content()
    page.locator("#revoke-key-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke “support-bot”?")
    look_at_phone_width(page)
    page.locator("#confirm-revoke").click()
    expect(page.locator("#notice")).to_contain_text("The key is revoked")
    expect(page.locator("#key-state")).to_have_text("revoked")
    expect(page.locator("#revoke-key-link")).to_have_count(0)
    look_at_phone_width(page)

    error = refused_within(client, REVOCATION_WINDOW)
    assert error.status_code == 401

    page.goto("/admin/keys?state=all")
    row = page.locator("#keys-table tbody tr", has_text="support-bot")
    expect(row.locator(".badge")).to_have_text("revoked")
    expect(row).to_contain_text("mock-gpt")
    look_at(page, docs_screenshot, "keys", pictures=("light",))

    with console_gateway.http() as http:
        made = http.post(
            "/admin/api/workspaces",
            json={
                "slug": "support",
                "name": "Support",
                "settings": {
                    "rpm_limit": 120,
                    "guardrails": ["codenames"],
                    "budgets": [{"limit_usd": "25.00", "window": "monthly", "soft_percent": 80}],
                },
            },
        )
    assert made.status_code == 201, made.text
    page.goto("/admin/workspaces")
    expect(page.locator("#workspace-row-default td.num")).to_have_text(["0", "0", "1"])
    expect(page.locator("#workspace-row-support")).to_contain_text("$25.00/monthly@80%")
    look_at(page, docs_screenshot, "workspaces", pictures=("light",))


def test_users_and_audit_pages(
    console: Page, console_gateway: GatewayProcess, docs_screenshot: Callable[..., Path]
) -> None:
    """An operator adds a user on the Users page and copies its one-time link; the Audit log
    shows the change, newest first."""
    page = console
    page.goto("/admin/users/new")
    page.fill("#field-email", "grace@example.com")
    page.fill("#field-name", "Grace Hopper")
    page.select_option("#field-workspace", "default")
    page.select_option("#field-role", "admin")
    page.click("#create-user")
    expect(page.locator("#password-link")).to_contain_text("/admin/reset?token=")
    page.click("#user-detail-link")
    expect(page.locator("#user-status")).to_have_text("invited")
    page.goto("/admin/users")
    expect(page.locator("#users-table")).to_contain_text("grace@example.com")
    look_at(page, docs_screenshot, "users", pictures=("light",))

    page.goto("/admin/audit?last=7d")
    first = page.locator("#audit-table tbody tr").first
    expect(first).to_have_attribute("data-action", "user.password_link")
    expect(page.locator('#audit-table tr[data-action="user.create"]').first).to_contain_text(
        "grace@example.com"
    )
    look_at(page, docs_screenshot, "audit", pictures=("light",))
