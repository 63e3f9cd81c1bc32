"""The Reports page in a real browser: the workspace's definitions with their schedule in words,
time zone, next run and recipients; "Run now" (a CSRF form, reached with the keyboard) makes the
report in the gateway, which renders its PDF and sends it to a signed webhook; the new report's
row has its download links (the PDF read back with pdftotext) and its delivery's outcome; the
run is in the audit log."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import PageWatch
from tests.console.views import WIDE, keyboard_to, look_at
from tests.e2e.conftest import GatewayProcess
from tests.poppler import pdf_text
from tests.ports import free_port

SECRET = "whsec-console-reports-51c0"
REPORT = "Finance weekly"
RUN_TIMEOUT_MS = 40_000


@dataclass
class Hook:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def signed(self, headers: dict[str, str], body: bytes) -> bool:
        timestamp = headers["X-Steerway-Timestamp"]
        digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(f"sha256={digest.hexdigest()}", headers["X-Steerway-Signature"])


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A webhook receiver in a thread on 127.0.0.1, answering 204 and keeping what it got."""
    port = free_port()
    found = Hook(url=f"http://127.0.0.1:{port}/reports")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


def _definition(gateway: GatewayProcess, hook: Hook) -> str:
    with gateway.http() as http:
        channel = http.post(
            "/admin/api/alerts/channels",
            json={
                "kind": "webhook",
                "name": "finance hook",
                "settings": {"url": hook.url},
                "secrets": {"signing_secret": SECRET},
            },
        )
        assert channel.status_code == 201, channel.text
        made = http.post(
            "/admin/api/reports",
            json={
                "name": REPORT,
                "sections": ["summary", "cost", "latency_errors"],
                "range": "last_7d",
                "schedule": "0 7 * * 1",
                "time_zone": "Europe/Berlin",
                "recipients": [channel.json()["id"]],
                "formats": ["pdf", "csv", "json"],
            },
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])


def test_run_now_makes_delivers_and_lists_the_report(
    console_gateway: GatewayProcess,
    sign_in: Callable[..., BrowserContext],
    page_watch: PageWatch,
    docs_screenshot: Callable[..., Path],
    hook: Hook,
    tmp_path: Path,
) -> None:
    definition_id = _definition(console_gateway, hook)
    page: Page = sign_in(viewport=WIDE).new_page()
    page.goto("/admin/reports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    expect(page.locator('nav.sidebar a[aria-current="page"]')).to_have_text("Reports")
    panel = page.locator(f"#report-{definition_id}")
    expect(panel.locator("h2")).to_have_text(REPORT)
    facts = panel.locator(".report-facts")
    expect(facts).to_contain_text("Mondays at 07:00")
    expect(facts).to_contain_text("Europe/Berlin")
    expect(facts).to_contain_text("finance hook webhook")
    expect(facts).to_contain_text("Summary")
    expect(facts).to_contain_text("Latency and errors")
    expect(facts.locator("dd").nth(2)).to_contain_text(" CE")  # next run, in Berlin time
    expect(panel.locator(f"#no-instances-{definition_id}")).to_be_visible()
    weekly = page.locator("section.report", has_text="Weekly summary")
    expect(weekly.locator(".tag", has_text="built in")).to_be_visible()

    # "Run now" with the keyboard: the form posts with the session's CSRF token.
    keyboard_to(page, f"#run-{definition_id}")
    page.keyboard.press("Enter")
    # made before the answer: the report's queries, and the PDF library's first import
    expect(page.locator("#notice")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    row = panel.locator("table.report-instances tbody tr").first
    expect(row).to_have_class("row-highlight")
    expect(row.locator(".badge").first).to_have_text("done")
    expect(row.locator("td").nth(2)).to_contain_text("manual")
    expect(row.locator("td").first).to_contain_text(" CE")  # made, in the report's zone
    expect(row.locator("td").last).to_contain_text("sent finance hook")

    # the webhook got the report, signed, with the links the page offers
    assert len(hook.received) == 1
    headers, body = hook.received[0]
    assert headers["X-Steerway-Event"] == "report"
    assert hook.signed(headers, body)
    instance_id = (row.get_attribute("id") or "").removeprefix("instance-")
    assert instance_id and instance_id.encode() in body

    links = {
        fmt: row.locator(f"#download-{instance_id}-{fmt}").get_attribute("href")
        for fmt in ("pdf", "csv", "json")
    }
    assert links["pdf"] == f"/admin/api/reports/instances/{instance_id}/files/pdf"
    pdf = page.request.get(str(links["pdf"]))
    assert pdf.ok and pdf.body().startswith(b"%PDF-")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.body())
    text = pdf_text(path)
    assert REPORT in text and "Page 1 of " in text and "Workspace" in text
    csv = page.request.get(str(links["csv"]))
    assert csv.ok and csv.body()

    with console_gateway.http() as http:
        item = http.get(f"/admin/api/reports/instances/{instance_id}").json()
        audit = http.get("/admin/api/audit", params={"action": "report.run"}).json()["data"]
    [outcome] = item["deliveries"]
    assert (outcome["channel_name"], outcome["kind"], outcome["status"]) == (
        "finance hook",
        "webhook",
        "sent",
    )
    assert outcome["http_status"] == 204 and SECRET not in str(item)
    assert [entry["target_id"] for entry in audit if entry["action"] == "report.run"] == [
        definition_id
    ]

    page.evaluate("window.scrollTo(0, 0)")  # the run's answer opened at the new row
    look_at(page, docs_screenshot, "reports", ["light"])
