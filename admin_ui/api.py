"""The admin API under `/admin/api`: every route behind `require_console_user`, which accepts a
bearer admin key as before or a console session (with its CSRF token on every change).

Workspaces, keys, users, the audit log, saved dashboards, alerts (rules, channels, instances,
silences), reports (definitions, instances, files), traces, the lists of interactions,
decisions and guardrail violations, and analytics answer within the caller's workspaces, and
each change is checked against the caller's role there (see `admin_ui.principals`). Rules and
their simulation act on the whole gateway (rules apply to every workspace, replay reads every
workspace's history), so they need an operator: an operator user, the master key or an admin key
of the default workspace.
"""

from __future__ import annotations

from litestar import Router

from admin_ui.alert_channels_api import AlertChannelController
from admin_ui.alert_instances_api import AlertInstanceController
from admin_ui.alert_rules_api import AlertRuleController
from admin_ui.alert_silences_api import AlertSilenceController
from admin_ui.analytics_api import AnalyticsController
from admin_ui.audit_api import AuditController
from admin_ui.auth import require_global_admin
from admin_ui.comparisons_api import ComparisonController
from admin_ui.console_auth import require_console_user
from admin_ui.dashboards_api import DashboardController
from admin_ui.evaluations_api import EvaluationQueueController
from admin_ui.evaluators_api import EvaluatorController
from admin_ui.findings_api import FindingsController
from admin_ui.insights_api import InsightsController
from admin_ui.keys import KeyController
from admin_ui.live import LiveController
from admin_ui.parameters import refuse_unstorable_parameters
from admin_ui.quality_api import QualityController
from admin_ui.reports_api import ReportController
from admin_ui.rules import RuleController
from admin_ui.search_api import DecisionController, InteractionController, ViolationController
from admin_ui.session_api import SessionController
from admin_ui.simulation import SimulationController
from admin_ui.traces import TraceController
from admin_ui.users_api import UserController
from admin_ui.workspaces import WorkspaceController


def admin_router() -> Router:
    operator_only = Router(
        path="/",
        guards=[require_global_admin],
        route_handlers=[RuleController, SimulationController],
    )
    return Router(
        path="/admin/api",
        guards=[require_console_user, refuse_unstorable_parameters],
        route_handlers=[
            TraceController,
            InteractionController,
            DecisionController,
            ViolationController,
            WorkspaceController,
            KeyController,
            UserController,
            AuditController,
            DashboardController,
            SessionController,
            LiveController,
            AnalyticsController,
            InsightsController,
            FindingsController,
            AlertChannelController,
            AlertRuleController,
            AlertInstanceController,
            ReportController,
            AlertSilenceController,
            EvaluatorController,
            QualityController,
            EvaluationQueueController,
            ComparisonController,
            operator_only,
        ],
    )
