"""Changes to alert rules as the admin API and the console's rule pages make them: the store's
change, then its audit entry (`alert_rule.create`, `.update`, `.delete`, `.mute`, `.unmute`),
with the rule as the API shows it before and after. Callers check access first
(`alerts_access.require_write`); a rule the store refuses raises `RuleError`, and a change to
a rule the config file keeps is refused with a 409 (`alerts_access.refuse_if_from_config`)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from admin_ui import alerts_access as access
from admin_ui.state import gateway_of
from telemetry.alerts import AlertRule
from telemetry.alerts.rule_parsing import rule_data
from telemetry.alerts.rule_store import create_rule, delete_rule, set_muted, update_rule

AnyRequest = Request[Any, Any, Any]


def rule_item(rule: AlertRule) -> dict[str, Any]:
    return {
        "object": "alert_rule",
        "id": rule.id,
        "workspace_id": rule.workspace_id,
        "built_in": rule.built_in,
        "managed_by": rule.managed_by,
        **rule_data(rule),
    }


async def create(request: AnyRequest, rule: AlertRule) -> AlertRule:
    stored = await create_rule(gateway_of(request).engine, rule)
    await access.audit(
        request,
        "alert_rule.create",
        ("alert_rule", stored.id),
        stored.workspace_id,
        after=rule_item(stored),
    )
    return stored


async def replace(request: AnyRequest, current: AlertRule, rule: AlertRule) -> AlertRule:
    access.refuse_if_from_config("rule", current.managed_by)
    stored = await update_rule(gateway_of(request).engine, rule)
    await access.audit(
        request,
        "alert_rule.update",
        ("alert_rule", current.id),
        current.workspace_id,
        before=rule_item(current),
        after=rule_item(stored),
    )
    return stored


async def delete(request: AnyRequest, current: AlertRule) -> None:
    access.refuse_if_from_config("rule", current.managed_by)
    await delete_rule(gateway_of(request).engine, current.id)
    await access.audit(
        request,
        "alert_rule.delete",
        ("alert_rule", current.id),
        current.workspace_id,
        before=rule_item(current),
    )


async def mute(request: AnyRequest, current: AlertRule, muted: bool) -> AlertRule:
    access.refuse_if_from_config("rule", current.managed_by)
    await set_muted(gateway_of(request).engine, current.id, muted)
    await access.audit(
        request,
        "alert_rule.mute" if muted else "alert_rule.unmute",
        ("alert_rule", current.id),
        current.workspace_id,
        before={"muted": current.muted},
        after={"muted": muted},
    )
    return msgspec.structs.replace(current, muted=muted)
