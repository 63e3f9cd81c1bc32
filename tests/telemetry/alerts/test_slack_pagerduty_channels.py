"""Slack and PagerDuty channels against receivers shaped like the real services."""

from __future__ import annotations

import pytest

from telemetry.alerts import ChannelConfig, deliver
from telemetry.alerts.channel_config import seal_secrets
from tests.telemetry.alerts.conftest import MASTER_KEY, alert
from tests.telemetry.alerts.receivers import (
    Receiver,
    Reply,
    pagerduty_accepted,
    pagerduty_check,
    slack_check,
)

ROUTING_KEY = "R0UT1NGKEYabcdef0123456789abcdef"
FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}


def slack(receiver: Receiver) -> ChannelConfig:
    return ChannelConfig(
        kind="slack",
        name="#alerts",
        settings=FAST,
        secrets=seal_secrets(
            {"webhook_url": f"{receiver.url}/services/T000/B000/XXXXsecretXXXX"},
            master_key=MASTER_KEY,
        ),
    )


def pagerduty(receiver: Receiver, **settings: object) -> ChannelConfig:
    return ChannelConfig(
        kind="pagerduty",
        name="on-call",
        settings={"events_url": f"{receiver.url}/v2/enqueue", **FAST, **settings},
        secrets={"routing_key": "${TEST_PD_ROUTING_KEY}"},
    )


PD_ENV = {"TEST_PD_ROUTING_KEY": ROUTING_KEY}


async def test_slack_message_blocks_and_fallback(receiver: Receiver) -> None:
    receiver.check = slack_check
    result = await deliver(slack(receiver), alert(), master_key=MASTER_KEY)

    assert (result.status, result.attempts, result.http_status) == ("sent", 1, 200)
    [request] = receiver.received
    assert request.problem is None
    assert request.path == "/services/T000/B000/XXXXsecretXXXX"
    message = request.json()
    summary = "Error rate 7.5 % on &lt;script&gt;alert(1)&lt;/script&gt; &amp; friends"
    assert message["text"] == (
        f":red_circle: [FIRING · critical] Error rate: {summary} (value 7.5 %, threshold 5 %)"
    )
    [attachment] = message["attachments"]
    assert attachment["color"] == "#d92d20"
    header, text, facts, labels, actions = attachment["blocks"]
    assert header["text"]["text"] == "[FIRING · critical] Error rate"
    assert text["text"]["text"] == f":red_circle: {summary}"
    assert [field["text"] for field in facts["fields"]] == [
        "*Severity*\ncritical",
        "*State*\nfiring",
        "*Value*\n7.5 %",
        "*Threshold*\n5 %",
        "*Started*\n2026-12-06 21:30:05 UTC",
    ]
    assert labels["elements"][0]["text"] == "`model=gpt-4o-mini`  `provider=openai`"
    [button] = actions["elements"]
    assert button["url"] == "https://steerway.example/admin/alerts/01abc?x=1&y=2"
    assert button["text"]["text"] == "Open in Steerway"


async def test_slack_resolved_is_green_and_lists_the_end(receiver: Receiver) -> None:
    receiver.check = slack_check
    ended = alert().started_at.replace(hour=22)
    result = await deliver(
        slack(receiver),
        alert(state="resolved", ended_at=ended, labels={}, console_url=""),
        master_key=MASTER_KEY,
    )
    assert result.status == "sent"
    [attachment] = receiver.received[0].json()["attachments"]
    assert attachment["color"] == "#12b76a"
    assert [block["type"] for block in attachment["blocks"]] == ["header", "section", "section"]
    assert attachment["blocks"][0]["text"]["text"] == "[RESOLVED] Error rate"
    assert attachment["blocks"][2]["fields"][-1]["text"] == "*Ended*\n2026-12-06 22:30:05 UTC"


async def test_slack_long_rule_name_stays_within_the_header_limit(receiver: Receiver) -> None:
    receiver.check = slack_check
    result = await deliver(slack(receiver), alert(rule_name="x" * 400), master_key=MASTER_KEY)
    assert result.status == "sent"
    assert receiver.received[0].problem is None


async def test_slack_retries_a_500(receiver: Receiver) -> None:
    receiver.check = slack_check
    receiver.script = [Reply(500, "internal_error")]
    result = await deliver(slack(receiver), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts, result.http_status) == ("sent", 2, 200)


async def test_pagerduty_trigger_event(receiver: Receiver) -> None:
    receiver.check = pagerduty_check(ROUTING_KEY)
    receiver.script = [pagerduty_accepted(alert().fingerprint)]
    channel = pagerduty(receiver, source="gateway-eu-1", component="upstream", group="prod")
    result = await deliver(channel, alert(), environ=PD_ENV)

    assert (result.status, result.attempts, result.http_status) == ("sent", 1, 202)
    [request] = receiver.received
    assert request.problem is None
    assert request.path == "/v2/enqueue"
    event = request.json()
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == alert().fingerprint
    assert event["payload"] == {
        "summary": "Error rate: Error rate 7.5 % on <script>alert(1)</script> & friends",
        "severity": "critical",
        "source": "gateway-eu-1",
        "timestamp": "2026-12-06T21:30:05Z",
        "class": "Error rate",
        "component": "upstream",
        "group": "prod",
        "custom_details": {
            "rule_id": "rule-7",
            "workspace_id": "ws-1",
            "value": 7.5,
            "threshold": 5.0,
            "unit": "%",
            "labels": {"model": "gpt-4o-mini", "provider": "openai"},
            "fingerprint": alert().fingerprint,
            "test": False,
        },
    }
    assert event["links"] == [
        {"href": "https://steerway.example/admin/alerts/01abc?x=1&y=2", "text": "Open in Steerway"}
    ]


async def test_pagerduty_resolve_closes_the_same_incident(receiver: Receiver) -> None:
    receiver.check = pagerduty_check(ROUTING_KEY)
    result = await deliver(pagerduty(receiver), alert(state="resolved"), environ=PD_ENV)
    assert result.status == "sent"
    assert receiver.received[0].json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": alert().fingerprint,
    }


async def test_pagerduty_warning_severity(receiver: Receiver) -> None:
    receiver.check = pagerduty_check(ROUTING_KEY)
    result = await deliver(pagerduty(receiver), alert(severity="warning"), environ=PD_ENV)
    assert result.status == "sent"
    assert receiver.received[0].json()["payload"]["severity"] == "warning"


@pytest.mark.parametrize(("status", "attempts"), [(429, 2), (400, 1)])
async def test_pagerduty_throttling_is_retried_and_refusal_is_not(
    receiver: Receiver, status: int, attempts: int
) -> None:
    receiver.script = [Reply(status, '{"status":"throttled"}'), pagerduty_accepted("x")]
    result = await deliver(pagerduty(receiver), alert(), environ=PD_ENV)
    assert result.attempts == attempts
    assert result.status == ("sent" if status == 429 else "failed")
    assert len(receiver.received) == attempts


async def test_pagerduty_wrong_routing_key_is_refused(receiver: Receiver) -> None:
    receiver.check = pagerduty_check("another-routing-key")
    result = await deliver(pagerduty(receiver), alert(), environ=PD_ENV)
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 400)
    assert result.error == (
        'HTTP 400: {"status":"invalid event","message":"Invalid routing key"} (not retried)'
    )
