"""The alert rule pages in a real browser: a rule made on the editor over planted traffic, its
7-day preview (the count of would-be firings, the chart with its thresholds and shading) before
it is saved, field errors shown beside their fields, the rule saved, listed, muted and deleted
(with the audit entries the API writes), and a viewer who can read but not change it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from telemetry.db import create_engine
from telemetry.writers import BatchWriter
from tests.console.conftest import PageWatch, off_the_loop
from tests.console.views import WIDE
from tests.console_users import create_user
from tests.console_users import sign_in as session_for
from tests.e2e.conftest import GatewayProcess
from tests.telemetry import make_bundle

RULE = "Checkout error rate"


def plant(url: str, *, hours_ago: float, minutes: int, per_minute: int, errors: int) -> None:
    """`per_minute` requests a minute for `minutes` minutes from `hours_ago` hours ago (on the
    minute), the first `errors` of each minute failing, on the model `checkout-model`."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=hours_ago)

    async def run() -> None:
        engine = create_engine(url)
        try:
            await BatchWriter(engine).write(
                [
                    make_bundle(
                        started_at=(start + timedelta(minutes=minute)).timestamp() + 1 + index,
                        status="error" if index < errors else "ok",
                        model="checkout-model",
                    )
                    for minute in range(minutes)
                    for index in range(per_minute)
                ]
            )
        finally:
            await engine.dispose()

    off_the_loop(lambda: asyncio.run(run()))


def fill_rule(page: Page) -> None:
    page.locator("#field-name").fill(RULE)
    page.locator("#field-metric").select_option("error_rate")
    page.locator("#field-group_by").get_by_label("model", exact=True).check()
    page.locator("#field-filters").fill("model = checkout-model")
    page.locator("#field-window").fill("10m")
    page.locator("#field-warning").fill("0.1")
    page.locator("#field-critical").fill("0.3")
    page.locator("#field-for").fill("5m")
    page.locator("#field-min_requests").fill("20")


