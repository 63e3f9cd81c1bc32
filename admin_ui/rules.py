"""`/admin/api/rules`: list, read, create, replace, enable, disable, delete, history, rollback.

Config file rules are listed read-only (`"source": "config"`); database rules are versioned and
carry `version`, `created_at`, `updated_at` and `updated_by`. A listed rule can be sent back as
it is: those read-only keys are dropped from bodies, and `version` is taken as the version the
edit is based on (as is an `If-Match` header), so a stale edit gets a 409 instead of silently
undoing someone else's. Every change is validated against the running config first and reloads
the rulebook after, so it is in force on return.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.connection import ASGIConnection
from litestar.di import Provide

from admin_ui.audit import record_change
from admin_ui.auth import provide_author
from admin_ui.openapi import described, object_schema, text
from admin_ui.principals import principal
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of, rule_store_of, rulebook_of
from gateway.entry.json_body import BODY_PARAM, decode_json_body
from gateway.errors import GatewayError, clipped, invalid_request
from rules.compiler import normalise_rule
from rules.store import RuleConflict, RuleNotFound, RuleVersion, StoredRule

READ_ONLY_KEYS = ("source", "read_only", "version", "created_at", "updated_at", "updated_by")
_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')

AnyRequest = Request[Any, Any, Any]

RULE_SCHEMA = object_schema(
    {
        "id": text(128, pattern="^[a-z0-9][a-z0-9._-]*$"),
        "name": text(256),
        "description": text(),
        "priority": {"type": "integer"},
        "enabled": {"type": "boolean"},
        "continue": {"type": "boolean"},
        "timezone": text(),
        "when": object_schema(),
        "then": object_schema(),
        "version": {"type": "integer", "minimum": 1},
    },
    required=("then",),
)
VERSION_SCHEMA = object_schema(
    {"version": {"type": "integer", "minimum": 1}}, required=("version",), closed=True
)


# --- errors -------------------------------------------------------------------------------------


def rule_not_found(rule_id: str) -> GatewayError:
    return GatewayError(
        404, f"No rule with id '{clipped(rule_id)}'.", code="rule_not_found", param="rule_id"
    )


def config_rule(rule_id: str) -> GatewayError:
    return GatewayError(
        409,
        f"Rule '{clipped(rule_id)}' is defined in the config file; change it there.",
        code="rule_in_config",
    )


def conflict(error: RuleConflict) -> GatewayError:
    text = str(error)
    return GatewayError(409, f"{text[:1].upper()}{text[1:]}.", code="rule_conflict")


@contextmanager
def store_errors(rule_id: str) -> Iterator[None]:
    """The store's refusals as the API's answers: unknown rule 404, stale version 409."""
    try:
        yield
    except RuleNotFound:
        raise rule_not_found(rule_id) from None
    except RuleConflict as error:
        raise conflict(error) from None


class InvalidRule(GatewayError):
    """A 400 `invalid_rule` that keeps each problem (`<path>: <what is wrong>`) for the console,
    which shows them one by one next to the editor."""

    def __init__(self, problems: list[str], intro: str) -> None:
        first_path = problems[0].split(": ", 1)[0] if problems else None
        super().__init__(
            400, f"{intro}: " + "; ".join(problems), param=first_path, code="invalid_rule"
        )
        self.problems = list(problems)
        self.intro = intro


def invalid_rule(problems: list[str], intro: str = "The rule is not valid") -> InvalidRule:
    return InvalidRule(problems, intro)


# --- rendering ----------------------------------------------------------------------------------


def database_item(rule: StoredRule) -> dict[str, Any]:
    return {
        **normalise_rule(rule.document),
        "id": rule.rule_id,
        "source": "database",
        "read_only": False,
        "version": rule.version,
        "created_at": iso_time(rule.created_at),
        "updated_at": iso_time(rule.updated_at),
        "updated_by": rule.updated_by,
    }


def config_item(document: Mapping[str, Any]) -> dict[str, Any]:
    return {**normalise_rule(document), "source": "config", "read_only": True}


def version_item(version: RuleVersion) -> dict[str, Any]:
    return {
        "version_id": version.version_id,
        "rule_id": version.rule_id,
        "version": version.version,
        "action": version.action,
        "author": version.author,
        "created_at": iso_time(version.created_at),
        "diff": version.diff,
        "document": normalise_rule(version.document),
    }


# --- reading requests ---------------------------------------------------------------------------


async def json_object(request: AnyRequest) -> dict[str, Any]:
    """The body of an admin request: every decoding problem is a 400 naming the body."""
    body = decode_json_body(await request.body())
    if not isinstance(body, dict):
        raise invalid_request(
            "The request body must be a JSON object.", param=BODY_PARAM, code="invalid_body"
        )
    return body


MAX_VERSION = 2**31 - 1
"""Versions are stored in an Integer column: a larger number can name no version."""


def _version_number(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise invalid_request(
            f"'{param}' must be a positive integer version (at most {MAX_VERSION}).", param=param
        )
    return value


def expected_version(request: AnyRequest, body: Mapping[str, Any]) -> int | None:
    """The version an edit is based on, from `If-Match` or the body's "version"."""
    header = request.headers.get("if-match")
    from_body = body.get("version")
    from_header: int | None = None
    if header is not None:
        match = _ETAG.match(header.strip())
        if match is None:
            raise invalid_request(
                "'If-Match' must be the rule's version number, e.g. If-Match: 3.",
                param="If-Match",
            )
        digits = match.group(1)
        number = int(digits) if len(digits) <= len(str(MAX_VERSION)) else MAX_VERSION + 1
        from_header = _version_number(number, "If-Match")
    if from_body is not None:
        from_body = _version_number(from_body, "version")
        if from_header is not None and from_header != from_body:
            raise invalid_request(
                f"'If-Match' ({from_header}) and 'version' ({from_body}) disagree.",
                param="version",
            )
    return from_header if from_header is not None else from_body


