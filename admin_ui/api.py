"""The admin API under `/admin/api`: every route behind the admin-key guard."""

from __future__ import annotations

from litestar import Router

from admin_ui.auth import require_admin
from admin_ui.rules import RuleController
from admin_ui.simulation import SimulationController
from admin_ui.traces import TraceController


def admin_router() -> Router:
    return Router(
        path="/admin/api",
        guards=[require_admin],
        route_handlers=[TraceController, RuleController, SimulationController],
    )
