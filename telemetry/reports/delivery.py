"""Delivering a made report to its recipients, the notification channels of its definition
(email, webhook, Slack; delivery_send.py), and keeping each recipient's outcome on the report's
instance, where the console and the admin API show it (delivery_record.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.channel_config import ChannelConfig
from telemetry.alerts.channel_store import get_channel
from telemetry.alerts.delivery import DeliveryResult
from telemetry.reports.delivery_record import record_deliveries
from telemetry.reports.delivery_send import send_report
from telemetry.reports.document import ReportDocument
from telemetry.reports.runner import Deliver
from telemetry.reports.store import ReportInstance, get_definition


async def deliver_report(
    engine: AsyncEngine,
    *,
    instance_id: str,
    document: ReportDocument,
    files: Mapping[str, bytes],
    channels: Sequence[ChannelConfig],
    console_url: str,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> list[DeliveryResult]:
    """Send the report to every channel, then keep the results on its instance."""
    results = await send_report(
        instance_id=instance_id,
        document=document,
        files=files,
        channels=channels,
        console_url=console_url,
        environ=environ,
        master_key=master_key,
    )
    await record_deliveries(engine, instance_id, results)
    return results


async def recipients(engine: AsyncEngine, instance: ReportInstance) -> list[ChannelConfig]:
    """The channels the instance's definition names, those still in its workspace, in order."""
    definition = await get_definition(engine, instance.definition_id)
    if definition is None:
        return []
    found = [await get_channel(engine, channel_id) for channel_id in definition.recipient_ids]
    return [
        stored.channel
        for stored in found
        if stored is not None and stored.workspace_id == instance.workspace_id
    ]


def delivery_to_recipients(engine: AsyncEngine, *, console_url: str) -> Deliver:
    """The runner's `deliver`: a made report to its definition's recipients, the outcome kept
    on the instance. A report without recipients is left undelivered (`deliveries` None)."""

    async def deliver(
        instance: ReportInstance, document: ReportDocument, files: Mapping[str, bytes]
    ) -> None:
        channels = await recipients(engine, instance)
        if not channels:
            return
        await deliver_report(
            engine,
            instance_id=instance.id,
            document=document,
            files=files,
            channels=channels,
            console_url=console_url,
        )

    return deliver
