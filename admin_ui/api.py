"""The admin API under `/admin/api`: every route behind the admin-key guard.

Workspaces, keys, traces and the lists of interactions, decisions and guardrail violations
answer within the admin's workspace. Rules and their simulation act
on the whole gateway (rules apply to every workspace, replay reads every workspace's history),
so they need an operator key: the master key or an admin key of the default workspace.
"""

from __future__ import annotations

from litestar import Router

from admin_ui.auth import require_admin, require_global_admin
from admin_ui.keys import KeyController
from admin_ui.live import LiveController
from admin_ui.parameters import refuse_unstorable_parameters
from admin_ui.rules import RuleController
from admin_ui.search_api import DecisionController, InteractionController, ViolationController
from admin_ui.simulation import SimulationController
from admin_ui.traces import TraceController
from admin_ui.workspaces import WorkspaceController


def admin_router() -> Router:
    operator_only = Router(
        path="/",
        guards=[require_global_admin],
        route_handlers=[RuleController, SimulationController],
    )
    return Router(
        path="/admin/api",
        guards=[require_admin, refuse_unstorable_parameters],
        route_handlers=[
            TraceController,
            InteractionController,
            DecisionController,
            ViolationController,
            WorkspaceController,
            KeyController,
            LiveController,
            operator_only,
        ],
    )
