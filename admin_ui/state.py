"""The running gateway's parts, as the admin API reaches them from a request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from litestar.connection import ASGIConnection

from gateway.errors import GatewayError
from gateway.guardrails.config import unknown_names
from gateway.keys.limits import InvalidField, parse_guardrail_names
from rules.store import RuleStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from admin_ui.console_access import ConsoleAccess
    from gateway.config.file import GatewayConfig
    from gateway.jobs.comparisons import Comparisons
    from gateway.limits.budgets import BudgetLedger
    from gateway.proxy import Proxy
    from gateway.steering.rulebook import Rulebook
    from gateway.upstream.health import DeploymentHealth
    from gateway.upstream.model_calls import ModelCaller
    from telemetry.db_outage import DatabaseOutage
    from telemetry.live import LiveHub
    from telemetry.reports.scheduler import ReportScheduler


class Gateway(Protocol):
    """What the console reads of one worker's running parts. `server.app.Gateway` builds them;
    the app factory above both packages mounts the console, so the console names them by shape."""

    engine: AsyncEngine
    config: GatewayConfig | None
    database_outage: DatabaseOutage
    health: DeploymentHealth
    proxy: Proxy | None
    rulebook: Rulebook | None
    ledger: BudgetLedger | None
    live: LiveHub | None
    console_access: ConsoleAccess | None
    summary_caller: ModelCaller | None
    comparisons: Comparisons | None
    report_scheduler: ReportScheduler | None


def starting() -> GatewayError:
    return GatewayError(503, "The gateway is starting.", type="server_error")


def gateway_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Gateway:
    gateway: Gateway = connection.app.state.gateway
    return gateway


def rulebook_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Rulebook:
    rulebook = gateway_of(connection).rulebook
    if rulebook is None:
        raise starting()
    return rulebook


def rule_store_of(connection: ASGIConnection[Any, Any, Any, Any]) -> RuleStore:
    return RuleStore(gateway_of(connection).engine)


def check_guardrail_names(
    connection: ASGIConnection[Any, Any, Any, Any], names: Any, path: str
) -> None:
    """Guardrail names sent to the admin API must be guardrails the running config defines."""
    if names is None:
        return
    parsed = parse_guardrail_names(names, path)
    config = gateway_of(connection).config
    if config is None:
        return
    for index, name in enumerate(parsed):
        for problem in unknown_names([name], config.guardrails.names):
            raise InvalidField(f"{path}[{index}]", problem)
