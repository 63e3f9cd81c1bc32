"""`POST /admin/api/rules/simulate` and `POST /admin/api/rules/replay`: a rule's effect, seen
before it is turned on.

Simulate answers what the rules (the running ones, or candidates sent in the body) decide for one
request, without calling a provider. Replay runs them over recorded requests and reports matches,
denials, the model mix and the cost difference. Candidates are compiled against the running
config's models and providers; `"merge": true` adds them to the running rules (replacing those
with the same id) instead of trying them alone. Nothing is stored either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar import Controller, Request, post
from litestar.connection import ASGIConnection

from admin_ui.openapi import JsonSchema, described, nullable, object_schema, strings, text
from admin_ui.rules import RULE_SCHEMA, invalid_rule, json_object, rule_document
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of, rulebook_of, starting
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.entry.stage import MAX_TAG_LENGTH, MAX_TAGS
from gateway.entry.validation import validate_chat, validate_embeddings
from gateway.errors import GatewayError, invalid_request
from rules.compiler import RuleError
from rules.engine import RuleSet
from rules.replay import Replayer, reads_prompt
from rules.simulate import (
    CatalogDeployment,
    CatalogModel,
    RouteCatalog,
    candidate_rules,
    parse_time,
    simulate,
)
from telemetry.escaping import UNSTORABLE_PROBLEM, has_unstorable
from telemetry.queries import REPLAY_DEFAULT_REQUESTS, REPLAY_MAX_REQUESTS, replay_history

if TYPE_CHECKING:
    from admin_ui.state import Gateway
    from gateway.steering.rulebook import Rulebook

AnyRequest = Request[Any, Any, Any]

SIMULATE_FIELDS: Final = (
    "request",
    "operation",
    "tags",
    "metadata",
    "headers",
    "key",
    "key_name",
    "workspace",
    "user",
    "time",
    "budget",
    "rules",
    "merge",
)
REPLAY_FIELDS: Final = ("rules", "merge", "last", "since", "until", "workspace")
BUDGET_FIELDS: Final = ("key_percent", "workspace_percent")
_CANDIDATES: dict[str, JsonSchema] = {
    "rules": {"type": "array", "items": RULE_SCHEMA},
    "merge": {"type": "boolean"},
}
SIMULATE_SCHEMA: Final = object_schema(
    {
        "request": object_schema(),
        "operation": {"enum": ["chat", "embeddings"]},
        "tags": strings(),
        "metadata": object_schema(),
        "headers": object_schema(),
        "key": text(),
        "key_name": text(),
        "workspace": text(),
        "user": text(),
        "time": text(format="date-time"),
        "budget": object_schema(
            {"key_percent": {"type": "number"}, "workspace_percent": {"type": "number"}}
        ),
        **_CANDIDATES,
    },
    required=("request",),
    closed=True,
)
REPLAY_SCHEMA: Final = object_schema(
    {
        **_CANDIDATES,
        "last": {"type": "integer", "minimum": 1, "maximum": REPLAY_MAX_REQUESTS},
        "since": nullable(text(format="date-time")),
        "until": nullable(text(format="date-time")),
        "workspace": text(),
    },
    closed=True,
)
REPLAY_BATCH: Final = 50
"""Requests replayed between yields to the event loop, which also serves the proxy."""


class SimulationController(Controller):
    path = "/rules"

    @post("/simulate", status_code=200, operation_class=described(body=SIMULATE_SCHEMA))
    async def simulate_rules(self, request: AnyRequest) -> dict[str, Any]:
        return simulation_answer(request, await json_object(request))

    @post("/replay", status_code=200, operation_class=described(body=REPLAY_SCHEMA))
    async def replay_rules(self, request: AnyRequest) -> dict[str, Any]:
        return await replay_answer(request, await json_object(request))


# --- what the API and the console's pages both answer -------------------------------------------


def simulation_answer(
    connection: ASGIConnection[Any, Any, Any, Any], body: Mapping[str, Any]
) -> dict[str, Any]:
    """The simulate endpoint's answer to `body` (its JSON request body)."""
    _only(body, SIMULATE_FIELDS)
    ruleset, which = _ruleset(rulebook_of(connection), body)
    payload, operation = _request(body)
    budget = _budget(body.get("budget"))
    at = _time(body, "time")
    result = simulate(
        ruleset,
        payload,
        operation=operation,
        tags=_tags(body.get("tags")),
        metadata=_object(body, "metadata"),
        headers=_headers(body.get("headers")),
        key=_text(body, "key"),
        key_name=_text(body, "key_name"),
        workspace=_text(body, "workspace"),
        end_user=_text(body, "user"),
        at=at,
        budget=budget,
        catalog=catalog_of(gateway_of(connection)),
    )
    return {"object": "rules.simulation", "rule_set": which, **msgspec.to_builtins(result)}


async def replay_answer(
    connection: ASGIConnection[Any, Any, Any, Any], body: Mapping[str, Any]
) -> dict[str, Any]:
    """The replay endpoint's answer to `body` (its JSON request body)."""
    _only(body, REPLAY_FIELDS)
    ruleset, which = _ruleset(rulebook_of(connection), body)
    last = _last(body.get("last"))
    since, until = _when(body, "since"), _when(body, "until")
    if since is not None and until is not None and since > until:
        raise invalid_request("'since' is after 'until'.", param="since")
    gateway = gateway_of(connection)
    catalog = catalog_of(gateway)
    history = await replay_history(
        gateway.engine,
        limit=last,
        since=since,
        until=until,
        workspace_id=_workspace_filter(body),
        with_prompts=reads_prompt(ruleset),
    )
    replayer = Replayer(ruleset, catalog)
    for position, row in enumerate(history.rows, 1):
        if row.get("api_key_id") == MASTER_KEY_INFO.key_id and row.get("key_name") is None:
            row["key_name"] = MASTER_KEY_INFO.name
        replayer.add(row)
        if position % REPLAY_BATCH == 0:
            await asyncio.sleep(0)
    rows = history.rows
    window = {
        "last": last,
        "since": iso_time(since) if since is not None else None,
        "until": iso_time(until) if until is not None else None,
        "oldest": iso_time(rows[-1]["started_at"]) if rows else None,
        "newest": iso_time(rows[0]["started_at"]) if rows else None,
        "truncated": history.truncated,
    }
    return {
        "object": "rules.replay",
        "rule_set": which,
        "window": window,
        "prices_as_of": catalog.prices.as_of if catalog.prices is not None else None,
        **msgspec.to_builtins(replayer.report()),
    }