def rule_document(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in READ_ONLY_KEYS}


def new_rule_id() -> str:
    return f"rule-{secrets.token_hex(6)}"


# --- what the API and the console's pages both do ----------------------------------------------
# Each takes the request (for the running gateway's parts) and answers as the API does, so the
# pages and the API never disagree. Refusals are GatewayErrors (InvalidRule for rule problems).

AnyConnection = ASGIConnection[Any, Any, Any, Any]


async def listed_rules(connection: AnyConnection) -> list[dict[str, Any]]:
    """Every rule, config file and database, by priority; a database rule the running config no
    longer supports carries `in_force: false` and its `problems`."""
    rulebook = rulebook_of(connection)
    config = [config_item(document) for document in rulebook.config_rules]
    stored = [database_item(rule) for rule in await rule_store_of(connection).list()]
    for item in stored:
        # A rule the running config no longer supports (say, its model was removed).
        problems = rulebook.invalid.get(item["id"])
        if problems:
            item["in_force"] = False
            item["problems"] = problems
    return sorted(config + stored, key=lambda item: item["priority"])


async def one_rule(connection: AnyConnection, rule_id: str) -> dict[str, Any]:
    document = _config_document(connection, rule_id)
    if document is not None:
        return config_item(document)
    return database_item(await _stored(connection, rule_id))


async def create_database_rule(
    connection: AnyConnection, body: Mapping[str, Any], author: str
) -> dict[str, Any]:
    document = rule_document(body)
    if document.get("id") is None:
        document["id"] = new_rule_id()
    rule_id = document["id"]
    if isinstance(rule_id, str) and _config_document(connection, rule_id) is not None:
        raise config_rule(rule_id)
    rulebook = rulebook_of(connection)
    problems = rulebook.validate([document])
    if problems:
        raise invalid_rule(problems)
    try:
        stored = await rule_store_of(connection).create(normalise_rule(document), author)
    except RuleConflict as error:
        raise conflict(error) from None
    await rulebook.reload()
    await audit_rule(connection, "rule.create", None, stored)
    return database_item(stored)


