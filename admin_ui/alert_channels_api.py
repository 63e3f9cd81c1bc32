"""`/admin/api/alerts/channels`: notification channels, listed, read, created, replaced,
deleted and sent a test notification. A channel is shown with its settings and which secrets
are set (a reference as written, a sealed value as `(sealed)`), never a secret's value."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put

from admin_ui import alerts_access as access
from admin_ui.alert_channels_body import channel_of
from admin_ui.openapi import Query, described, object_schema, text
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from gateway.errors import GatewayError
from telemetry.alerts import test_message
from telemetry.alerts.channel_store import (
    ChannelInUse,
    ChannelNameTaken,
    StoredChannel,
    add_channel,
    delete_channel,
    get_channel,
    list_channels,
    replace_channel,
)
from telemetry.alerts.kinds import KINDS
from telemetry.ids import uuid7_hex

AnyRequest = Request[Any, Any, Any]

FIELDS: Final = ("kind", "name", "settings", "secrets")
READ_ONLY: Final = ("object", "id", "workspace_id", "managed_by", "created_at", "updated_at")
_SECRETS: Final = object_schema()
_SECRETS["additionalProperties"] = {"type": ["string", "null"]}
_PROPERTIES: Final = {
    "kind": {"enum": list(KINDS)},
    "name": text(200),
    "settings": object_schema(),
    "secrets": _SECRETS,
}
CREATE_SCHEMA: Final = object_schema(
    {**_PROPERTIES, "workspace": text()}, required=("kind", "name")
)
UPDATE_SCHEMA: Final = object_schema(_PROPERTIES, required=("name",))
_ID_PATH: Final = (Query("channel_id", "The channel's id.", text(32)),)


def channel_item(stored: StoredChannel) -> dict[str, Any]:
    shown = stored.channel.redacted()
    return {
        "object": "alert_channel",
        "id": shown["id"],
        "workspace_id": stored.workspace_id,
        "kind": shown["kind"],
        "name": shown["name"],
        "settings": shown["settings"],
        "secrets": shown["secrets"],
        "managed_by": stored.managed_by,
        "created_at": iso_time(stored.created_at),
        "updated_at": iso_time(stored.updated_at),
    }


async def visible_channel(request: AnyRequest, channel_id: str) -> StoredChannel:
    found = None
    if access.is_id(channel_id):
        found = await get_channel(gateway_of(request).engine, channel_id)
    if found is None or not access.visible(request, found.workspace_id):
        raise access.not_found("channel", channel_id, "channel_id")
    return found


def _taken(name: str) -> GatewayError:
    return access.conflict(f"A channel named '{name[:200]}' exists in this workspace.", "name")


async def create_channel(request: AnyRequest, body: dict[str, Any]) -> dict[str, Any]:
    """Store the channel `body` describes in its workspace, with its audit entry; the channel
    as the API shows it. The API and the console's form alike."""
    workspace_id = await access.target_workspace(request, body.get("workspace"))
    channel = channel_of(body, channel_id=uuid7_hex())
    try:
        await add_channel(gateway_of(request).engine, channel, workspace_id)
    except ChannelNameTaken:
        raise _taken(channel.name) from None
    item = channel_item(await visible_channel(request, channel.id))
    await access.audit(
        request, "alert_channel.create", ("alert_channel", channel.id), workspace_id, after=item
    )
    return item


async def update_channel(
    request: AnyRequest, current: StoredChannel, body: dict[str, Any]
) -> dict[str, Any]:
    access.require_write(request, current.workspace_id)
    access.refuse_if_from_config("channel", current.managed_by)
    channel = channel_of(body, channel_id=current.channel.id, current=current.channel)
    try:
        await replace_channel(gateway_of(request).engine, channel)
    except ChannelNameTaken:
        raise _taken(channel.name) from None
    item = channel_item(await visible_channel(request, channel.id))
    await access.audit(
        request,
        "alert_channel.update",
        ("alert_channel", channel.id),
        current.workspace_id,
        before=channel_item(current),
        after=item,
    )
    return item


