"""The running gateway's parts, as the admin API reaches them from a request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection

from gateway.errors import GatewayError
from gateway.guardrail_config import unknown_names
from gateway.limits_model import InvalidField, parse_guardrail_names
from rules.store import RuleStore

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.rulebook import Rulebook


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