async def replace_database_rule(
    connection: AnyConnection,
    rule_id: str,
    body: Mapping[str, Any],
    author: str,
    *,
    expected_version: int | None,
) -> dict[str, Any]:
    _refuse_config_rule(connection, rule_id)
    document = rule_document(body)
    if document.setdefault("id", rule_id) != rule_id:
        raise invalid_request(
            f"The body's id '{clipped(str(document['id']))}' is not the rule's id "
            f"'{clipped(rule_id)}'; "
            "a rule cannot be renamed.",
            param="id",
        )
    store = rule_store_of(connection)
    before = await store.get(rule_id)
    if before is None:
        raise rule_not_found(rule_id)
    rulebook = rulebook_of(connection)
    problems = rulebook.validate([document])
    if problems:
        raise invalid_rule(problems)
    with store_errors(rule_id):
        stored = await store.update(
            rule_id, normalise_rule(document), author, expected_version=expected_version
        )
    await rulebook.reload()
    await audit_rule(connection, "rule.update", before, stored)
    return database_item(stored)


async def set_rule_enabled(
    connection: AnyConnection, rule_id: str, enabled: bool, author: str
) -> dict[str, Any]:
    _refuse_config_rule(connection, rule_id)
    store = rule_store_of(connection)
    current = await _stored(connection, rule_id)
    rulebook = rulebook_of(connection)
    if enabled:
        problems = rulebook.validate([{**current.document, "enabled": True}])
        if problems:
            raise invalid_rule(problems, "The rule cannot be enabled with the running config")
    with store_errors(rule_id):
        stored = await store.set_enabled(rule_id, enabled, author)
    await rulebook.reload()
    await audit_rule(connection, "rule.enable" if enabled else "rule.disable", current, stored)
    return database_item(stored)


async def delete_database_rule(connection: AnyConnection, rule_id: str, author: str) -> None:
    _refuse_config_rule(connection, rule_id)
    before = await rule_store_of(connection).get(rule_id)
    with store_errors(rule_id):
        await rule_store_of(connection).delete(rule_id, author)
    await rulebook_of(connection).reload()
    await audit_rule(connection, "rule.delete", before, None, rule_id)


async def rule_versions(connection: AnyConnection, rule_id: str) -> list[dict[str, Any]]:
    """Every version of a rule, newest first (a deleted rule keeps its history); 404 for an id
    that never was a rule. A config file rule has none."""
    versions = await rule_store_of(connection).history(rule_id)
    if not versions and _config_document(connection, rule_id) is None:
        raise rule_not_found(rule_id)
    return [version_item(version) for version in versions]


async def roll_back_rule(
    connection: AnyConnection, rule_id: str, version: int, author: str
) -> dict[str, Any]:
    """Re-apply an earlier version's document as a new version (undeleting a deleted rule),
    once it is checked against the running config."""
    _refuse_config_rule(connection, rule_id)
    store = rule_store_of(connection)
    old = await store.version(rule_id, version)
    if old is None:
        if not await store.history(rule_id):
            raise rule_not_found(rule_id)
        raise GatewayError(
            404,
            f"Rule '{clipped(rule_id)}' has no version {version}.",
            code="version_not_found",
        )
    rulebook = rulebook_of(connection)
    problems = rulebook.validate([{**old.document, "id": rule_id}])
    if problems:
        raise invalid_rule(problems, f"Version {version} no longer fits the running config")
    before = await store.get(rule_id, include_deleted=True)
    with store_errors(rule_id):
        stored = await store.rollback(rule_id, version, author)
    await rulebook.reload()
    await audit_rule(connection, "rule.rollback", before, stored)
    return database_item(stored)


