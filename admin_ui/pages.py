"""What every console page shares: the navigation, the top bar's state and the signed-in user.

A page handler ends with `return await page(request, "x.html", nav_active="x", **context)`;
the template extends `base.html`. The top bar's workspace and time range are query parameters
(`workspace`, `last`), so a page's URL always says what it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Request
from litestar.connection import ASGIConnection
from litestar.response import Template

from admin_ui.principals import STATE_KEY, Principal
from admin_ui.state import gateway_of
from gateway.keys.store import KeyStore, Workspace

ADMIN_PATH = "/admin"


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str
    label: str
    href: str
    icon: str


@dataclass(frozen=True, slots=True)
class NavSection:
    title: str
    items: tuple[NavItem, ...]


NAVIGATION: tuple[NavSection, ...] = (
    NavSection(
        "Explore",
        (
            NavItem("traces", "Traces", f"{ADMIN_PATH}/traces", "traces"),
            NavItem("interactions", "Interactions", f"{ADMIN_PATH}/interactions", "interactions"),
            NavItem("decisions", "Decisions", f"{ADMIN_PATH}/decisions", "decisions"),
            NavItem("violations", "Guardrail violations", f"{ADMIN_PATH}/violations", "shield"),
            NavItem("live", "Live", f"{ADMIN_PATH}/live", "live"),
        ),
    ),
    NavSection(
        "Analytics",
        (
            NavItem("analytics", "Overview", f"{ADMIN_PATH}/analytics", "overview"),
            NavItem("analytics-usage", "Usage", f"{ADMIN_PATH}/analytics/usage", "usage"),
            NavItem("analytics-cost", "Cost", f"{ADMIN_PATH}/analytics/cost", "cost"),
            NavItem(
                "analytics-performance",
                "Performance",
                f"{ADMIN_PATH}/analytics/performance",
                "performance",
            ),
            NavItem("analytics-safety", "Safety", f"{ADMIN_PATH}/analytics/safety", "safety"),
            NavItem(
                "analytics-providers", "Providers", f"{ADMIN_PATH}/analytics/providers", "providers"
            ),
            NavItem(
                "analytics-forecast", "Forecast", f"{ADMIN_PATH}/analytics/forecast", "forecast"
            ),
            NavItem(
                "analytics-anomalies", "Anomalies", f"{ADMIN_PATH}/analytics/anomalies", "anomalies"
            ),
            NavItem("quality", "Quality", f"{ADMIN_PATH}/quality", "quality"),
            NavItem(
                "quality-evaluators", "Evaluators", f"{ADMIN_PATH}/quality/evaluators", "safety"
            ),
            NavItem(
                "quality-comparisons",
                "Comparisons",
                f"{ADMIN_PATH}/quality/comparisons",
                "quality",
            ),
            NavItem("insights", "Insights", f"{ADMIN_PATH}/insights", "insights"),
            NavItem("dashboards", "Saved dashboards", f"{ADMIN_PATH}/dashboards", "dashboards"),
            NavItem("reports", "Reports", f"{ADMIN_PATH}/reports", "report"),
        ),
    ),
    NavSection(
        "Alerts",
        (
            NavItem("alerts", "Alerts", f"{ADMIN_PATH}/alerts", "alert"),
            NavItem("alert-rules", "Alert rules", f"{ADMIN_PATH}/alerts/rules", "alert-rules"),
            NavItem("alert-channels", "Channels", f"{ADMIN_PATH}/alerts/channels", "channel"),
            NavItem("alert-silences", "Silences", f"{ADMIN_PATH}/alerts/silences", "silence"),
        ),
    ),
    NavSection(
        "Manage",
        (
            NavItem("keys", "Keys", f"{ADMIN_PATH}/keys", "key"),
            NavItem("workspaces", "Workspaces", f"{ADMIN_PATH}/workspaces", "workspaces"),
            NavItem("users", "Users", f"{ADMIN_PATH}/users", "users"),
            NavItem("rules", "Steering rules", f"{ADMIN_PATH}/rules", "rules"),
            NavItem("audit", "Audit log", f"{ADMIN_PATH}/audit", "audit"),
        ),
    ),
)

TIME_RANGES: tuple[tuple[str, str], ...] = (
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
)
DEFAULT_RANGE = "24h"
REFRESH_CHOICES = (5, 10, 30, 60)
DEFAULT_REFRESH_SECONDS = 10
TOPBAR_PARAMETERS = ("workspace", "last", "refresh")

PAGE_HEADERS: Mapping[str, str] = {
    # Everything the console loads comes from the gateway itself.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NO_STORE = "no-store"


@dataclass(frozen=True, slots=True)
class PageUser:
    """Who the page is shown to: a signed-in person (`user`) or an admin key (`key`)."""

    name: str
    workspace_scope: str | None
    """None: every workspace."""
    kind: str = "key"
    email: str | None = None
    operator: bool = False
    workspace_count: int = 1

    @property
    def initials(self) -> str:
        letters = [part[0] for part in self.name.replace("-", " ").split() if part]
        return ("".join(letters[:2]) or "?").upper()

    @property
    def scope_label(self) -> str:
        if self.workspace_scope is None:
            return "Operator · all workspaces" if self.kind == "user" else "All workspaces"
        if self.workspace_count > 1:
            return f"{self.workspace_count} workspaces"
        return "One workspace"


@dataclass(frozen=True, slots=True)
class WorkspaceChoice:
    value: str
    label: str


def _principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    found = connection.state.get(STATE_KEY)
    return found if isinstance(found, Principal) else None


def page_user(connection: ASGIConnection[Any, Any, Any, Any]) -> PageUser | None:
    """The user of a request the console's guard let through; None before the guard ran (an
    error page for a request it refused)."""
    who = _principal(connection)
    if who is None:
        return None
    return PageUser(
        name=who.display_name,
        workspace_scope=who.workspace_scope,
        kind=who.kind,
        email=who.name if who.kind == "user" else None,
        operator=who.is_operator,
        workspace_count=len(who.roles),
    )


def csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The signed-in session's token, which every state-changing form sends back in a hidden
    field; empty for a page reached with a bearer key (no cookie, so nothing to forge)."""
    who = _principal(connection)
    return (who.csrf_token or "") if who is not None else ""


