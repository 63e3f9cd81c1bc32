"""The admin API's OpenAPI document describes exactly the routes served, with their bodies."""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar

from gateway.config.settings import Settings
from server.app import create_app
from tests.e2e.conftest import GatewayProcess

DOCUMENT_ROUTES = {"/admin/api/openapi.json", "/admin/api/{path:str}"}
"""Where Litestar serves the document itself."""
BODY_METHODS = {"post", "put", "patch"}
NO_BODY = {
    ("post", "/admin/api/alerts/channels/{channel_id}/test"),
    ("post", "/admin/api/alerts/instances/{instance_id}/ack"),
    ("post", "/admin/api/alerts/instances/{instance_id}/resolve"),
    ("post", "/admin/api/alerts/rules/{rule_id}/mute"),
    ("post", "/admin/api/alerts/rules/{rule_id}/unmute"),
    ("post", "/admin/api/alerts/silences/{silence_id}/expire"),
    ("post", "/admin/api/comparisons/{comparison_id}/cancel"),
    ("post", "/admin/api/keys/{key_id}/revoke"),
    ("post", "/admin/api/reports/{definition_id}/run"),
    ("post", "/admin/api/rules/{rule_id}/disable"),
    ("post", "/admin/api/rules/{rule_id}/enable"),
    ("post", "/admin/api/users/{user_id}/password-link"),
}


def _served_admin_routes(app: Litestar) -> set[tuple[str, str]]:
    served = set()
    for route in app.routes:
        if not route.path.startswith("/admin/api/") or route.path in DOCUMENT_ROUTES:
            continue
        for method in getattr(route, "methods", ()):
            if method not in {"HEAD", "OPTIONS"}:
                path = route.path_format.rstrip("/") or "/"
                served.add((method.lower(), path))
    return served


def _document(gateway: GatewayProcess) -> dict[str, Any]:
    response = httpx.get(f"{gateway.url}/admin/api/openapi.json", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_every_admin_route_is_described_and_nothing_else(gateway: GatewayProcess) -> None:
    document = _document(gateway)
    described = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    served = _served_admin_routes(create_app(Settings(database_url="sqlite:///unused.db")))
    assert described == served
    assert document["info"]["title"] == "Steerway admin API"
    assert document["security"] == [{"adminKey": []}]


def test_bodies_errors_and_links_are_described(gateway: GatewayProcess) -> None:
    paths = _document(gateway)["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            wants_body = method in BODY_METHODS and (method, path) not in NO_BODY
            assert ("requestBody" in operation) == wants_body, (method, path)
            error = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert error["properties"]["error"]["required"] == ["message", "type", "param", "code"]
    create_key = paths["/admin/api/keys"]["post"]
    assert create_key["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "name"
    ]
    links = create_key["responses"]["201"]["links"]
    targets = {link["operationId"]: link["parameters"] for link in links.values()}
    get_key = paths["/admin/api/keys/{key_id}"]["get"]["operationId"]
    assert targets[get_key] == {"key_id": "$response.body#/id"}
    list_keys = {p["name"] for p in paths["/admin/api/keys"]["get"]["parameters"]}
    assert list_keys == {"workspace", "include_revoked"}
