"""The Rules pages in a real browser: a rule saved with a mistake shows the mistake's path next
to the text as typed; fixed, it is saved and in force; the simulator, opened from a URL, shows it
matching; a replay over the last requests shows the model mix moving and what it costs."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import BrowserContext, expect

from tests.console.conftest import PageWatch
from tests.console.views import WIDE, look_at, look_at_phone_width
from tests.e2e.conftest import GatewayProcess

RULE_ID = "batch-to-large"
TYPED = f"""id: {RULE_ID}
name: Batch jobs to the large model
priority: 5
when:
  tags:
    contains: batch
then:
  route: larg
  tag: [batch-routed]
"""
FIXED = TYPED.replace("route: larg\n", "route: large\n")


def record_requests(gateway: GatewayProcess) -> list[str]:
    """Three batch requests and one other, answered by mock-gpt before any rule of this test."""
    client = gateway.client()
    trace_ids = []
    for tags in ("batch", "batch", "batch,nightly", "interactive"):
        raw = client.chat.completions.with_raw_response.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": f"summarise the {tags} report"}],
            extra_headers={"x-steerway-tags": tags},
        )
        trace_ids.append(raw.headers["x-steerway-trace-id"])
    for trace_id in trace_ids:
        gateway.database.wait_rows("SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id)
    return trace_ids


def test_a_rule_saved_with_a_mistake_then_fixed_simulated_and_replayed(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
) -> None:
    page_watch.expect_error(r"status of 400")
    recorded = record_requests(console_gateway)
    page = sign_in(viewport=WIDE).new_page()

    page.goto("/admin/rules")
    expect(page.locator("#rule-premium-to-large .rules-state")).to_have_text("In force")
    page.locator("#rules-new").click()

    # a mistake: nothing stored, the problem under the text with its path and line, the text kept
    editor = page.locator("#rule-text")
    editor.fill(TYPED)
    page.locator("#rule-save").click()
    problems = page.locator("#rule-problems")
    expect(problems).to_be_visible()
    expect(problems.locator(".rule-problem")).to_have_count(1)
    problem = problems.locator(".rule-problem").first
    expect(problem).to_have_attribute("data-path", "then.route.model")
    expect(problem.locator(".problem-path")).to_have_text("then.route.model")
    expect(problem).to_contain_text("line 8")
    expect(problem).to_contain_text("larg")
    expect(problems).to_contain_text("nothing was saved, and your text is kept")
    expect(editor).to_have_value(TYPED)
    expect(editor).to_have_attribute("aria-invalid", "true")
    with console_gateway.http() as http:
        assert http.get(f"/admin/api/rules/{RULE_ID}").status_code == 404
    look_at(page, docs_screenshot, "rule-error", pictures=("light", "phone"))

    # fixed and saved: version 1, in force
    editor.fill(FIXED)
    page.locator("#rule-save").click()
    expect(page).to_have_url(f"{console_gateway.url}/admin/rules/{RULE_ID}/edit?saved=1")
    expect(page.locator("#rule-saved")).to_have_text("Saved as version 1; in force now.")
    stored = page.locator("#rule-text").input_value()
    assert "route: large\n" in stored and "contains: batch\n" in stored
    look_at_phone_width(page)
    page.goto("/admin/rules")
    expect(page.locator(f"#rule-{RULE_ID} .rules-state")).to_have_text("In force")
    look_at(page, docs_screenshot, "rules", pictures=("light", "phone-dark"))

    # simulate a request given in the URL, as a trace's "open in the rules simulator" links it
    request = {"model": "mock-gpt", "messages": [{"role": "user", "content": "nightly digest"}]}
    query = urlencode({"request": json.dumps(request), "tags": "batch,nightly", "user": "cron"})
    page.goto(f"/admin/rules/simulate?{query}")
    expect(page.locator("#sim-model")).to_have_value("mock-gpt")
    expect(page.locator("#sim-tags")).to_have_value("batch,nightly")
    matched = page.locator("#simulation-matched tbody tr")
    expect(matched).to_have_count(1)
    expect(matched.first).to_have_attribute("data-rule-id", RULE_ID)
    expect(matched.first).to_contain_text('tags contains "batch"')
    expect(page.locator("#simulation-route-name")).to_have_text("large")
    expect(page.locator("#simulation-effects")).to_contain_text("batch-routed")
    look_at(page, docs_screenshot, "rules-simulate", pictures=("light",))

    # replay the rules in force over the last requests: three of four move to the large model
    page.locator(".rules-tabs a", has_text="Replay").click()
    expect(page.locator("#replay-intro")).to_be_visible()
    page.locator("#replay-requests").fill(str(len(recorded)))
    page.locator("#replay-run").click()
    asked = parse_qs(urlsplit(page.url).query)
    assert asked["run"] == ["1"] and asked["requests"] == ["4"]
    expect(page.locator("#replay-summary")).to_contain_text("over 4 requests")
    mix = page.locator("#replay-model-mix tbody tr")
    expect(mix).to_have_count(2)
    expect(page.locator('#replay-model-mix tr[data-model="mock-gpt"] td')).to_have_text(
        ["mock-gpt", "4", "100.0%", "1", "25.0%", "-3"]
    )
    expect(page.locator('#replay-model-mix tr[data-model="large"] td')).to_have_text(
        ["large", "0", "0.0%", "3", "75.0%", "+3"]
    )
    expect(page.locator("#replay-mix-chart")).to_be_visible()
    with console_gateway.http() as http:
        answer = http.post("/admin/api/rules/replay", json={"last": 4})
    assert answer.status_code == 200, answer.text
    cost = answer.json()["cost"]
    difference = Decimal(cost["difference_usd"])
    assert difference > 0
    expect(page.locator("#replay-cost-before")).to_have_text(f"${cost['before_usd']}")
    expect(page.locator("#replay-cost-after")).to_have_text(f"${cost['after_usd']}")
    expect(page.locator("#replay-cost-difference")).to_have_text(f"+${difference:f}")
    expect(page.locator("#replay-cost-difference")).to_have_class("cost-more")
    expect(
        page.locator(f'#replay-rule-counts tr[data-rule-id="{RULE_ID}"] td').nth(2)
    ).to_have_text("3")
    look_at(page, docs_screenshot, "replay", pictures=("light", "dark"))