def query_without(request: Request[Any, Any, Any], *names: str) -> list[tuple[str, str]]:
    return [
        (name, value) for name, value in request.query_params.multi_items() if name not in names
    ]


def url_with(path: str, parameters: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(parameters)}" if parameters else path


def refresh_seconds(request: Request[Any, Any, Any]) -> int | None:
    value = request.query_params.get("refresh")
    if value is None:
        return None
    try:
        seconds = int(value.removesuffix("s"))
    except ValueError:
        return DEFAULT_REFRESH_SECONDS
    return min(max(seconds, REFRESH_CHOICES[0]), 3600)


def shell_context(
    request: Request[Any, Any, Any],
    *,
    nav_active: str,
    workspaces: list[WorkspaceChoice] | None = None,
    topbar_action: str | None = None,
    auto_refresh: bool = False,
) -> dict[str, Any]:
    """The context `base.html` needs, without touching the database (error pages use it)."""
    params = request.query_params
    last = params.get("last") or DEFAULT_RANGE
    ranges = list(TIME_RANGES)
    if last not in dict(ranges):
        ranges.append((last, f"Last {last}"))
    if params.get("since") or params.get("until"):
        ranges.append(("", "Custom range"))
        last = ""
    user = page_user(request)
    current_workspace = params.get("workspace", "")
    choices = list(workspaces or [])
    if current_workspace and current_workspace not in {choice.value for choice in choices}:
        choices.append(WorkspaceChoice(current_workspace, current_workspace))
    refresh = refresh_seconds(request) if auto_refresh else None
    kept = query_without(request, "refresh")
    path = request.url.path
    return {
        "nav": NAVIGATION,
        "nav_active": nav_active,
        "user": user,
        "csrf_token": csrf_token(request),
        "workspaces": choices,
        "all_workspaces": user is None or user.workspace_scope is None,
        "current_workspace": current_workspace,
        "time_ranges": ranges,
        "current_range": last,
        "topbar_action": topbar_action or path,
        # A list's cursor belongs to its range and workspace: changing either starts over.
        "topbar_hidden": query_without(request, *TOPBAR_PARAMETERS, "cursor"),
        "topbar_values": [
            (name, value) for name, value in params.multi_items() if name in TOPBAR_PARAMETERS
        ],
        "refresh_url": url_with(path, query_without(request)),
        "auto_refresh": auto_refresh,
        "refresh_seconds": refresh,
        "auto_refresh_url": url_with(
            path, kept if refresh else [*kept, ("refresh", str(DEFAULT_REFRESH_SECONDS))]
        ),
    }


async def visible_workspaces(
    request: Request[Any, Any, Any], found: Sequence[Workspace] | None = None
) -> list[WorkspaceChoice]:
    """The top bar's choices; `found`: every workspace, when the page has read them already."""
    who = _principal(request)
    if found is None:
        found = await KeyStore(gateway_of(request).engine).list_workspaces()
    return [
        WorkspaceChoice(workspace.slug, workspace.name or workspace.slug)
        for workspace in found
        if who is None or who.sees(workspace.workspace_id)
    ]


async def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    nav_active: str,
    status_code: int = 200,
    topbar_action: str | None = None,
    auto_refresh: bool = False,
    workspace_rows: Sequence[Workspace] | None = None,
    **context: Any,
) -> Template:
    """A console page: `template` rendered in the shell with `context`. `workspace_rows`: every
    workspace, when the page has read them already (saves the top bar reading them again)."""
    shell = shell_context(
        request,
        nav_active=nav_active,
        workspaces=await visible_workspaces(request, workspace_rows),
        topbar_action=topbar_action,
        auto_refresh=auto_refresh,
    )
    return Template(
        template_name=template,
        context={**shell, **context},
        status_code=status_code,
        media_type=MediaType.HTML,
        headers=dict(PAGE_HEADERS),
    )
