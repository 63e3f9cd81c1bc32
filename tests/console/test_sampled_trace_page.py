"""The trace page of a request sampling kept the figures of only (`telemetry.sampling`): it says
the spans, decisions and content were not kept instead of showing empty sections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from admin_ui.formatting import tokens
from telemetry.db import create_engine
from telemetry.records import TraceBundle
from telemetry.trace_sampling import TraceSampling
from telemetry.writers import BatchWriter
from tests.console.conftest import off_the_loop
from tests.e2e.conftest import GatewayProcess
from tests.telemetry import make_bundle
from tests.telemetry.test_summary import add_decision

WIDE = {"width": 1440, "height": 900}
PROMPT = "a question sampling does not keep"


def _write_sampled_out(database_url: str) -> TraceBundle:
    """A request written by the recorder's own writer with ratio 0 and nothing always kept."""
    bundle = make_bundle(started_at=time.time() - 5, prompt_tokens=1234, completion_tokens=56)
    bundle.interactions[0].prompt = [{"role": "user", "content": PROMPT}]
    add_decision(bundle, "rule_evaluation", "rules", rule_id="cheap-first", output={})

    async def write() -> None:
        engine = create_engine(database_url)
        try:
            sampling = TraceSampling(ratio=0.0, errors=False)
            await BatchWriter(engine, sampling=sampling).write([bundle])
        finally:
            await engine.dispose()

    off_the_loop(lambda: asyncio.run(write()))
    return bundle


def test_a_sampled_trace_says_its_spans_were_not_kept(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    bundle = _write_sampled_out(console_gateway.database.url)
    trace_id = bundle.trace.trace_id
    page = sign_in(viewport=WIDE).new_page()
    response = page.goto(f"/admin/traces/{trace_id}")
    assert response is not None and response.status == 200

    expect(page.locator(".title-badges")).to_contain_text("sampled")
    expect(page.locator(".callout", has_text="Sampled:")).to_contain_text("telemetry.sampling")
    spans = page.locator("section[aria-labelledby=waterfall-heading]")
    expect(spans.locator(".empty-title")).to_have_text("Spans not kept (sampled).")
    expect(spans.locator("svg.waterfall")).to_have_count(0)
    decisions = page.locator("section[aria-labelledby=decisions-heading]")
    expect(decisions.locator(".empty-title")).to_have_text("Decisions not kept (sampled).")
    # the rules that matched are summed up on the trace row before the decisions are dropped
    expect(page.locator("dl.facts div", has_text="Rules matched")).to_contain_text("cheap-first")
    expect(decisions).to_contain_text("the rules that matched are listed above")

    # the figures stay: the attempt with its tokens, without its content
    attempt = page.locator("article.interaction")
    expect(attempt).to_have_count(1)
    expect(attempt.locator("dl.metrics div", has_text="Prompt tokens").locator("dd")).to_have_text(
        tokens(1234)
    )
    expect(attempt).to_contain_text("Not kept: the request was sampled (telemetry.sampling).")
    assert PROMPT not in page.content()

    docs_screenshot(page, "trace-sampled")