async def remove_channel(request: AnyRequest, current: StoredChannel) -> None:
    """Delete the channel, with its audit entry; 409 while a rule still notifies it or the
    config file keeps it."""
    access.require_write(request, current.workspace_id)
    access.refuse_if_from_config("channel", current.managed_by)
    try:
        await delete_channel(gateway_of(request).engine, current)
    except ChannelInUse as error:
        raise access.conflict(
            f"Rules still notify this channel: {error}; take it out of them first.",
            "channel_id",
        ) from None
    await access.audit(
        request,
        "alert_channel.delete",
        ("alert_channel", current.channel.id),
        current.workspace_id,
        before=channel_item(current),
    )


async def send_test(request: AnyRequest, current: StoredChannel) -> dict[str, Any]:
    """Send the channel a test notification now, with its audit entry; the delivery result."""
    access.require_write(request, current.workspace_id)
    result = await test_message(current.channel, workspace_id=current.workspace_id)
    shown: dict[str, Any] = msgspec.to_builtins(result)
    await access.audit(
        request,
        "alert_channel.test",
        ("alert_channel", current.channel.id),
        current.workspace_id,
        after={"status": result.status, "attempts": result.attempts},
    )
    return shown


class AlertChannelController(Controller):
    path = "/alerts/channels"

    @get(
        "/",
        operation_class=described(
            query=(Query("workspace", "Only this workspace's channels (id or slug).", text()),)
        ),
    )
    async def list_alert_channels(self, request: AnyRequest) -> dict[str, Any]:
        """The channels of the caller's workspaces (an operator: all), oldest first."""
        found = await list_channels(
            gateway_of(request).engine, await access.readable_workspaces(request)
        )
        return {"object": "list", "data": [channel_item(stored) for stored in found]}

    @get("/{channel_id:str}", operation_class=described(path=_ID_PATH))
    async def get_alert_channel(self, request: AnyRequest, channel_id: str) -> dict[str, Any]:
        return channel_item(await visible_channel(request, channel_id))

    @post("/", status_code=201, operation_class=described(body=CREATE_SCHEMA, conflict=True))
    async def create_alert_channel(self, request: AnyRequest) -> dict[str, Any]:
        """A new channel in `workspace` (the caller's own when left out). `secrets` maps each
        secret's name to a `${ENV_NAME}` reference or the secret itself, which is sealed
        before it is stored."""
        body = await access.body_fields(request, (*FIELDS, "workspace"), READ_ONLY)
        return await create_channel(request, body)

    @put(
        "/{channel_id:str}",
        operation_class=described(body=UPDATE_SCHEMA, path=_ID_PATH, conflict=True),
    )
    async def replace_alert_channel(self, request: AnyRequest, channel_id: str) -> dict[str, Any]:
        """Replace the channel's `name`, `settings` (kept when left out) and `kind`; `secrets`
        changes only those it names: a value replaces one, `null` removes one, `(sealed)` keeps
        it."""
        current = await visible_channel(request, channel_id)
        access.require_write(request, current.workspace_id)
        body = await access.body_fields(request, FIELDS, READ_ONLY)
        return await update_channel(request, current, body)

    @delete(
        "/{channel_id:str}",
        status_code=204,
        operation_class=described(path=_ID_PATH, conflict=True),
    )
    async def delete_alert_channel(self, request: AnyRequest, channel_id: str) -> Response[None]:
        """Delete the channel; 409 while a rule still notifies it."""
        await remove_channel(request, await visible_channel(request, channel_id))
        return Response(None, status_code=204)

    @post("/{channel_id:str}/test", status_code=200, operation_class=described(path=_ID_PATH))
    async def test_alert_channel(self, request: AnyRequest, channel_id: str) -> dict[str, Any]:
        """Send the channel a test notification now; the delivery's result (`status` `sent` or
        `failed`, attempts, HTTP status or SMTP reply, the error with any secret masked)."""
        result = await send_test(request, await visible_channel(request, channel_id))
        return {"object": "alert_delivery_result", **result}
