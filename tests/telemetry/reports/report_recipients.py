"""A made report and channels to real local receivers, for the delivery tests."""

from __future__ import annotations

from functools import cache

from admin_ui.report_pdf import render_pdf
from telemetry.alerts import ChannelConfig
from telemetry.alerts.channel_config import seal_secrets
from tests.report_document_sample import sample_document

MASTER_KEY = "test-master-key-for-report-recipients"
SECRET = "whsec-reports-9f3a71"
INSTANCE_ID = "0193a1b2c3d4e5f60718293a4b5c6d7e"
CONSOLE = "https://steerway.example"
WORKSPACE = "Acme <Prod> & Co"
"""A name with markup in it: every message must escape it for where it goes."""
CSV = b"section,name,value\r\nsummary,cost,1482.0375\r\n"
JSON = b'{"title":"Weekly summary","figures":{"cost":"1482.0375"}}'


@cache
def report_files() -> dict[str, bytes]:
    return {"csv": CSV, "json": JSON, "pdf": render_pdf(sample_document(workspace_name=WORKSPACE))}


def email_channel(port: int, **settings: object) -> ChannelConfig:
    return ChannelConfig(
        kind="email",
        name="finance mail",
        settings={
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "from_address": "reports@steerway.example",
            "to": ["finance@example.com", "cfo@example.com"],
            **settings,
        },
    )


def webhook_channel(url: str, **settings: object) -> ChannelConfig:
    sealed = seal_secrets({"signing_secret": SECRET}, master_key=MASTER_KEY)
    return ChannelConfig(
        kind="webhook", name="finance hook", settings={"url": url, **settings}, secrets=sealed
    )


def slack_channel(url: str) -> ChannelConfig:
    sealed = seal_secrets(
        {"webhook_url": url + "/services/T1/B1/secret-token"}, master_key=MASTER_KEY
    )
    return ChannelConfig(kind="slack", name="finance slack", secrets=sealed)