async def audit_rule(
    connection: AnyConnection,
    action: str,
    before: StoredRule | None,
    after: StoredRule | None,
    rule_id: str | None = None,
) -> None:
    """A rule change in the audit log; rules are gateway-wide (no workspace)."""
    target = after or before
    who = principal(connection)
    await record_change(
        gateway_of(connection).engine,
        actor=who,
        action=action,
        target_type="rule",
        target_id=rule_id or (target.rule_id if target else ""),
        workspace_id=None,
        before=None if before is None else database_item(before),
        after=None if after is None else database_item(after),
        address=who.address,
    )


# --- the controller -----------------------------------------------------------------------------


class RuleController(Controller):
    path = "/rules"
    dependencies = {"author": Provide(provide_author, sync_to_thread=False)}

    @get("/", operation_class=described())
    async def list_rules(self, request: AnyRequest) -> dict[str, Any]:
        return {"object": "list", "data": await listed_rules(request)}

    @get("/{rule_id:str}", operation_class=described())
    async def get_rule(self, request: AnyRequest, rule_id: str) -> dict[str, Any]:
        return await one_rule(request, rule_id)

    @post("/", status_code=201, operation_class=described(body=RULE_SCHEMA, conflict=True))
    async def create_rule(self, request: AnyRequest, author: str) -> dict[str, Any]:
        return await create_database_rule(request, await json_object(request), author)

    @put("/{rule_id:str}", operation_class=described(body=RULE_SCHEMA, conflict=True))
    async def replace_rule(self, request: AnyRequest, rule_id: str, author: str) -> dict[str, Any]:
        _refuse_config_rule(request, rule_id)
        body = await json_object(request)
        expected = expected_version(request, body)
        return await replace_database_rule(
            request, rule_id, body, author, expected_version=expected
        )

    @post("/{rule_id:str}/disable", status_code=200, operation_class=described(conflict=True))
    async def disable_rule(self, request: AnyRequest, rule_id: str, author: str) -> dict[str, Any]:
        return await set_rule_enabled(request, rule_id, False, author)

    @post("/{rule_id:str}/enable", status_code=200, operation_class=described(conflict=True))
    async def enable_rule(self, request: AnyRequest, rule_id: str, author: str) -> dict[str, Any]:
        return await set_rule_enabled(request, rule_id, True, author)

    @delete("/{rule_id:str}", status_code=204, operation_class=described(conflict=True))
    async def delete_rule(self, request: AnyRequest, rule_id: str, author: str) -> Response[None]:
        await delete_database_rule(request, rule_id, author)
        return Response(None, status_code=204)

    @get("/{rule_id:str}/history", operation_class=described())
    async def rule_history(self, request: AnyRequest, rule_id: str) -> dict[str, Any]:
        return {"object": "list", "data": await rule_versions(request, rule_id)}

    @post(
        "/{rule_id:str}/rollback",
        status_code=200,
        operation_class=described(body=VERSION_SCHEMA, conflict=True),
    )
    async def rollback_rule(self, request: AnyRequest, rule_id: str, author: str) -> dict[str, Any]:
        _refuse_config_rule(request, rule_id)
        version = _version_number((await json_object(request)).get("version"), "version")
        return await roll_back_rule(request, rule_id, version, author)


def _config_document(connection: AnyConnection, rule_id: str) -> Mapping[str, Any] | None:
    for document in rulebook_of(connection).config_rules:
        if document.get("id") == rule_id:
            return document
    return None


def _refuse_config_rule(connection: AnyConnection, rule_id: str) -> None:
    if _config_document(connection, rule_id) is not None:
        raise config_rule(rule_id)


async def _stored(connection: AnyConnection, rule_id: str) -> StoredRule:
    stored = await rule_store_of(connection).get(rule_id)
    if stored is None:
        raise rule_not_found(rule_id)
    return stored
