"""`/admin/api/keys`: list, read, create (the plaintext shown once), update, revoke.

A key's fields in JSON are those of `gateway.keys.store.KeyInfo`: `allowed_models` (patterns, null for
all), `rpm_limit`, `tpm_limit`, `max_parallel`, `budgets` (`[{"limit_usd": "10.00", "window":
"monthly", "soft_percent": 80}]`), `default_tags`, `guardrails` (names of the config's
guardrails run on every request of the key), `metadata`, `expires_at`, `role`. An update changes
only the fields it names; a list replaces the stored one, and null clears one. An admin key of one
workspace sees and manages that workspace's keys only; another workspace's key is a 404. The work
itself is in `admin_ui.key_operations`, shared with the console's pages.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post

from admin_ui import key_operations as operations
from admin_ui.key_operations import key_item
from admin_ui.openapi import Query, described, nullable, object_schema, strings, text
from admin_ui.rules import json_object
from gateway.errors import invalid_request
from gateway.keys.limits import WINDOWS
from gateway.keys.store import ROLES

AnyRequest = Request[Any, Any, Any]

_LIMIT = nullable({"type": "integer", "minimum": 1})
KEY_SCHEMA = {
    "name": text(),
    "role": {"enum": list(ROLES)},
    "expires_at": nullable(text(format="date-time")),
    "allowed_models": nullable(strings()),
    "rpm_limit": _LIMIT,
    "tpm_limit": _LIMIT,
    "max_parallel": _LIMIT,
    "budgets": {
        "type": "array",
        "items": object_schema(
            {
                "limit_usd": text(),
                "window": {"enum": list(WINDOWS)},
                "soft_percent": {"type": "number", "minimum": 0, "maximum": 100},
            },
            required=("limit_usd", "window"),
        ),
    },
    "default_tags": strings(),
    "guardrails": strings(),
    "metadata": object_schema(),
}
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no", "")


def _include_revoked(request: AnyRequest) -> bool:
    value = request.query_params.get("include_revoked", "").lower()
    if value not in _TRUE + _FALSE:
        raise invalid_request(
            "'include_revoked' must be true or false.",
            param="include_revoked",
            code="invalid_value",
        )
    return value in _TRUE


class KeyController(Controller):
    path = "/keys"

    @get(
        "/",
        operation_class=described(
            query=(
                Query("workspace", "Only this workspace's keys (id or slug).", text()),
                Query("include_revoked", "List revoked keys too.", {"enum": ["true", "false"]}),
            )
        ),
    )
    async def list_keys(self, request: AnyRequest) -> dict[str, Any]:
        keys = await operations.visible_keys(
            request,
            request.query_params.get("workspace"),
            include_revoked=_include_revoked(request),
        )
        return {"object": "list", "data": [key_item(key) for key in keys]}

    @get("/{key_id:str}", operation_class=described())
    async def get_key(self, request: AnyRequest, key_id: str) -> dict[str, Any]:
        return key_item(await operations.visible_key(request, key_id))

    @post(
        "/",
        status_code=201,
        operation_class=described(
            body=object_schema({"workspace": text(), **KEY_SCHEMA}, required=("name",), closed=True)
        ),
    )
    async def create_key(self, request: AnyRequest) -> dict[str, Any]:
        created = await operations.create_key(request, await json_object(request))
        return {**key_item(created.info), "key": created.plaintext}

    @patch(
        "/{key_id:str}",
        operation_class=described(body=object_schema(KEY_SCHEMA, closed=True)),
    )
    async def update_key(self, request: AnyRequest, key_id: str) -> dict[str, Any]:
        return key_item(await operations.update_key(request, key_id, await json_object(request)))

    @post("/{key_id:str}/revoke", status_code=200, operation_class=described())
    async def revoke_key(self, request: AnyRequest, key_id: str) -> dict[str, Any]:
        return key_item(await operations.revoke_key(request, key_id))

    @delete("/{key_id:str}", status_code=200, operation_class=described())
    async def delete_key(self, request: AnyRequest, key_id: str) -> dict[str, Any]:
        """Keys are never deleted: their traces keep pointing at them. DELETE revokes."""
        return key_item(await operations.revoke_key(request, key_id))
