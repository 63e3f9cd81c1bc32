"""Text the database cannot store (NUL, lone surrogates) sent to the admin API: a 400 naming the
field, never a 500, on SQLite and Postgres; nothing half stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.admin_ui.conftest import error_of
from tests.e2e.conftest import GatewayProcess

NUL = "\x00"


def _send(gateway: GatewayProcess, method: str, path: str, body: dict[str, Any] | None) -> Any:
    with gateway.http() as http:
        if body is None:
            return http.request(method, path)
        # json.dumps writes a lone surrogate as the escape `\ud800`, as a client library would
        return http.request(
            method, path, content=json.dumps(body), headers={"content-type": "application/json"}
        )


@pytest.fixture(scope="module")
def existing(gateway: GatewayProcess) -> dict[str, str]:
    with gateway.http() as http:
        key = http.post("/admin/api/keys", json={"name": "nul-test-key"}).json()
        workspace = http.post(
            "/admin/api/workspaces", json={"name": "NUL tests", "slug": "nul-tests"}
        ).json()
        rule = http.post(
            "/admin/api/rules",
            json={"id": "nul-test-rule", "when": {"model": {"eq": "mock-gpt"}}, "then": {}},
        )
    assert rule.status_code == 201, rule.text
    return {"key": key["id"], "workspace": workspace["id"]}


BODIES = [
    ("POST", "/admin/api/keys", {"name": "nul-key{c}"}, "name"),
    ("POST", "/admin/api/keys", {"name": "k", "metadata": {"team": "a{c}"}}, "metadata.team"),
    ("POST", "/admin/api/keys", {"name": "k", "metadata": {"k{c}": 1}}, "metadata"),
    ("POST", "/admin/api/keys", {"name": "k", "default_tags": ["ok", "t{c}"]}, "default_tags[1]"),
    ("POST", "/admin/api/keys", {"name": "k", "allowed_models": ["m{c}"]}, "allowed_models[0]"),
    ("PATCH", "/admin/api/keys/{key}", {"name": "renamed{c}"}, "name"),
    ("PATCH", "/admin/api/keys/{key}", {"metadata": {"x": ["y{c}"]}}, "metadata.x[0]"),
    ("POST", "/admin/api/workspaces", {"name": "ws{c}", "slug": "ws-nul-name"}, "name"),
    ("PATCH", "/admin/api/workspaces/{workspace}", {"name": "ws{c}"}, "name"),
    (
        "POST",
        "/admin/api/rules",
        {"description": "d{c}", "when": {"model": {"eq": "mock-gpt"}}, "then": {}},
        "rules[0].description",
    ),
    (
        "POST",
        "/admin/api/rules",
        {"when": {"prompt": {"contains": "v{c}"}}, "then": {}},
        "rules[0].when.prompt.contains",
    ),
    (
        "PUT",
        "/admin/api/rules/nul-test-rule",
        {"name": "n{c}", "when": {"model": {"eq": "mock-gpt"}}, "then": {}},
        "rules[0].name",
    ),
    ("POST", "/admin/api/rules/replay", {"workspace": "w{c}"}, "workspace"),
]


@pytest.mark.parametrize(("method", "path", "body", "param"), BODIES)
def test_a_body_field_with_nul_is_refused_with_its_path(
    gateway: GatewayProcess,
    existing: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
    param: str,
) -> None:
    filled = json.loads(json.dumps(body).replace("{c}", "\\u0000"))
    response = _send(gateway, method, path.format(**existing), filled)
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "U+0000" in error["message"]


@pytest.mark.parametrize(("method", "path", "body", "param"), BODIES)
def test_a_body_with_a_lone_surrogate_is_refused(
    gateway: GatewayProcess,
    existing: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
    param: str,
) -> None:
    """JSON decoding refuses it before any field is read (`invalid_json`)."""
    filled = json.loads(json.dumps(body).replace("{c}", "\\ud800"))
    error_of(_send(gateway, method, path.format(**existing), filled), 400)


def test_a_workspace_named_with_nul_is_not_found(gateway: GatewayProcess) -> None:
    response = _send(gateway, "POST", "/admin/api/keys", {"name": "k", "workspace": "w\x00"})
    error = error_of(response, 404)
    assert (error["param"], error["code"]) == ("workspace", "workspace_not_found")


PARAMETERS = [
    ("GET", "/admin/api/keys/k%00", "key_id"),
    ("GET", "/admin/api/keys?workspace=w%00", "workspace"),
    ("POST", "/admin/api/keys/k%00/revoke", "key_id"),
    ("GET", "/admin/api/workspaces/w%00", "workspace"),
    ("GET", "/admin/api/rules/r%00", "rule_id"),
    ("GET", "/admin/api/rules/r%00/history", "rule_id"),
    ("DELETE", "/admin/api/rules/r%00", "rule_id"),
    ("GET", "/admin/api/traces/t%00", "trace_id"),
]


@pytest.mark.parametrize(("method", "path", "param"), PARAMETERS)
def test_a_path_or_query_parameter_with_nul_is_refused(
    gateway: GatewayProcess, method: str, path: str, param: str
) -> None:
    error = error_of(_send(gateway, method, path, None), 400)
    assert error["param"] == param
    assert "U+0000" in error["message"]


def test_nothing_was_stored_and_the_api_still_answers(
    gateway: GatewayProcess, existing: dict[str, str]
) -> None:
    with gateway.http() as http:
        keys = http.get("/admin/api/keys").json()["data"]
        workspaces = http.get("/admin/api/workspaces").json()["data"]
        rule = http.get("/admin/api/rules/nul-test-rule").json()
    assert not [k for k in keys if NUL in json.dumps(k) or "\\u0000" in json.dumps(k)]
    assert not [w for w in workspaces if "\\u0000" in json.dumps(w)]
    assert rule["version"] == 1 and rule["name"] == "nul-test-rule"
    assert existing["key"] in {k["id"] for k in keys}
