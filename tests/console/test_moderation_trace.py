"""A moderation guardrail's check on the trace page: its call in the waterfall with its
latency, its verdict among the decisions and its violation, never the text."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

import migrations
from tests.console.conftest import BrowserTestDatabase, console_config, off_the_loop
from tests.e2e.conftest import GatewayProcess, MockProcess

WIDE = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def console_gateway(
    mock_provider: MockProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("moderation-console")
    url = f"sqlite:///{tmp / 'steerway.db'}"
    off_the_loop(lambda: migrations.upgrade(url))
    config = console_config(mock_provider)
    config["guardrails"]["definitions"]["moderation"] = {
        "kind": "moderation",
        "provider": "mock",
        "model": "omni-moderation-latest",
        "direction": "both",
        "action": "log",
    }
    config["guardrails"]["default"] = ["moderation"]
    process = GatewayProcess(
        BrowserTestDatabase(url), config, tmp, master_key="sk-console-" + secrets.token_hex(8)
    )
    try:
        yield process
    finally:
        process.stop()


def test_the_moderation_check_on_the_trace_page(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    docs_screenshot: Callable[..., Path],
) -> None:
    stream = console_gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "why would anyone call me an idiot"}],
        stream=True,
    )
    for _ in stream.parse():
        pass
    trace_id = stream.headers["x-steerway-trace-id"]
    database = console_gateway.database
    database.wait_rows(
        "SELECT 1 FROM guardrail_violations WHERE trace_id = :t", count=2, t=trace_id
    )

    page = sign_in(viewport=WIDE).new_page()
    response = page.goto(f"/admin/traces/{trace_id}")
    assert response is not None and response.status == 200
    names = page.locator("svg.waterfall text.wf-name").all_text_contents()
    assert names.count("guardrails.moderation") == 2  # the input's call and the answer's
    hover = page.locator("svg.waterfall g.wf-row title").all_text_contents()
    moderation_hover = [text for text in hover if text.startswith("guardrails.moderation")]
    assert any("moderation.model = mock/omni-moderation-latest" in t for t in moderation_hover)
    assert all(" ms" in text for text in moderation_hover)
    decisions = page.locator("ol.decisions").inner_text()
    assert "harassment" in decisions
    violations = page.locator("section[aria-labelledby=violations-heading] table")
    expect(violations).to_contain_text("moderation")
    expect(violations).to_contain_text("harassment")
    docs_screenshot(page, "trace-moderation")
