"""The console's pages under `/admin/`, its static files under `/admin/static/`.

Pages sit behind the same guard as the admin API (a console session, or a bearer admin key) and
answer within the caller's workspaces; without a session the browser is sent to sign in. Each
part of the console adds its page controllers to `PAGE_HANDLERS`.
"""

from __future__ import annotations

from litestar import Router, get
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from admin_ui.alert_channel_pages import AlertChannelPages
from admin_ui.alert_pages import AlertPages
from admin_ui.alert_rule_pages import AlertRulePages
from admin_ui.alert_silences_pages import AlertSilencePages
from admin_ui.analytics_pages import AnalyticsPages
from admin_ui.audit_page import AuditPage
from admin_ui.comparison_pages import ComparisonPages
from admin_ui.console_auth import require_console_user
from admin_ui.dashboards_pages import DashboardPages
from admin_ui.decisions_page import DecisionListPage
from admin_ui.evaluation_pages import EvaluationPages
from admin_ui.evaluator_pages import EvaluatorPages
from admin_ui.findings_page import FindingsPage
from admin_ui.insight_pages import InsightPages
from admin_ui.interactions_page import InteractionListPage
from admin_ui.keys_pages import KeyPages
from admin_ui.live_page import LivePage
from admin_ui.pages import ADMIN_PATH
from admin_ui.parameters import refuse_unstorable_parameters
from admin_ui.quality_pages import QualityPages
from admin_ui.report_pages import ReportPages
from admin_ui.rules_pages import rules_pages_router
from admin_ui.static_files import static_router
from admin_ui.trace_page import TracePages
from admin_ui.traces_list import TraceListPage
from admin_ui.users_pages import UserPages
from admin_ui.violations_page import ViolationListPage
from admin_ui.workspaces_pages import WorkspacePages

HOME = f"{ADMIN_PATH}/traces"

PAGE_HANDLERS: list[ControllerRouterHandler] = [
    TraceListPage,
    EvaluationPages,
    ComparisonPages,
    TracePages,
    InteractionListPage,
    DecisionListPage,
    ViolationListPage,
    KeyPages,
    WorkspacePages,
    rules_pages_router(),
    LivePage,
    AnalyticsPages,
    InsightPages,
    FindingsPage,
    UserPages,
    AuditPage,
    DashboardPages,
    AlertRulePages,
    AlertChannelPages,
    AlertPages,
    AlertSilencePages,
    ReportPages,
    EvaluatorPages,
    QualityPages,
]


@get(ADMIN_PATH, include_in_schema=False, sync_to_thread=False)
def console_home() -> Redirect:
    """`/admin` and `/admin/` open the traces."""
    return Redirect(HOME, status_code=302)


def console_router() -> Router:
    pages = Router(
        path=ADMIN_PATH,
        guards=[require_console_user, refuse_unstorable_parameters],
        route_handlers=PAGE_HANDLERS,
        include_in_schema=False,
    )
    return Router(
        path="/", route_handlers=[console_home, pages, static_router()], include_in_schema=False
    )
