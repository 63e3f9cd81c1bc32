"""The alert and channel pages in a real browser, against a gateway that evaluates its alert
rules every second over live traffic through the mock provider:

- a webhook channel made on the console's form against a real receiver that checks the
  signature, its Test showing `sent`, and a rule still naming it refusing its deletion;
- an alert fired by real evaluation of a rule over requests sent with the openai SDK: in the
  list, on the Overview, on its page with its timeline (the delivery to the receiver) and the
  rule's metric as a chart, acknowledged and resolved with the buttons (and in the audit log),
  while a viewer of the workspace sees no buttons and is refused when posting anyway.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

import migrations
from tests.console.conftest import BrowserTestDatabase, PageWatch, console_config, off_the_loop
from tests.console.hook_receiver import HookReceiver
from tests.console.views import WIDE, look_at
from tests.console_users import create_user
from tests.console_users import sign_in as sign_in_as
from tests.e2e.conftest import GatewayProcess, MockProcess

HOOK_SECRET = "console-hook-" + secrets.token_hex(6)
RULE_NAME = "Busy model"


@pytest.fixture(scope="module")
def console_gateway(
    mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The module's gateway, evaluating alert rules every second."""
    tmp = tmp_path_factory.mktemp("alert-console")
    url = f"sqlite:///{tmp / 'steerway.db'}"
    off_the_loop(lambda: migrations.upgrade(url))
    config = {**console_config(mock_provider), "alerts": {"interval": 1}}
    process = GatewayProcess(
        BrowserTestDatabase(url), config, tmp, master_key="sk-alerts-" + secrets.token_hex(8)
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def hook() -> Iterator[HookReceiver]:
    receiver = HookReceiver(HOOK_SECRET).start()
    yield receiver
    receiver.close()


def api(gateway: GatewayProcess, method: str, path: str, **body: Any) -> Any:
    with gateway.http() as http:
        response = http.request(method, f"/admin/api/alerts{path}", json=body or None)
    assert response.status_code < 300, response.text
    return response.json()


def firing_alert(
    gateway: GatewayProcess, rule_id: str, severity: str | None = None, seconds: float = 45
) -> dict[str, Any]:
    """The rule's firing alert, once it fires (at `severity`, when given: an evaluation may
    find part of a burst recorded and fire at a lesser severity first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = api(gateway, "GET", f"/instances?rule={rule_id}&state=firing")["data"]
        if found and severity in (None, found[0]["severity"]):
            return dict(found[0])
        time.sleep(0.3)
    raise AssertionError(f"the rule {rule_id} did not fire ({severity}) within {seconds} s")


def add_webhook_channel(page: Page, hook: HookReceiver, name: str) -> str:
    """Fill in the webhook form; the new channel's id."""
    page.goto("/admin/alerts/channels")
    page.locator("#new-channel-link").click()
    page.locator("#new-webhook").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a Webhook channel")
    page.locator("#field-name").fill(name)
    page.locator("#field-setting_url").fill(hook.url)
    page.locator("#field-secret_signing_secret").fill(HOOK_SECRET)
    page.locator("#create-channel").click()
    expect(page.locator("#notice")).to_contain_text("Channel added")
    match = re.search(r"/admin/alerts/channels/([0-9a-f]{32})", page.url)
    assert match, page.url
    return match.group(1)


def test_a_webhook_channel_made_on_its_form_is_tested_and_kept_while_a_rule_uses_it(
    console_gateway: GatewayProcess,
    console: Page,
    hook: HookReceiver,
    page_watch: PageWatch,
) -> None:
    page_watch.expect_error(r"status of 400")  # the refused form
    page_watch.expect_error(r"status of 409")  # the refused deletion
    page = console
    page.goto("/admin/alerts/channels")
    expect(page.locator("#channels-empty")).to_contain_text("No channels yet")

    # a refused form keeps what was typed but never the secret
    page.goto("/admin/alerts/channels/new?kind=webhook")
    page.locator("#field-name").fill("ops hook")
    page.locator("#field-setting_url").fill("ftp://example.invalid/x")
    page.locator("#field-secret_signing_secret").fill(HOOK_SECRET)
    page.locator("#create-channel").click()
    expect(page.locator("#error-form")).to_be_visible()
    expect(page.locator("#field-name")).to_have_value("ops hook")
    expect(page.locator("#field-secret_signing_secret")).to_have_value("")
    assert HOOK_SECRET not in page.content()

    channel_id = add_webhook_channel(page, hook, "ops hook")
    expect(page.locator("#secret-signing_secret")).to_contain_text("set")
    assert HOOK_SECRET not in page.content()
    expect(page.locator("#deliveries-empty")).to_be_visible()

    page.locator("#test-channel").click()
    expect(page.locator("#test-status")).to_have_text("sent")
    expect(page.locator("#test-result")).to_contain_text("HTTP 200")
    test = hook.wait_for("alert.firing", test=True)
    assert test["alert"]["rule_name"] == "Test notification"
    assert hook.refused == 0

    page.goto("/admin/alerts/channels")
    row = page.locator(f"#channel-row-{channel_id}")
    expect(row).to_contain_text("Webhook")
    expect(row).to_contain_text("set")
    expect(row).to_contain_text("never used")

    # replacing the URL keeps the secret; a rule naming the channel keeps it from deletion
    page.goto(f"/admin/alerts/channels/{channel_id}")
    page.locator("#field-setting_url").fill(hook.url + "?v=2")
    page.locator("#save-channel").click()
    expect(page.locator("#notice")).to_have_text("Saved.")
    expect(page.locator("#secret-signing_secret")).to_contain_text("set")
    api(
        console_gateway,
        "POST",
        "/rules",
        name="Uses the hook",
        metric="requests",
        critical=1_000_000,
        channels=[channel_id],
    )
    page.locator("#delete-channel-link").click()
    page.locator("#confirm-delete").click()
    expect(page.locator("#delete-problem")).to_contain_text("Rules still notify this channel")
    expect(page.locator("#delete-problem")).to_contain_text("Uses the hook")
    assert api(console_gateway, "GET", f"/channels/{channel_id}")["name"] == "ops hook"


def test_an_alert_fired_by_live_traffic_is_listed_shown_acknowledged_and_resolved(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    hook: HookReceiver,
    docs_screenshot: Callable[..., Path],
) -> None:
    page = sign_in(viewport=WIDE).new_page()
    page.goto("/admin/alerts")
    expect(page.locator("#tab-firing")).to_have_attribute("aria-current", "page")
    channel_id = add_webhook_channel(page, hook, "on-call hook")
    rule = api(
        console_gateway,
        "POST",
        "/rules",
        name=RULE_NAME,
        metric="requests",
        group_by=["model"],
        filters={"model": ["mock-gpt"]},
        window="5m",
        warning=2,
        critical=3,
        channels=[channel_id],
    )
    client = console_gateway.client()
    for _ in range(4):
        client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": "is anyone there?"}]
        )
    alert = firing_alert(console_gateway, rule["id"], "critical")
    notified = hook.wait_for("alert.firing")
    assert notified["alert"]["rule_name"] == RULE_NAME
    assert notified["alert"]["labels"] == {"model": "mock-gpt"}

    # the list: severity, rule, labels, value against threshold
    page.goto("/admin/alerts")
    row = page.locator(f"#alert-row-{alert['id']}")
    expect(row).to_contain_text(RULE_NAME)
    expect(row.locator(".severity-badge")).to_have_text("critical")
    expect(row).to_contain_text("model=mock-gpt")
    expect(row).to_contain_text(re.compile(r"\b[4-9] above 3\b"))
    look_at(page, docs_screenshot, "alerts", pictures=("light", "dark"))
    page.locator("#tab-resolved").click()
    expect(page.locator("#alerts-empty")).to_contain_text("No resolved alerts")

    # the Overview's box
    page.goto("/admin/analytics")
    box = page.locator("#firing-alerts")
    expect(box.locator(f"#firing-{alert['id']}")).to_contain_text(RULE_NAME)
    expect(box.locator("#firing-count")).to_contain_text("firing")
    docs_screenshot(page, "alerts-overview", full_page=False)

    # its page: facts, chart with thresholds, links, timeline with the delivery
    box.locator(f"#firing-{alert['id']} a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(RULE_NAME)
    expect(page.locator("#alert-state")).to_have_text("firing")
    chart = page.locator("svg#alert-chart")
    expect(chart).to_be_visible()
    expect(chart.locator('g.chart-series[data-series="Critical threshold"]')).to_have_count(1)
    expect(chart.locator('g.chart-series[data-series="Warning threshold"]')).to_have_count(1)
    expect(chart.locator(".chart-span")).to_have_count(1)
    traces = page.locator("#alert-traces").get_attribute("href") or ""
    assert traces.startswith("/admin/traces?since=") and "model=mock-gpt" in traces
    silence = page.locator("#silence-alert").get_attribute("href") or ""
    assert f"matcher=alertname%3D{RULE_NAME.replace(' ', '+')}" in silence
    assert "matcher=model%3Dmock-gpt" in silence
    timeline = page.locator("#alert-timeline")
    expect(timeline.locator("li").first).to_contain_text("Opened as")
    delivery = timeline.locator('li[data-kind="delivery"]').first
    expect(delivery).to_contain_text("on-call hook")
    expect(delivery.locator(".delivery-status")).to_have_text("sent")
    expect(delivery).to_contain_text("HTTP 200")
    look_at(page, docs_screenshot, "alert", pictures=("light", "dark"))

    # the traces link opens the requests of the window
    page.locator("#alert-traces").click()
    expect(page.locator("#traces-table tbody tr").first).to_contain_text("mock-gpt")

    # a viewer reads the alert but has no buttons, and is refused when posting anyway
    viewer = off_the_loop(
        lambda: create_user(console_gateway.database.url, email="viewer@example.com", role="viewer")
    )
    session = off_the_loop(lambda: sign_in_as(console_gateway.url, viewer))
    viewer_context = sign_in(viewport=WIDE)
    viewer_context.clear_cookies()
    viewer_context.add_cookies([session.browser_cookie()])
    viewer_page = viewer_context.new_page()
    viewer_page.goto(f"/admin/alerts/{alert['id']}")
    expect(viewer_page.locator("#read-only-note")).to_be_visible()
    expect(viewer_page.locator("#ack-alert")).to_have_count(0)
    expect(viewer_page.locator("#resolve-alert")).to_have_count(0)
    with session.client() as http:
        refused = http.post(f"/admin/alerts/{alert['id']}/ack")
    assert refused.status_code == 403

    # acknowledge, then resolve by hand
    page.goto(f"/admin/alerts/{alert['id']}")
    page.locator("#ack-alert").click()
    expect(page.locator("#notice")).to_contain_text("Acknowledged")
    expect(page.locator("#alert-ack")).to_contain_text("operator@example.com")
    expect(page.locator("#ack-alert")).to_have_count(0)
    page.locator("#resolve-alert").click()
    expect(page.locator("#notice")).to_contain_text("Resolved by hand")
    expect(page.locator("#alert-state")).to_have_text("resolved")
    expect(page.locator("#alert-timeline")).to_contain_text(
        "resolved by hand by operator@example.com"
    )

    page.goto("/admin/audit?action=alert.")
    audit = page.locator("#audit-table")
    for action in ("alert.acknowledge", "alert.resolve"):
        expect(
            audit.locator(f'tr[data-action="{action}"]', has_text=alert["id"][:13])
        ).to_have_count(1)

    # the channel's delivery log has the firing
    page.goto(f"/admin/alerts/channels/{channel_id}")
    log = page.locator("#deliveries-table")
    expect(log.locator("tbody tr").first).to_contain_text("firing")
    expect(log.locator("tbody tr").first).to_contain_text("sent")
    expect(log.locator(f'a[href="/admin/alerts/{alert["id"]}"]')).to_have_count(1)
    page.locator("#test-channel").click()
    expect(page.locator("#test-status")).to_have_text("sent")
    look_at(page, docs_screenshot, "alert-channel", pictures=("light", "dark"))
    page.goto("/admin/alerts/channels")
    last = page.locator(f"#channel-row-{channel_id} .last-status")
    expect(last).to_have_text("sent")
    look_at(page, docs_screenshot, "alert-channels", pictures=("light",))
