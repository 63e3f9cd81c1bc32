"""`/admin/api/rules` against a running gateway, on SQLite and Postgres.

The gateway's config file defines one rule of its own, which the API must show but never change.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.admin_ui.conftest import create_key, error_of
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

CONFIG_ID = "from-the-file"
CONFIG_RULE: dict[str, Any] = {
    "id": CONFIG_ID,
    "name": "Defined in the config file",
    "priority": 50,
    "when": {"tags": {"contains": "file-rule"}},
    "then": {"tag": ["from-file"]},
}
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def admin_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        backend_database,
        mock_config(mock_provider, rules=[CONFIG_RULE]),
        tmp_path_factory.mktemp("rules-gateway"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def api(admin_gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with admin_gateway.http() as http:
        http.base_url = httpx.URL(f"{admin_gateway.url}/admin/api/rules")
        yield http


def new_id() -> str:
    return f"rule-{secrets.token_hex(4)}"


def premium_rule(rule_id: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": rule_id,
        "name": "Premium to the big model",
        "priority": 10,
        "when": {"tags": {"contains": f"premium-{rule_id}"}},
        "then": {"route": "mock-gpt"},
    }
    document.update(changes)
    return document


def created(api: httpx.Client, document: dict[str, Any]) -> dict[str, Any]:
    response = api.post("", json=document)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def history(api: httpx.Client, rule_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/{rule_id}/history")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def listed(api: httpx.Client) -> dict[str, dict[str, Any]]:
    response = api.get("")
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["data"]}


def test_a_created_rule_is_listed_versioned_and_signed(api: httpx.Client) -> None:
    rule_id = new_id()
    body = created(api, premium_rule(rule_id))
    assert body["id"] == rule_id
    assert (body["source"], body["read_only"], body["version"]) == ("database", False, 1)
    assert body["updated_by"] == "master"
    assert body["enabled"] is True and body["continue"] is False  # normalised: defaults filled
    assert body["created_at"].endswith("Z")

    item = listed(api)[rule_id]
    assert item == body
    assert api.get(f"/{rule_id}").json() == body

    (first,) = history(api, rule_id)
    assert (first["version"], first["action"], first["author"]) == (1, "create", "master")
    assert first["diff"]["then"] == {"from": None, "to": {"route": "mock-gpt"}}
    assert first["diff"]["priority"] == {"from": None, "to": 10}
    assert first["document"]["id"] == rule_id


def test_a_rule_without_an_id_gets_one(api: httpx.Client) -> None:
    document = premium_rule("unused")
    del document["id"]
    body = created(api, document)
    assert body["id"].startswith("rule-")
    assert body["id"] in listed(api)


def test_updates_need_the_current_version(api: httpx.Client) -> None:
    rule_id = new_id()
    created(api, premium_rule(rule_id))

    first = api.put(
        f"/{rule_id}", json=premium_rule(rule_id, priority=20), headers={"If-Match": "1"}
    )
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["priority"]) == (2, 20)

    stale = api.put(
        f"/{rule_id}", json=premium_rule(rule_id, priority=30), headers={"If-Match": "1"}
    )
    assert error_of(stale, 409)["code"] == "rule_conflict"
    assert "version 2" in stale.json()["error"]["message"]

    round_trip = api.get(f"/{rule_id}").json()
    round_trip["priority"] = 40
    round_trip["version"] = 1  # a copy read before the last change
    assert error_of(api.put(f"/{rule_id}", json=round_trip), 409)["code"] == "rule_conflict"

    round_trip["version"] = 2  # the listed item, sent back as it is, with one change
    latest = api.put(f"/{rule_id}", json=round_trip)
    assert latest.status_code == 200, latest.text
    assert (latest.json()["version"], latest.json()["priority"]) == (3, 40)

    unconditional = api.put(f"/{rule_id}", json=premium_rule(rule_id, name="Renamed"))
    assert unconditional.status_code == 200 and unconditional.json()["version"] == 4

    newest = history(api, rule_id)[0]
    assert (newest["action"], newest["version"]) == ("update", 4)
    assert newest["diff"] == {
        "name": {"from": "Premium to the big model", "to": "Renamed"},
        "priority": {"from": 40, "to": 10},
    }


def test_bad_versions_and_ids_in_an_update_are_400(api: httpx.Client) -> None:
    rule_id = new_id()
    created(api, premium_rule(rule_id))
    document = premium_rule(rule_id)
    not_a_number = api.put(f"/{rule_id}", json=document, headers={"If-Match": "latest"})
    assert error_of(not_a_number, 400)["param"] == "If-Match"
    disagree = api.put(f"/{rule_id}", json={**document, "version": 1}, headers={"If-Match": "2"})
    assert error_of(disagree, 400)["param"] == "version"
    renamed = api.put(f"/{rule_id}", json=premium_rule("another-id"))
    assert error_of(renamed, 400)["param"] == "id"
    assert api.get(f"/{rule_id}").json()["version"] == 1


def test_an_invalid_rule_is_a_400_naming_every_problem_by_path(api: httpx.Client) -> None:
    rule_id = new_id()
    response = api.post(
        "",
        json={
            "id": rule_id,
            "when": {"tagz": {"contains": "x"}},
            "then": {"route": "no-such-model"},
        },
    )
    error = error_of(response, 400)
    assert error["code"] == "invalid_rule"
    assert "when.tagz" in error["message"] and "did you mean 'tags'" in error["message"]
    assert "no-such-model" in error["message"]
    assert error["param"] is not None and "tagz" in error["param"]
    assert error_of(api.get(f"/{rule_id}"), 404)["code"] == "rule_not_found"

    created(api, premium_rule(rule_id))
    broken = api.put(f"/{rule_id}", json=premium_rule(rule_id, when={"model": {"between": 1}}))
    assert "when.model" in error_of(broken, 400)["message"]
    assert api.get(f"/{rule_id}").json()["version"] == 1


@pytest.mark.parametrize("rule_id", ["simulate", "replay"])
def test_ids_that_are_admin_paths_are_refused(api: httpx.Client, rule_id: str) -> None:
    error = error_of(api.post("", json=premium_rule(rule_id)), 400)
    assert f"'{rule_id}' is reserved" in error["message"]


@pytest.mark.parametrize("rule_id", [{}, ["a"], 7, True])
def test_an_id_that_is_not_text_is_a_400_naming_it(api: httpx.Client, rule_id: Any) -> None:
    error = error_of(api.post("", json=premium_rule("x", id=rule_id)), 400)
    assert error["param"] == "rules[0].id"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"rule"'])
def test_a_body_that_is_not_a_json_object_is_a_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("", content=body, headers={"Content-Type": "application/json"})
    assert error_of(response, 400)["type"] == "invalid_request_error"


def test_an_id_taken_by_a_database_rule_is_a_409(api: httpx.Client) -> None:
    rule_id = new_id()
    created(api, premium_rule(rule_id))
    assert error_of(api.post("", json=premium_rule(rule_id)), 409)["code"] == "rule_conflict"


def test_rollback_restores_an_earlier_version_as_a_new_one(api: httpx.Client) -> None:
    rule_id = new_id()
    created(api, premium_rule(rule_id))
    api.put(f"/{rule_id}", json=premium_rule(rule_id, priority=99, then={"tag": ["changed"]}))

    response = api.post(f"/{rule_id}/rollback", json={"version": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["version"], body["priority"], body["then"]) == (3, 10, {"route": "mock-gpt"})
    newest = history(api, rule_id)[0]
    assert (newest["action"], newest["author"]) == ("rollback", "master")
    assert newest["diff"]["priority"] == {"from": 99, "to": 10}

    missing = api.post(f"/{rule_id}/rollback", json={"version": 42})
    assert error_of(missing, 404)["code"] == "version_not_found"
    assert error_of(api.post(f"/{rule_id}/rollback", json={"version": "1"}), 400)["param"] == (
        "version"
    )
    assert error_of(api.post("/ghost-rule/rollback", json={"version": 1}), 404)["code"] == (
        "rule_not_found"
    )


def test_a_deleted_rule_keeps_its_history_and_can_be_rolled_back(api: httpx.Client) -> None:
    rule_id = new_id()
    created(api, premium_rule(rule_id))
    response = api.delete(f"/{rule_id}")
    assert response.status_code == 204 and response.content == b""

    assert error_of(api.get(f"/{rule_id}"), 404)["code"] == "rule_not_found"
    assert rule_id not in listed(api)
    assert error_of(api.delete(f"/{rule_id}"), 404)["code"] == "rule_not_found"
    assert error_of(api.post("", json=premium_rule(rule_id)), 409)["code"] == "rule_conflict"
    assert [v["action"] for v in history(api, rule_id)] == ["delete", "create"]

    restored = api.post(f"/{rule_id}/rollback", json={"version": 1})
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 3
    assert rule_id in listed(api)


def test_disable_and_enable(api: httpx.Client) -> None:
    rule_id = new_id()
    created(api, premium_rule(rule_id))
    disabled = api.post(f"/{rule_id}/disable")
    assert disabled.status_code == 200, disabled.text
    assert (disabled.json()["enabled"], disabled.json()["version"]) == (False, 2)
    assert listed(api)[rule_id]["enabled"] is False
    enabled = api.post(f"/{rule_id}/enable")
    assert (enabled.json()["enabled"], enabled.json()["version"]) == (True, 3)
    assert [v["action"] for v in history(api, rule_id)] == ["enable", "disable", "create"]
    assert error_of(api.post("/ghost-rule/disable"), 404)["code"] == "rule_not_found"


def test_the_config_rule_is_listed_but_read_only(api: httpx.Client) -> None:
    item = listed(api)[CONFIG_ID]
    assert (item["source"], item["read_only"], item["priority"]) == ("config", True, 50)
    assert "version" not in item
    assert api.get(f"/{CONFIG_ID}").json() == item
    assert history(api, CONFIG_ID) == []

    rule_path = f"/{CONFIG_ID}"
    attempts = [
        api.put(rule_path, json=CONFIG_RULE),
        api.delete(rule_path),
        api.post(f"{rule_path}/disable"),
        api.post(f"{rule_path}/enable"),
        api.post(f"{rule_path}/rollback", json={"version": 1}),
        api.post("", json={**CONFIG_RULE, "name": "a copy"}),
    ]
    for response in attempts:
        error = error_of(response, 409)
        assert error["code"] == "rule_in_config"
        assert "defined in the config file" in error["message"]
    assert listed(api)[CONFIG_ID] == item


def test_list_is_sorted_by_priority(api: httpx.Client) -> None:
    created(api, premium_rule(new_id(), priority=1))
    priorities = [item["priority"] for item in api.get("").json()["data"]]
    assert priorities == sorted(priorities) and priorities[0] == 1


def test_unknown_rules_are_404(api: httpx.Client) -> None:
    for response in (
        api.get("/ghost-rule"),
        api.put("/ghost-rule", json=premium_rule("ghost-rule")),
        api.get("/ghost-rule/history"),
    ):
        assert error_of(response, 404)["code"] == "rule_not_found"


def test_changes_are_in_force_as_soon_as_the_call_returns(
    admin_gateway: GatewayProcess, api: httpx.Client
) -> None:
    rule_id = new_id()
    tag = f"blocked-{rule_id}"
    client = admin_gateway.client()

    def ask() -> None:
        client.chat.completions.create(
            model="mock-gpt",
            messages=HELLO,
            extra_headers={"x-steerway-tags": tag},
        )

    ask()
    created(
        api,
        {
            "id": rule_id,
            "when": {"tags": {"contains": tag}},
            "then": {"deny": {"status": 403, "message": "Blocked by the admin."}},
        },
    )
    with pytest.raises(openai.PermissionDeniedError, match="Blocked by the admin"):
        ask()
    assert api.post(f"/{rule_id}/disable").status_code == 200
    ask()
    assert api.post(f"/{rule_id}/enable").status_code == 200
    with pytest.raises(openai.PermissionDeniedError):
        ask()
    assert api.delete(f"/{rule_id}").status_code == 204
    ask()


def test_the_author_is_the_admin_keys_name(admin_gateway: GatewayProcess) -> None:
    admin = create_key(admin_gateway.database, "ops-alice", role="master")
    rule_id = new_id()
    with admin_gateway.http(admin) as http:
        response = http.post("/admin/api/rules", json=premium_rule(rule_id))
        assert response.status_code == 201, response.text
        assert response.json()["updated_by"] == "ops-alice"
        (version,) = http.get(f"/admin/api/rules/{rule_id}/history").json()["data"]
    assert version["author"] == "ops-alice"


def test_only_admins_may_use_the_rules_api(admin_gateway: GatewayProcess) -> None:
    user = create_key(admin_gateway.database, "not-an-admin")
    rule_id = new_id()
    with httpx.Client(base_url=admin_gateway.url, timeout=30) as anonymous:
        assert error_of(anonymous.get("/admin/api/rules"), 401)["code"] == "missing_api_key"
    with admin_gateway.http(user) as http:
        assert error_of(http.get("/admin/api/rules"), 403)["code"] == "admin_key_required"
        refused = http.post("/admin/api/rules", json=premium_rule(rule_id))
        assert error_of(refused, 403)["code"] == "admin_key_required"
    with admin_gateway.http() as http:
        assert error_of(http.get(f"/admin/api/rules/{rule_id}"), 404)["code"] == "rule_not_found"
