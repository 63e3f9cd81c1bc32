"""A made report sent to real local recipients: aiosmtpd receives the email (parsed: its
summary and the attached files byte for byte), an HTTP receiver checks the webhook's signature
and payload, a Slack-shaped receiver checks the message; a recipient that hangs delays no
other, and a PagerDuty channel is refused with a reason."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from telemetry.alerts import ChannelConfig, DeliveryResult
from telemetry.reports.delivery_send import send_report
from tests.report_document_sample import sample_document
from tests.telemetry.alerts.receivers import Receiver, Reply, slack_check, webhook_check
from tests.telemetry.alerts.smtp_server import SmtpHandler, start_smtp
from tests.telemetry.reports.report_recipients import (
    CONSOLE,
    CSV,
    INSTANCE_ID,
    JSON,
    MASTER_KEY,
    SECRET,
    WORKSPACE,
    email_channel,
    report_files,
    slack_channel,
    webhook_channel,
)

HANG_S = 2.0


async def send(channels: list[ChannelConfig]) -> list[DeliveryResult]:
    return await send_report(
        instance_id=INSTANCE_ID,
        document=sample_document(workspace_name=WORKSPACE),
        files=report_files(),
        channels=channels,
        console_url=CONSOLE + "/",
        master_key=MASTER_KEY,
    )


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    server = await Receiver(webhook_check(SECRET), problem_status=401).start()
    yield server
    await server.close()


@pytest.fixture
async def slack() -> AsyncIterator[Receiver]:
    server = await Receiver(slack_check).start()
    yield server
    await server.close()


def _part(message: EmailMessage, content_type: str) -> str:
    body = message.get_body(preferencelist=(content_type.split("/")[1],))
    assert body is not None and body.get_content_type() == content_type
    return str(body.get_content()).replace("\r\n", "\n")


async def test_the_email_has_the_summary_and_every_file_attached() -> None:
    handler = SmtpHandler()
    controller = start_smtp(handler)
    try:
        [result] = await send([email_channel(controller.port)])
    finally:
        controller.stop()
    assert result.status == "sent", result.error
    assert result.smtp_reply is not None and result.smtp_reply.startswith("250")
    [delivered] = handler.messages
    assert delivered.rcpt_tos == ["finance@example.com", "cfo@example.com"]
    message = delivered.message
    assert message["Subject"] == (
        f"[Steerway] Weekly summary: {WORKSPACE}, 2026-11-30 to 2026-12-06 (Europe/Berlin)"
    )
    assert message["X-Steerway-Report-Instance"] == INSTANCE_ID
    assert message.get_content_type() == "multipart/mixed"
    text = _part(message, "text/plain")
    assert "Cost: $1,482.0375 (+19.9 % against the previous period)\n" in text
    assert "Requests: 264,913 (-6.0 % against the previous period)\n" in text
    assert "Error rate: 1.7 % (+43.0 % against the previous period)\n" in text
    assert "Tokens: 91,735,208 (no previous period)\n" in text
    assert f"Open in Steerway: {CONSOLE}/admin/reports#instance-{INSTANCE_ID}\n" in text
    html = _part(message, "text/html")
    assert "Acme &lt;Prod&gt; &amp; Co" in html and WORKSPACE not in html
    assert re.search(r">\$1,482\.0375</td><td[^>]*>\+19\.9 %</td>", html)
    attachments = {
        part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    }
    assert attachments == {
        "weekly-summary-2026-11-30.csv": ("text/csv", CSV),
        "weekly-summary-2026-11-30.json": ("application/json", JSON),
        "weekly-summary-2026-11-30.pdf": ("application/pdf", report_files()["pdf"]),
    }


async def test_the_webhook_is_signed_and_carries_figures_and_download_links(
    hook: Receiver,
) -> None:
    [result] = await send([webhook_channel(hook.url + "/reports")])
    assert result.status == "sent", result.error
    [received] = hook.received
    assert received.problem is None, "the signature checks out"
    assert received.headers["X-Steerway-Event"] == "report"
    body = received.json()
    assert body["event"] == "report.made"
    assert body["workspace_id"] == "ws-acme-prod"
    assert received.headers["X-Steerway-Delivery"] == body["delivery_id"]
    report = body["report"]
    assert report["instance_id"] == INSTANCE_ID
    assert report["title"] == "Weekly summary"
    assert report["workspace_name"] == WORKSPACE
    assert (report["start"], report["end"]) == ("2026-11-29T23:00:00Z", "2026-12-06T23:00:00Z")
    assert report["time_zone"] == "Europe/Berlin"
    cost = next(figure for figure in report["figures"] if figure["name"] == "cost")
    assert cost == {
        "name": "cost",
        "title": "Cost",
        "value": "1482.0375",
        "unit": "USD",
        "previous": "1236.5",
        "change_pct": 19.855,
        "text": "$1,482.0375",
    }
    files = {item["format"]: item for item in report["files"]}
    assert sorted(files) == ["csv", "json", "pdf"]
    assert files["pdf"]["url"] == (f"{CONSOLE}/admin/api/reports/instances/{INSTANCE_ID}/files/pdf")
    assert files["csv"]["size"] == len(CSV)
    assert report["console_url"] == f"{CONSOLE}/admin/reports#instance-{INSTANCE_ID}"


async def test_a_wrong_signing_secret_is_refused_by_the_receiver(hook: Receiver) -> None:
    other = await Receiver(webhook_check("some-other-secret"), problem_status=401).start()
    try:
        [result] = await send([webhook_channel(other.url)])
    finally:
        await other.close()
    assert result.status == "failed"
    assert result.http_status == 401
    assert SECRET not in (result.error or "")


async def test_slack_gets_the_headline_figures_and_a_link(slack: Receiver) -> None:
    [result] = await send([slack_channel(slack.url)])
    assert result.status == "sent", result.error
    [received] = slack.received
    assert received.problem is None
    assert received.path == "/services/T1/B1/secret-token"
    message = received.json()
    assert message["text"].startswith(
        "Weekly summary · Acme &lt;Prod&gt; &amp; Co, 2026-11-30 to 2026-12-06 (Europe/Berlin): "
        "Cost: $1,482.0375 (+19.9 % against the previous period)"
    )
    blocks = message["attachments"][0]["blocks"]
    fields = [field["text"] for block in blocks for field in block.get("fields", [])]
    assert "*Cost*\n$1,482.0375  (+19.9 %)" in fields
    assert "*Tokens*\n91,735,208" in fields
    [button] = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["url"] == f"{CONSOLE}/admin/reports#instance-{INSTANCE_ID}"


async def test_a_hanging_recipient_delays_no_other(hook: Receiver, slack: Receiver) -> None:
    hanging = await Receiver().start()
    hanging.script = [Reply(200, delay=10)]
    handler = SmtpHandler()
    controller = start_smtp(handler)
    pagerduty = ChannelConfig(
        kind="pagerduty",
        name="pager",
        settings={"events_url": hanging.url + "/v2/enqueue"},
        secrets={"routing_key": "${REPORT_TEST_ROUTING_KEY}"},
    )
    channels = [
        webhook_channel(hanging.url, timeout_s=HANG_S, max_attempts=1),
        webhook_channel(hook.url),
        slack_channel(slack.url),
        email_channel(controller.port),
        pagerduty,
    ]
    try:
        start = time.monotonic()
        results = await send(channels)
        elapsed = time.monotonic() - start
    finally:
        controller.stop()
        await hanging.close()
    assert [r.status for r in results] == ["failed", "sent", "sent", "sent", "failed"]
    assert results[0].error == f"no answer within {HANG_S:g} s (attempt 1 of 1)"
    assert results[4].error == "a pagerduty channel takes no reports (only email, slack, webhook)"
    assert results[4].attempts == 0
    arrivals = [hook.received[0].at, slack.received[0].at, handler.messages[0].at]
    assert max(arrivals) - start < HANG_S
    assert HANG_S <= elapsed < 10
    await asyncio.sleep(0)
