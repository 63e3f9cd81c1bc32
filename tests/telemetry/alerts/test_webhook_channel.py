"""The webhook channel against a real receiver that checks its signature the documented way."""

from __future__ import annotations

import re
import time
from pathlib import Path

from telemetry.alerts import ChannelConfig, deliver
from telemetry.alerts import test_message as send_test_message
from telemetry.alerts.channel_config import seal_secrets
from tests.telemetry.alerts.conftest import MASTER_KEY, alert
from tests.telemetry.alerts.receivers import Receiver, Reply, webhook_check

SECRET = "whsec-correct-horse-battery"


def webhook(url: str, secret: str = SECRET, **settings: object) -> ChannelConfig:
    return ChannelConfig(
        kind="webhook",
        name="ops hook",
        settings={"url": url, "backoff_s": 0.01, "backoff_max_s": 0.05, **settings},
        secrets=seal_secrets({"signing_secret": secret}, master_key=MASTER_KEY),
    )


async def send(channel: ChannelConfig, **changes: object):
    return await deliver(channel, alert(**changes), master_key=MASTER_KEY)


async def test_delivers_the_signed_versioned_payload(receiver: Receiver) -> None:
    receiver.check = webhook_check(SECRET)
    result = await send(webhook(receiver.url + "/hooks/steerway"))

    assert (result.status, result.attempts, result.http_status, result.error) == (
        "sent",
        1,
        200,
        None,
    )
    [request] = receiver.received
    assert request.problem is None
    assert request.path == "/hooks/steerway"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Steerway-Payload-Version"] == "1"
    assert abs(int(request.headers["X-Steerway-Timestamp"]) - time.time()) < 60
    payload = request.json()
    assert payload["version"] == "1"
    assert payload["event"] == "alert.firing"
    assert payload["delivery_id"] == request.headers["X-Steerway-Delivery"]
    assert payload["workspace_id"] == "ws-1"
    assert payload["test"] is False
    assert payload["alert"] == {
        "rule_id": "rule-7",
        "rule_name": "Error rate",
        "severity": "critical",
        "state": "firing",
        "fingerprint": alert().fingerprint,
        "summary": "Error rate 7.5 % on <script>alert(1)</script> & friends",
        "labels": {"model": "gpt-4o-mini", "provider": "openai"},
        "value": 7.5,
        "threshold": 5.0,
        "unit": "%",
        "started_at": "2026-12-06T21:30:05Z",
        "ended_at": None,
        "console_url": "https://steerway.example/admin/alerts/01abc?x=1&y=2",
    }
    assert result.fingerprint == alert().fingerprint


async def test_resolved_event(receiver: Receiver) -> None:
    receiver.check = webhook_check(SECRET)
    ended = alert().started_at.replace(minute=45)
    result = await send(webhook(receiver.url), state="resolved", ended_at=ended)
    assert result.status == "sent"
    payload = receiver.received[0].json()
    assert (payload["event"], payload["alert"]["state"]) == ("alert.resolved", "resolved")
    assert payload["alert"]["ended_at"] == "2026-12-06T21:45:05Z"


async def test_a_wrong_signing_secret_is_caught_by_the_receiver(receiver: Receiver) -> None:
    receiver.check = webhook_check(SECRET)
    receiver.problem_status = 401
    result = await send(webhook(receiver.url, secret="whsec-someone-elses"))

    assert [r.problem for r in receiver.received] == ["bad signature"]
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 401)
    assert result.error == "HTTP 401: bad signature (not retried)"


async def test_retries_a_503_then_succeeds_with_the_same_delivery(receiver: Receiver) -> None:
    receiver.check = webhook_check(SECRET)
    receiver.script = [Reply(503, "busy"), Reply(503, "busy")]
    result = await send(webhook(receiver.url))

    assert (result.status, result.attempts, result.http_status) == ("sent", 3, 200)
    assert len(receiver.received) == 3
    assert all(r.problem is None for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1
    assert len({r.headers["X-Steerway-Delivery"] for r in receiver.received}) == 1


async def test_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.script = [Reply(502, "bad gateway")] * 5
    result = await send(webhook(receiver.url, max_attempts=3))
    assert (result.status, result.attempts, result.http_status) == ("failed", 3, 502)
    assert result.error == "HTTP 502: bad gateway (attempt 3 of 3)"
    assert len(receiver.received) == 3


async def test_no_retry_on_a_400(receiver: Receiver) -> None:
    receiver.script = [Reply(400, "unknown field 'alert'")]
    result = await send(webhook(receiver.url))
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 400)
    assert result.error == "HTTP 400: unknown field 'alert' (not retried)"
    assert len(receiver.received) == 1


async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script = [Reply(307, "", headers={"Location": "http://127.0.0.1:9/elsewhere"})]
    result = await send(webhook(receiver.url))
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 307)