def test_a_rule_is_previewed_saved_listed_muted_and_deleted(
    console_gateway: GatewayProcess,
    console: Page,
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    page_watch.expect_error(r"status of 400")
    url = console_gateway.database.url
    # Steady traffic for two days, with two bursts of errors: half failing for 40 minutes,
    # and a fifth failing for 20 minutes (a warning).
    plant(url, hours_ago=48, minutes=48 * 60 - 60, per_minute=3, errors=0)
    plant(url, hours_ago=30, minutes=40, per_minute=6, errors=3)
    plant(url, hours_ago=10, minutes=20, per_minute=5, errors=1)

    page = console
    page.set_viewport_size(WIDE)
    page.goto("/admin/alerts/rules")
    # Every workspace starts with the built-in rules; once deleted, they stay deleted.
    built_in = page.locator("tr", has=page.locator(".badge", has_text="built-in"))
    expect(built_in).to_have_count(4)
    expect(built_in.first).to_be_visible()
    with console_gateway.http() as http:
        for rule in http.get("/admin/api/alerts/rules").json()["data"]:
            assert rule["built_in"], rule
            assert http.delete(f"/admin/api/alerts/rules/{rule['id']}").status_code == 204
    page.reload()
    expect(page.locator("#alert-rules-empty")).to_contain_text("No alert rules yet.")
    expect(page.locator("#alert-rules-empty code")).to_contain_text("/admin/api/alerts/rules")
    page.locator("#new-rule-empty").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New alert rule")
    expect(page.locator("#preview-none")).to_be_visible()

    fill_rule(page)
    # A problem found by Preview is shown beside its field, and nothing is previewed.
    page.locator("#field-window").fill("soon")
    page.evaluate("window.samePage = true")
    page.locator("#preview-rule").click()
    expect(page.locator("#error-window")).to_contain_text("duration")
    expect(page.locator("#preview-blocked")).to_be_visible()
    page.locator("#field-window").fill("10m")
    page.locator("#preview-rule").click()
    sentence = page.locator("#preview-sentence")
    expect(sentence).to_contain_text("Would have fired 2 times in the last 7 days (")
    # 40 and 20 minutes of errors, seen through 10-minute windows every 5 minutes, after 5
    # minutes pending: each fires for about as long as it lasted, give or take a step or two.
    hours = re.fullmatch(
        r"Would have fired 2 times in the last 7 days \(([\d.]+) hours? firing\)\.",
        sentence.inner_text(),
    )
    assert hours is not None and 0.6 <= float(hours[1]) <= 1.2, sentence.inner_text()
    chart = page.locator("#rule-preview svg").first
    expect(chart).to_be_visible()
    expect(page.locator("#rule-preview .chart-span")).to_have_count(2)
    expect(page.locator("#rule-preview .chart-line-dashed")).to_have_count(2)
    severities = page.locator("#preview-episodes tbody tr td:nth-child(2)").all_inner_texts()
    assert sorted(severities) == ["Critical", "Warning"]
    # The preview came without a reload (the page's own script), and nothing is saved by it;
    # the form keeps what was typed.
    assert page.evaluate("window.samePage") is True
    assert console_gateway.database.rows("SELECT 1 FROM alert_rules") == []
    expect(page.locator("#field-window")).to_have_value("10m")
    docs_screenshot(page, "alert-rule-editor")

    # Problems are shown beside the field they concern, and nothing is saved.
    page.locator("#field-window").fill("soon")
    page.locator("#save-rule").click()
    expect(page.locator("#error-window")).to_contain_text("duration")
    expect(page.locator("#error-form")).to_contain_text("Not saved.")
    page.locator("#field-window").fill("10m")
    page.locator("#field-critical").fill("0.05")
    page.locator("#save-rule").click()
    expect(page.locator("#error-critical")).to_contain_text("at least the warning threshold")
    page.locator("#field-critical").fill("")
    page.locator("#field-warning").fill("")
    page.locator("#save-rule").click()
    expect(page.locator("#error-thresholds")).to_contain_text("warning or a critical threshold")
    assert console_gateway.database.rows("SELECT 1 FROM alert_rules") == []

    page.locator("#field-warning").fill("0.1")
    page.locator("#field-critical").fill("0.3")
    page.locator("#save-rule").click()
    expect(page.locator("#rules-notice")).to_have_text(f"Rule “{RULE}” created.")
    (stored,) = console_gateway.database.rows("SELECT rule_id, window_s FROM alert_rules")
    rule_id = stored["rule_id"]
    assert stored["window_s"] == 600
    row = page.locator(f"#rule-row-{rule_id}")
    expect(row).to_contain_text("Error rate")
    expect(row).to_contain_text("critical 30 %")
    expect(row).to_contain_text("10 min")
    expect(row).to_contain_text("5 min")

    page.locator(f"#mute-{rule_id}").click()
    expect(page.locator("#rules-notice")).to_contain_text("muted")
    expect(row.locator(".badge-warning")).to_have_text("muted")
    docs_screenshot(page, "alert-rules")
    assert console_gateway.database.rows(
        "SELECT muted FROM alert_rules WHERE rule_id = :id", id=rule_id
    ) == [{"muted": 1}]

    # The editor of the stored rule shows its preview straight away.
    page.locator(f"#rule-row-{rule_id} a.rule-name").click()
    expect(page.locator("#preview-sentence")).to_contain_text("Would have fired 2 times")
    page.locator("#field-min_requests").fill("100")
    page.locator("#save-rule").click()
    expect(page.locator("#rules-notice")).to_have_text(f"Rule “{RULE}” saved.")

    page.locator(f"#delete-{rule_id}").click()
    expect(page.locator("main")).to_contain_text("its history goes with it")
    page.locator("#confirm-delete").click()
    expect(page.locator("#rules-notice")).to_contain_text("deleted")
    expect(page.locator("#alert-rules-empty")).to_be_visible()
    actions = console_gateway.database.rows(
        "SELECT action FROM audit_log WHERE target_id = :id ORDER BY audit_id", id=rule_id
    )
    assert [row["action"] for row in actions] == [
        "alert_rule.create",
        "alert_rule.mute",
        "alert_rule.update",
        "alert_rule.delete",
    ]


def test_a_viewer_reads_rules_but_cannot_change_them(
    console_gateway: GatewayProcess,
    console: Page,
    open_context: Callable[..., BrowserContext],
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
) -> None:
    page_watch.expect_error(r"status of 403")
    console.goto("/admin/alerts/rules/new")
    console.locator("#field-name").fill("Spend watch")
    console.locator("#field-metric").select_option("cost")
    console.locator("#field-critical").fill("5")
    console.locator("#save-rule").click()
    expect(console.locator("#rules-notice")).to_contain_text("created")
    (stored,) = console_gateway.database.rows(
        "SELECT rule_id FROM alert_rules WHERE name = 'Spend watch'"
    )
    rule_id = stored["rule_id"]

    # Without the page's script, Preview posts the form and the page comes back with it.
    plain = sign_in(java_script_enabled=False).new_page()
    plain.goto("/admin/alerts/rules/new")
    plain.locator("#field-name").fill("Spend preview")
    plain.locator("#field-metric").select_option("cost")
    plain.locator("#field-critical").fill("5")
    plain.locator("#preview-rule").click()
    expect(plain.locator("#preview-sentence")).to_have_text(
        "Would have fired 0 times in the last 7 days (0 hours firing)."
    )
    assert plain.url.endswith("/admin/alerts/rules/new#rule-preview")

    viewer = off_the_loop(lambda: create_user(console_gateway.database.url, role="viewer"))
    context = open_context()
    context.add_cookies(
        [off_the_loop(lambda: session_for(console_gateway.url, viewer)).browser_cookie()]
    )
    page = context.new_page()
    page.goto("/admin/alerts/rules")
    expect(page.locator(f"#rule-row-{rule_id}")).to_contain_text("Spend watch")
    expect(page.locator("#new-rule-link")).to_have_count(0)
    expect(page.locator(f"#mute-{rule_id}")).to_have_count(0)
    expect(page.locator(f"#delete-{rule_id}")).to_have_count(0)
    page.locator(f"#rule-row-{rule_id} a.rule-name").click()
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#save-rule")).to_have_count(0)
    expect(page.locator("#field-name")).to_be_disabled()
    for path in ("/admin/alerts/rules/new", f"/admin/alerts/rules/{rule_id}/delete"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403
    answer = page.request.post(f"/admin/alerts/rules/{rule_id}/mute")
    assert answer.status == 403
    assert console_gateway.database.rows(
        "SELECT muted FROM alert_rules WHERE rule_id = :id", id=rule_id
    ) == [{"muted": 0}]
