"""What every panel of one analytics page shares: the viewer's scope, the page's range and
filters, the names of keys and workspaces, and one query runner. Read once per request.

Scoping is the admin API's: `workspace_scope(request)` (a workspace admin, or a user, sees one
workspace at a time), narrowed for an operator by the top bar's `workspace`, which must be a
workspace the viewer may see (else 404, as everywhere). Every query runs within that scope, so
one workspace's numbers never reach another's admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request

from admin_ui.analytics_filters import FilterLinks, PageFilters, read_filters
from admin_ui.analytics_names import Names, read_names
from admin_ui.analytics_range import PageRange
from admin_ui.analytics_runner import QueryRunner
from admin_ui.auth import workspace_scope
from admin_ui.principals import principal
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace
from gateway.keys.store import KeyStore, Workspace

AnyRequest = Request[Any, Any, Any]

STATE_KEY: Final = "steerway_analytics_state"


@dataclass(frozen=True)
class AnalyticsState:
    path: str
    parameters: list[tuple[str, str]]
    page_range: PageRange
    scope: str | None
    """The one workspace every query is limited to; None: every workspace (an operator's)."""
    operator_view: bool
    """The viewer may see every workspace at once (an operator): "All workspaces" is a choice."""
    workspace_param: str | None
    """The top bar's workspace as the URL names it (for links to the API)."""
    filters: PageFilters
    names: Names
    runner: QueryRunner
    links: FilterLinks
    all_workspaces: Sequence[Workspace]
    """Every workspace (the top bar picks the visible ones)."""


async def analytics_state(request: AnyRequest, page_range: PageRange) -> AnalyticsState:
    """The page's state, made at the first call of a request and kept for the others."""
    known = request.state.get(STATE_KEY)
    if isinstance(known, AnalyticsState) and known.page_range == page_range:
        return known
    gateway = gateway_of(request)
    store = KeyStore(gateway.engine)
    parameters = [(n, v) for n, v in request.query_params.multi_items() if v != ""]
    scope = workspace_scope(request)
    operator_view = scope is None
    asked = request.query_params.get("workspace") or None
    if asked is not None:
        chosen = await visible_workspace(request, asked)
        if scope is None:
            scope = chosen.workspace_id
    who = principal(request)
    every = await store.list_workspaces()
    visible = [w for w in every if who.sees(w.workspace_id)]
    names = await read_names(store, visible, scope)
    state = AnalyticsState(
        path=request.url.path,
        parameters=parameters,
        page_range=page_range,
        scope=scope,
        operator_view=operator_view,
        workspace_param=asked if asked is not None else None,
        filters=PageFilters(values=read_filters(parameters), workspace_id=scope),
        names=names,
        runner=QueryRunner(gateway.engine, scope),
        links=FilterLinks(request.url.path, parameters),
        all_workspaces=every,
    )
    request.state[STATE_KEY] = state
    return state
