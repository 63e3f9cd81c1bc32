"""Every channel at once: a channel that never answers holds back none of the others, and the
whole call ends with the hanging channel's own timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from telemetry.alerts import ChannelConfig, deliver_all
from telemetry.alerts.channel_config import seal_secrets
from tests.telemetry.alerts.conftest import MASTER_KEY, alert
from tests.telemetry.alerts.receivers import (
    Receiver,
    Reply,
    pagerduty_check,
    slack_check,
    webhook_check,
)
from tests.telemetry.alerts.smtp_server import SmtpHandler, start_smtp

HANG_TIMEOUT_S = 3.0
SECRET = "whsec-all-at-once-1234"
ROUTING_KEY = "pd-all-at-once-routing"


@pytest.fixture
async def silent_smtp() -> AsyncIterator[int]:
    """Accepts connections and never says a word (not even the greeting)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hanging_channel_does_not_delay_the_others(silent_smtp: int) -> None:
    receivers = [
        await Receiver(check).start()
        for check in (
            None,
            webhook_check(SECRET),
            slack_check,
            pagerduty_check(ROUTING_KEY),
        )
    ]
    hanging, hook, slack, pagerduty = receivers
    hanging.script = [Reply(200, delay=10)]
    smtp = SmtpHandler()
    controller = start_smtp(smtp)
    sealed = seal_secrets(
        {"signing_secret": SECRET, "webhook_url": slack.url + "/services/T1/B1/tok"},
        master_key=MASTER_KEY,
    )
    hang = {"timeout_s": HANG_TIMEOUT_S, "max_attempts": 1}
    mail = {
        "host": "127.0.0.1",
        "security": "plain",
        "from_address": "alerts@steerway.example",
        "to": ["oncall@example.com"],
    }
    channels = [
        ChannelConfig(
            kind="webhook",
            name="hanging hook",
            settings={"url": hanging.url, **hang},
            secrets={"signing_secret": sealed["signing_secret"]},
        ),
        ChannelConfig(
            kind="email",
            name="silent relay",
            settings={**mail, "port": silent_smtp, **hang},
        ),
        ChannelConfig(
            kind="webhook",
            name="hook",
            settings={"url": hook.url},
            secrets={"signing_secret": sealed["signing_secret"]},
        ),
        ChannelConfig(kind="slack", name="slack", secrets={"webhook_url": sealed["webhook_url"]}),
        ChannelConfig(
            kind="pagerduty",
            name="pd",
            settings={"events_url": pagerduty.url + "/v2/enqueue"},
            secrets={"routing_key": "${ALL_AT_ONCE_ROUTING_KEY}"},
        ),
        ChannelConfig(kind="email", name="relay", settings={**mail, "port": controller.port}),
    ]
    try:
        start = time.monotonic()
        results = await deliver_all(
            channels,
            alert(),
            environ={"ALL_AT_ONCE_ROUTING_KEY": ROUTING_KEY},
            master_key=MASTER_KEY,
        )
        elapsed = time.monotonic() - start
    finally:
        controller.stop()
        for receiver in receivers:
            await receiver.close()

    assert [r.channel_name for r in results] == [c.name for c in channels]
    assert [r.status for r in results] == ["failed", "failed", "sent", "sent", "sent", "sent"]
    for hung in results[:2]:
        assert hung.error == f"no answer within {HANG_TIMEOUT_S:g} s (attempt 1 of 1)"
        assert hung.duration_ms >= HANG_TIMEOUT_S * 1000
    arrivals = [r.received[0].at for r in (hook, slack, pagerduty)] + [smtp.messages[0].at]
    assert all(receiver.received[0].problem is None for receiver in (hook, slack, pagerduty))
    # Everything the working channels had to do was done before a hanging one gave up.
    assert max(arrivals) - start < HANG_TIMEOUT_S
    assert all(r.duration_ms < HANG_TIMEOUT_S * 1000 for r in results[2:])
    # The call lasted as long as the hanging channels' own timeout, not their receivers' 10 s.
    assert HANG_TIMEOUT_S <= elapsed < 10