def catalog_of(gateway: Gateway) -> RouteCatalog:
    """The running config's routes: deployments with their prices and expected shares."""
    proxy = gateway.proxy
    if proxy is None or gateway.config is None:
        raise starting()
    router = proxy.router
    models: dict[str, CatalogModel] = {}
    for name in router.model_names:
        route = router.resolve(name)
        by_weight = route.strategy == "weighted"
        models[name] = CatalogModel(
            deployments=tuple(
                CatalogDeployment(
                    provider=target.provider,
                    model=target.provider_model,
                    weight=target.deployment.weight if by_weight else 1.0,
                    price=target.price,
                )
                for target in route.targets
            ),
            fallbacks=tuple(route.config.fallbacks),
        )
    return RouteCatalog(models, gateway.config.price_table())


# --- reading the body ---------------------------------------------------------------------------


def _only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(str(key) for key in body if key not in allowed)
    if unknown:
        raise invalid_request(
            f"Unknown field '{unknown[0]}'; the body takes {', '.join(allowed)}.",
            param=unknown[0],
            code="unknown_field",
        )


def _ruleset(rulebook: Rulebook, body: Mapping[str, Any]) -> tuple[RuleSet, str]:
    merge = body.get("merge", False)
    if not isinstance(merge, bool):
        raise invalid_request("'merge' must be true or false.", param="merge")
    documents = body.get("rules")
    if documents is None:
        return rulebook.current, "current"
    if not isinstance(documents, list):
        raise invalid_request("'rules' must be a list of rules.", param="rules")
    candidates: list[Any] = []
    for index, document in enumerate(documents):
        if isinstance(document, dict):
            document = rule_document(document)
            document.setdefault("id", f"candidate-{index + 1}")
        candidates.append(document)
    try:
        ruleset = candidate_rules(
            rulebook.current,
            candidates,
            merge=merge,
            models=rulebook.models,
            providers=rulebook.providers,
            buckets=rulebook.buckets,
            guardrails=rulebook.guardrails,
        )
    except RuleError as error:
        raise invalid_rule(error.problems, "The candidate rules are not valid") from None
    return ruleset, "merged" if merge else "candidate"


def _request(body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    payload = body.get("request")
    if not isinstance(payload, dict):
        raise invalid_request(
            "'request' must be the chat (or embeddings) request body, a JSON object.",
            param="request",
        )
    operation = body.get("operation")
    if operation is None:
        operation = "embeddings" if "input" in payload and "messages" not in payload else "chat"
    if operation not in ("chat", "embeddings"):
        raise invalid_request("'operation' must be 'chat' or 'embeddings'.", param="operation")
    try:
        (validate_chat if operation == "chat" else validate_embeddings)(payload)
    except GatewayError as error:
        raise GatewayError(
            error.status,
            error.message,
            code=error.code,
            param=f"request.{error.param}" if error.param else "request",
        ) from None
    return payload, operation


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"'{name}' must be a string.", param=name)
    return value


def _workspace_filter(body: Mapping[str, Any]) -> str | None:
    """The replay's workspace: a string the database can compare (no NUL), or None."""
    workspace = _text(body, "workspace")
    if workspace is not None and has_unstorable(workspace):
        raise invalid_request(f"'workspace' {UNSTORABLE_PROBLEM}.", param="workspace")
    return workspace


def _object(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise invalid_request(f"'{name}' must be a JSON object.", param=name)
    return value


def _tags(value: Any) -> list[str]:
    """A list of tags, or the `x-steerway-tags` header's comma-separated text; trimmed and
    bounded as the proxy does."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise invalid_request("'tags' must be a list of strings.", param="tags")
    return [tag.strip()[:MAX_TAG_LENGTH] for tag in value if tag.strip()][:MAX_TAGS]


def _headers(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid_request(
            "'headers' must be an object of header names to string values.", param="headers"
        )
    return {str(name).lower(): text for name, text in value.items()}


def _budget(value: Any) -> dict[str, float | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_request("'budget' must be a JSON object.", param="budget")
    found: dict[str, float | None] = {}
    for name, number in value.items():
        if name not in BUDGET_FIELDS:
            raise invalid_request(
                f"Unknown budget field '{name}'; use {', '.join(BUDGET_FIELDS)}.",
                param=f"budget.{name}",
            )
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
            raise invalid_request(f"'budget.{name}' must be a number.", param=f"budget.{name}")
        found[name] = None if number is None else float(number)
    return found


def _time(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise invalid_request(f"'{name}': {error}.", param=name) from None


def _when(body: Mapping[str, Any], name: str) -> datetime | None:
    epoch = _time(body, name)
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _last(value: Any) -> int:
    if value is None:
        return REPLAY_DEFAULT_REQUESTS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_request("'last' must be a positive integer.", param="last")
    if value > REPLAY_MAX_REQUESTS:
        raise invalid_request(
            f"'last' may be at most {REPLAY_MAX_REQUESTS} requests.", param="last"
        )
    return value
