"""The Silences pages in a real browser: the empty state, the form filled from the URL an alert
page links to, a bad matcher refused next to its line, a silence made and listed as active with
its time left, a pending one, both expired with their buttons; each step as the API and the audit
log see it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import PageWatch
from tests.console.views import WIDE, keyboard_to, look_at
from tests.e2e.conftest import GatewayProcess

PREFILLED = "/admin/alerts/silences/new?matcher=model%3Dgpt-4o&matcher=alertname%3DError%20rate"


def test_a_silence_is_made_from_a_prefilled_form_listed_and_expired(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    page_watch.expect_error(r"status of 400")
    page: Page = sign_in(viewport=WIDE).new_page()
    page.goto("/admin/alerts/silences")
    expect(page.locator("#silences-empty")).to_be_visible()
    expect(page.locator("#silences-empty")).to_contain_text("/admin/api/alerts/silences")
    look_at(page, docs_screenshot, "alerts-silences-empty", ("light",))

    page.goto(PREFILLED)
    expect(page.get_by_role("heading", level=1)).to_have_text("New silence")
    expect(page.locator("#field-matchers")).to_have_value("model=gpt-4o\nalertname=Error rate")
    expect(page.locator("#field-duration")).to_have_value("2h")

    # a regex that does not compile, on the third line: refused, the line named, nothing kept
    page.locator("#field-matchers").fill("model=gpt-4o\n\nprovider=~open(ai")
    page.locator("#field-comment").fill("deploying the new router")
    page.locator("#create-silence").click()
    expect(page.locator("#error-matchers")).to_contain_text("Line 3")
    expect(page.locator("#error-matchers")).to_contain_text("not a regular expression")
    expect(page.locator("#field-comment")).to_have_value("deploying the new router")
    assert console_gateway.database.rows("SELECT silence_id FROM silences") == []

    # with the keyboard: from the matchers to the button
    page.locator("#field-matchers").fill("model=gpt-4o\nalertname=Error rate")
    page.locator("#field-matchers").focus()
    keyboard_to(page, "#field-duration")
    page.keyboard.press("Control+A")
    page.keyboard.type("90m")
    keyboard_to(page, "#create-silence")
    look_at(page, docs_screenshot, "alerts-silences-new", ("light",))
    page.keyboard.press("Enter")
    expect(page.locator("#silence-notice")).to_contain_text("Silence created")
    (stored,) = console_gateway.database.rows(
        "SELECT silence_id, comment, created_by FROM silences"
    )
    assert stored["comment"] == "deploying the new router"
    assert stored["created_by"] == "operator@example.com"
    row = page.locator(f"#silences-active #silence-{stored['silence_id']}")
    expect(row).to_contain_text("model=gpt-4o")
    expect(row).to_contain_text("alertname=Error rate")
    expect(row).to_contain_text("operator@example.com")
    expect(row.locator("td").nth(3)).to_have_text("1 h 29 min")

    # one that starts tomorrow is pending
    page.goto("/admin/alerts/silences/new?matcher=team%3Dml&duration=1d")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    page.locator("#field-starts_at").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    page.locator("#field-comment").fill("quarterly load test")
    page.locator("#create-silence").click()
    pending = page.locator("#silences-pending tbody tr")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("team=ml")
    expect(pending.locator("td").nth(3)).to_contain_text("starts in")
    look_at(page, docs_screenshot, "alerts-silences", ("light", "dark"))

    row.locator("button", has_text="Expire").click()
    expect(page.locator("#silence-notice")).to_contain_text("Silence expired")
    expired = page.locator(f"#silences-expired #silence-{stored['silence_id']}")
    expect(expired).to_contain_text("ended")
    expect(expired.locator("button")).to_have_count(0)
    expect(page.locator("#silences-active-empty")).to_be_visible()
    pending.locator("button", has_text="Expire").click()
    expect(page.locator("#silences-pending-empty")).to_be_visible()
    expect(page.locator("#silences-expired tbody tr")).to_have_count(2)

    actions = console_gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_id = :id ORDER BY audit_id",
        id=stored["silence_id"],
    )
    assert [row["action"] for row in actions] == ["silence.create", "silence.expire"]
    assert page_watch.problems() == []
