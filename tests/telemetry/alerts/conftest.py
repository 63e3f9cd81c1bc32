from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from telemetry.alerts import Notification, fingerprint_of
from telemetry.alerts.http_client import close_shared_client
from tests.telemetry.alerts.alert_history import SECRET
from tests.telemetry.alerts.receivers import Receiver, webhook_check

MASTER_KEY = "test-master-key-for-channels"
STARTED = datetime(2026, 12, 6, 21, 30, 5, tzinfo=UTC)


def alert(**changes: object) -> Notification:
    labels = {"model": "gpt-4o-mini", "provider": "openai"}
    fields: dict[str, object] = {
        "rule_id": "rule-7",
        "rule_name": "Error rate",
        "severity": "critical",
        "state": "firing",
        "fingerprint": fingerprint_of("rule-7", labels),
        "summary": "Error rate 7.5 % on <script>alert(1)</script> & friends",
        "started_at": STARTED,
        "workspace_id": "ws-1",
        "labels": labels,
        "value": 7.5,
        "threshold": 5.0,
        "unit": "%",
        "console_url": "https://steerway.example/admin/alerts/01abc?x=1&y=2",
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A plain receiver; tests set its `check` when they need one."""
    server = await Receiver().start()
    yield server
    await server.close()


@pytest.fixture(autouse=True)
async def _close_client() -> AsyncIterator[None]:
    yield
    await close_shared_client()


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    """A webhook receiver that checks the signature made with `alert_history.SECRET`."""
    server = await Receiver(webhook_check(SECRET), problem_status=401).start()
    yield server
    await server.close()