async def test_retry_after_is_honoured(receiver: Receiver) -> None:
    receiver.script = [Reply(429, "slow down", headers={"Retry-After": "1"})]
    result = await send(webhook(receiver.url))

    assert (result.status, result.attempts) == ("sent", 2)
    first, second = receiver.received
    # The backoff alone would have waited at most 10 ms.
    assert second.at - first.at >= 0.95


async def test_a_retry_after_over_the_limit_ends_the_delivery(receiver: Receiver) -> None:
    receiver.script = [Reply(503, "maintenance", headers={"Retry-After": "120"})]
    result = await send(webhook(receiver.url, retry_after_max_s=5))
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 503)
    assert result.error == (
        "HTTP 503: maintenance; Retry-After 120 s is over the channel's 5 s limit"
    )


async def test_a_receiver_that_does_not_answer_times_out(receiver: Receiver) -> None:
    receiver.script = [Reply(200, delay=3), Reply(200, delay=3)]
    result = await send(webhook(receiver.url, timeout_s=0.3, max_attempts=2))
    assert (result.status, result.attempts, result.http_status) == ("failed", 2, None)
    assert result.error == "no answer within 0.3 s (attempt 2 of 2)"
    assert len(receiver.received) == 2


async def test_the_deadline_bounds_the_whole_delivery(receiver: Receiver) -> None:
    receiver.script = [Reply(200, delay=3)]
    result = await send(webhook(receiver.url, timeout_s=10, deadline_s=0.5))
    assert (result.status, result.attempts) == ("failed", 1)
    waited = re.fullmatch(
        r"no answer within (\d+\.\d+) s; not retried: "
        r"the next attempt would start after the delivery deadline",
        result.error or "",
    )
    assert waited is not None, result.error
    # The attempt waited what was left of the half-second deadline, not its 10 s timeout.
    assert 0 < float(waited.group(1)) <= 0.5
    assert result.duration_ms < 3000


async def test_a_retry_that_would_pass_the_deadline_is_not_made(receiver: Receiver) -> None:
    receiver.script = [Reply(503, "busy", headers={"Retry-After": "2"})]
    result = await send(webhook(receiver.url, deadline_s=1))
    assert (result.status, result.attempts) == ("failed", 1)
    assert result.error == (
        "HTTP 503: busy; not retried: the next attempt would start after the delivery deadline"
    )


async def test_connection_refused_is_retried_then_reported() -> None:
    result = await send(webhook("http://127.0.0.1:9/hook", max_attempts=2))
    assert (result.status, result.attempts, result.http_status) == ("failed", 2, None)
    assert result.error is not None
    assert result.error.startswith("connection failed: ConnectError")
    assert result.error.endswith("(attempt 2 of 2)")


async def test_the_test_action_sends_a_marked_test(receiver: Receiver) -> None:
    receiver.check = webhook_check(SECRET)
    result = await send_test_message(
        webhook(receiver.url),
        workspace_id="ws-9",
        console_url="https://steerway.example/admin/channels",
        master_key=MASTER_KEY,
    )
    assert result.status == "sent"
    payload = receiver.received[0].json()
    assert payload["test"] is True
    assert payload["workspace_id"] == "ws-9"
    assert payload["alert"]["rule_name"] == "Test notification"
    assert payload["alert"]["console_url"] == "https://steerway.example/admin/channels"


async def test_the_url_may_be_a_secret(receiver: Receiver) -> None:
    receiver.check = webhook_check(SECRET)
    channel = ChannelConfig(
        kind="webhook",
        name="tokened",
        secrets=seal_secrets(
            {"signing_secret": SECRET, "url": receiver.url + "/in/tok-5f2b9c0d1e"},
            master_key=MASTER_KEY,
        ),
    )
    result = await send(channel)
    assert result.status == "sent"
    assert receiver.received[0].path == "/in/tok-5f2b9c0d1e"
    assert "tok-5f2b9c0d1e" not in repr(channel)


def _documented_verifier():
    """The verification example of docs/alerts.md, as printed there."""
    text = (Path(__file__).parents[3] / "docs" / "alerts.md").read_text()
    code = re.search(r"```python\n(import hashlib.*?def verify_steerway.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(code[1], namespace)
    return namespace["verify_steerway"]


async def test_the_documented_verification_accepts_a_delivery(receiver: Receiver) -> None:
    result = await send(webhook(receiver.url))
    assert result.status == "sent"
    [request] = receiver.received
    verify_steerway = _documented_verifier()
    assert verify_steerway(SECRET, request.headers, request.body) is True
    assert verify_steerway("whsec-other", request.headers, request.body) is False
    assert verify_steerway(SECRET, request.headers, request.body + b"\n") is False
