"""The Quality dashboard and the trace page's scores in a real browser, over evaluations planted
in the console gateway's database: an empty range explains how to set up an evaluator; the
tiles, the chart, the ranking with cost per point, the A/B verdict and the status table show
the planted numbers; filters are a GET form whose URL says what the page shows; a trace shows
each judge's scores, flags and rationale with a link to the judge's own trace."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from telemetry.db import create_engine
from telemetry.writers import BatchWriter
from tests.console.conftest import ARTIFACTS, PageWatch, off_the_loop
from tests.console.views import look_at_phone_width
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.evaluation_history import Judged, plant, request_bundle

SHOTS = ARTIFACTS / "docs-images"


def _history(now: datetime) -> list[Judged]:
    history = []
    for n in range(24):
        at = now - timedelta(hours=6) + timedelta(minutes=14 * n)
        history.append(
            Judged(
                at=at,
                model="mock-gpt-large",
                scores={"accuracy": 82 + n % 4 * 3, "helpfulness": 88},
                cost_usd=Decimal("0.004"),
            )
        )
        history.append(
            Judged(
                at=at + timedelta(seconds=30),
                model="mock-gpt",
                scores={"accuracy": 58 + n % 5 * 4, "helpfulness": 70},
                cost_usd=Decimal("0.001"),
                flags=["hallucination"] if n % 6 == 0 else [],
            )
        )
    history.append(Judged(at=now - timedelta(hours=2), model="mock-gpt", status="no_content"))
    history.append(Judged(at=now - timedelta(hours=2), model="mock-gpt", status="failed"))
    return history


@pytest.fixture(scope="module")
def planted(console_gateway: GatewayProcess) -> list[Judged]:
    now = datetime.now(UTC).replace(microsecond=0)
    judge = Judged(at=now - timedelta(hours=1), model="judge", scores={"accuracy": 1})
    history = _history(now)
    shown = history[1]
    shown.rationale = "Mostly right, but it invents a second invoice number."
    shown.flags = ["hallucination"]
    shown.judge_trace_id = judge.trace_id

    async def write() -> None:
        engine = create_engine(console_gateway.database.url)
        try:
            await plant(engine, history)
            # the judge's own request, so the link from the scores leads somewhere
            await BatchWriter(engine).write([request_bundle(judge)])
        finally:
            await engine.dispose()

    off_the_loop(lambda: asyncio.run(write()))
    return history


def test_an_empty_range_says_how_to_set_up_an_evaluator(
    console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    page.goto("/admin/quality?from=2021-01-01T00:00&to=2021-01-02T00:00")
    expect(page.locator("nav.sidebar a[aria-current=page]")).to_have_text("Quality")
    empty = page.locator(".empty")
    expect(empty).to_contain_text("No evaluations in this range.")
    expect(empty).to_contain_text("docs/quality.md")
    docs_screenshot(page, "quality-empty", full_page=False)


def test_the_dashboard_shows_the_planted_scores(
    planted: list[Judged], console: Page, docs_screenshot: Callable[..., Path]
) -> None:
    page = console
    page.goto("/admin/quality?last=24h&compare=model&a=mock-gpt-large&b=mock-gpt")
    expect(page.locator("#tile-judged")).to_have_text("50")
    expect(page.locator("#tile-failed")).to_have_text("1")
    expect(page.locator("#tile-no-content")).to_have_text("1")
    expect(page.locator("#tile-spend")).to_have_text("$0.005")
    chart = page.locator("#quality-scores-chart")
    expect(chart).to_be_visible()
    assert chart.locator("path").count() >= 2
    rows = page.locator("#quality-ranking tr.rank-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-model", "mock-gpt-large")
    large = [j.mean for j in planted if j.model == "mock-gpt-large" and j.mean is not None]
    small = [j.mean for j in planted if j.model == "mock-gpt" and j.mean is not None]
    expect(rows.nth(0).locator("td").nth(2)).to_have_text(f"{statistics.fmean(large):.1f}")
    expect(rows.nth(0).locator(".cost-per-point")).to_contain_text("$0.04")
    verdict = page.locator("#quality-verdict")
    expect(verdict).to_contain_text("A scores higher than B by")
    difference = statistics.fmean(large) - statistics.fmean(small)
    expect(page.locator("#quality-difference")).to_have_text(f"{difference:+.1f}")
    expect(page.locator("#quality-status-table tr[data-evaluator]")).to_have_count(1)
    # a model's name opens its judged requests in the traces explorer
    rows.nth(1).get_by_role("link", name="mock-gpt").click()
    page.wait_for_url("**/admin/traces?**")
    asked = parse_qs(urlsplit(page.url).query)
    assert asked == {"last": ["24h"], "evaluated": ["true"], "model": ["mock-gpt"]}
    expect(page.locator("tr[id^=trace-row-]")).to_have_count(len(small) + 2)
    page.go_back()
    # ranked by cost per point, the cheaper model comes first
    page.locator("#quality-rank").get_by_role("link", name="cost per point").click()
    page.wait_for_url("**rank=cost_per_point**")
    expect(rows.nth(0)).to_have_attribute("data-model", "mock-gpt")
    expect(page.locator("#quality-verdict")).to_contain_text("A scores higher than B by")
    docs_screenshot(page, "quality")
    look_at_phone_width(page)


def test_filters_are_a_form_whose_url_says_what_it_shows(
    planted: list[Judged], console: Page, page_watch: PageWatch
) -> None:
    page = console
    page.goto("/admin/quality?last=24h")
    expect(page.locator("#quality-compare")).to_be_visible()
    page.select_option("#quality-by", "evaluator")
    page.fill("#quality-criterion", "accuracy")
    page.select_option("#quality-compare", "model")
    page.fill("#quality-a", "mock-gpt")
    page.fill("#quality-b", "mock-gpt")
    page.locator("form.quality-filters button[type=submit]").click()
    page.wait_for_url("**/admin/quality?**criterion=accuracy**")
    asked = parse_qs(urlsplit(page.url).query)
    assert asked["last"] == ["24h"] and asked["by"] == ["evaluator"] and asked["a"] == ["mock-gpt"]
    expect(page.locator("#quality-over-time-title")).to_contain_text("accuracy")
    expect(page.locator("#quality-verdict")).to_contain_text("No clear difference")
    # a bad parameter is the page's 400, with the reason
    page_watch.expect_error(r"status of 400")
    response = page.goto("/admin/quality?last=24h&compare=model&a=mock-gpt")
    assert response is not None and response.status == 400
    expect(page.locator("#range-problem")).to_contain_text("b:")


def test_the_trace_page_shows_each_judges_scores(planted: list[Judged], console: Page) -> None:
    page = console
    shown = planted[1]
    page.goto(f"/admin/traces/{shown.trace_id}")
    section = page.locator("#scores")
    expect(section.locator("h2")).to_contain_text("Scores 1")
    evaluation = section.locator("article.evaluation")
    expect(evaluation).to_contain_text("helpfulness-check")
    expect(evaluation.locator(".score-mean")).to_have_text(f"mean {shown.mean:.1f} / 100")
    expect(evaluation.locator(".tag-flag")).to_contain_text("hallucination")
    expect(evaluation.locator("table.score-table tbody tr")).to_have_count(2)
    expect(evaluation).to_contain_text("invents a second invoice number")
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / "console-trace-scores.png"), animations="disabled")
    evaluation.get_by_role("link", name="the judge's trace").click()
    page.wait_for_url(f"**/admin/traces/{shown.judge_trace_id}")
    expect(page.locator("#scores .empty")).to_contain_text("No evaluator has scored this request.")


def test_the_traces_explorer_filters_on_scores(planted: list[Judged], console: Page) -> None:
    page = console
    flagged = {j.trace_id for j in planted if "hallucination" in j.flags}
    page.goto("/admin/traces?last=24h&eval_flag=hallucination&limit=100")
    rows = page.locator("tr[id^=trace-row-]")
    expect(rows).to_have_count(len(flagged))
    shown = {
        (rows.nth(n).get_attribute("id") or "")[len("trace-row-") :] for n in range(len(flagged))
    }
    assert shown == flagged
    low = {j.trace_id for j in planted if j.mean is not None and j.mean <= 65}
    page.goto("/admin/traces?last=24h&max_score=65&limit=100")
    expect(rows).to_have_count(len(low))
    expect(page.locator("#filter-max_score")).to_have_value("65")


def test_the_interactions_explorer_filters_on_scores(
    planted: list[Judged], console: Page, page_watch: PageWatch
) -> None:
    page = console
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto("/admin/interactions?last=24h")
    expect(page.locator("details.more-filters")).not_to_have_attribute("open", "")
    page.locator("details.more-filters > summary").click()
    page.fill("#filter-eval_flag", "hallucination")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/interactions?**eval_flag=hallucination**")
    flagged = {j.interaction_id for j in planted if "hallucination" in j.flags}
    rows = page.locator("tr[id^=interaction-row-]")
    expect(rows).to_have_count(len(flagged))
    shown = {
        (rows.nth(n).get_attribute("id") or "")[len("interaction-row-") :]
        for n in range(len(flagged))
    }
    assert shown == flagged
    expect(page.locator("details.more-filters")).to_have_attribute("open", "")
    expect(page.locator("#filter-eval_flag")).to_have_value("hallucination")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console-interactions-scores.png"), animations="disabled")
    low = {j.interaction_id for j in planted if j.mean is not None and j.mean <= 65}
    page.goto("/admin/interactions?last=24h&max_score=65&limit=100")
    expect(rows).to_have_count(len(low))
    expect(page.locator("#filter-max_score")).to_have_value("65")
    # a bad score is the page's 400, the field marked and the reason given
    page_watch.expect_error(r"status of 400")
    response = page.goto("/admin/interactions?last=24h&min_score=140")
    assert response is not None and response.status == 400
    expect(page.locator("#filters-error")).to_contain_text("min_score")
