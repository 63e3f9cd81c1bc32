"""The Insights page's **Summarise** button: one error group of the page's range and workspace
summarised by `evaluation.error_summary_model` (`telemetry.insights.error_summaries`).

Asking needs `evaluations.write` in the workspace shown (an operator's view of every workspace:
an operator); the call is recorded in that workspace (an operator's view: the default one).
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request

from admin_ui.console_auth import require_permission
from admin_ui.principals import principal
from admin_ui.state import gateway_of
from gateway.errors import GatewayError
from telemetry.insights.error_summaries import SummaryFailed, write_summary
from telemetry.insights.errors import find_errors
from telemetry.insights.scope import InsightScope
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]

PERMISSION: Final = "evaluations.write"
SUMMARY_PROBLEM: Final = "summary_problem"
"""The page's parameter that carries why the last asked summary is missing."""


def summary_model(request: AnyRequest) -> str | None:
    config = gateway_of(request).config
    return None if config is None else config.evaluation.error_summary_model


def can_summarise(request: AnyRequest, workspace_id: str | None) -> bool:
    return principal(request).can(PERMISSION, workspace_id)


async def summarise_group(request: AnyRequest, scope: InsightScope, fingerprint: str) -> str | None:
    """Writes the summary of the group `fingerprint`; None when it was written, else the
    reason in words."""
    require_permission(request, PERMISSION, scope.workspace_id)
    model = summary_model(request)
    caller = gateway_of(request).summary_caller
    if model is None or caller is None:
        raise GatewayError(
            409,
            "Error summaries are off: set `evaluation.error_summary_model` to a public model.",
            code="error_summaries_off",
        )
    found = await find_errors(scope)
    group = next((g for g in found.groups if g.fingerprint == fingerprint), None)
    if group is None:
        return "That error group is no longer among the groups of this range."
    try:
        await write_summary(
            caller,
            group,
            model=model,
            workspace_id=scope.workspace_id,
            record_in=scope.workspace_id or DEFAULT_WORKSPACE_ID,
        )
    except SummaryFailed as failure:
        return f"No summary: {failure}."
    return None
