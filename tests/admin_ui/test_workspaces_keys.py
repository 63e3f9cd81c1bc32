"""`/admin/api/workspaces` and `/admin/api/keys` through a running gateway, on SQLite and Postgres:
keys made over the API work with the openai SDK, revocation bites within the key cache's TTL,
and a workspace's admin key sees nothing of any other workspace."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.admin_ui.conftest import create_key, error_of
from tests.e2e.conftest import GatewayProcess

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
REVOCATION_WINDOW = 2.0  # the key cache's TTL is 1 s


def new_slug(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_workspace(http: httpx.Client, prefix: str, **fields: Any) -> dict[str, Any]:
    return created(http.post("/admin/api/workspaces", json={"slug": new_slug(prefix), **fields}))


def make_key(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    return created(http.post("/admin/api/keys", json={"name": "k", **fields}))


def chat(gateway: GatewayProcess, key: str) -> str:
    """One chat completion through the SDK; the trace id it was recorded under."""
    raw = gateway.client(api_key=key).chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO
    )
    assert raw.parse().choices[0].message.content
    trace_id: str = raw.headers["x-steerway-trace-id"]
    assert gateway.database.wait_rows("SELECT 1 FROM traces WHERE trace_id = :t", t=trace_id)
    return trace_id


# --- workspaces -----------------------------------------------------------------------------------


def test_workspaces_are_created_read_listed_and_updated(gateway: GatewayProcess) -> None:
    slug = new_slug("research")
    settings = {
        "budgets": [{"limit_usd": "250", "window": "monthly", "soft_percent": 90}],
        "rpm_limit": 600,
    }
    with gateway.http() as http:
        workspace = created(
            http.post(
                "/admin/api/workspaces",
                json={"slug": slug, "name": "Research", "settings": settings},
            )
        )
        assert workspace["object"] == "workspace"
        assert (workspace["slug"], workspace["name"]) == (slug, "Research")
        assert workspace["settings"] == {
            "budgets": [{"limit_usd": "250.00", "window": "monthly", "soft_percent": 90}],
            "rpm_limit": 600,
            "tpm_limit": None,
            "max_parallel": None,
            "guardrails": [],
        }
        assert workspace["created_at"].endswith("Z")
        assert http.get(f"/admin/api/workspaces/{slug}").json() == workspace
        assert http.get(f"/admin/api/workspaces/{workspace['id']}").json() == workspace
        listed = http.get("/admin/api/workspaces").json()
        assert listed["object"] == "list"
        assert {"default", slug} <= {w["slug"] for w in listed["data"]}

        again = http.post("/admin/api/workspaces", json={"slug": slug})
        assert error_of(again, 409)["code"] == "workspace_exists"

        updated = http.patch(
            f"/admin/api/workspaces/{slug}",
            json={"name": "R&D", "settings": {"rpm_limit": None, "max_parallel": 5}},
        )
        assert updated.status_code == 200, updated.text
        body = updated.json()
        assert body["name"] == "R&D"
        assert body["settings"]["rpm_limit"] is None
        assert body["settings"]["max_parallel"] == 5
        assert body["settings"]["budgets"] == workspace["settings"]["budgets"]

        sent_back = http.patch(f"/admin/api/workspaces/{slug}", json=body)
        assert sent_back.status_code == 200 and sent_back.json() == body
        missing = http.get("/admin/api/workspaces/no-such-workspace")
        assert error_of(missing, 404)["code"] == "workspace_not_found"
    rows = gateway.database.rows("SELECT name FROM workspaces WHERE slug = :s", s=slug)
    assert rows == [{"name": "R&D"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"name": "no slug"}, "slug"),
        ({"slug": "ok-slug", "settings": {"rpm": 5}}, "settings.rpm"),
        ({"slug": "ok-slug", "settings": {"tpm_limit": -1}}, "settings.tpm_limit"),
        (
            {"slug": "ok-slug", "settings": {"budgets": [{"limit_usd": "x", "window": "daily"}]}},
            "settings.budgets[0].limit_usd",
        ),
        ({"slug": "ok-slug", "settings": {"guardrails": "codenames"}}, "settings.guardrails"),
        (
            {"slug": "ok-slug", "settings": {"guardrails": ["codenames", "not a name"]}},
            "settings.guardrails[1]",
        ),
        ({"slug": "ok-slug", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_workspace_is_a_400_naming_the_field(
    gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    with gateway.http() as http:
        error = error_of(http.post("/admin/api/workspaces", json=body), 400)
        assert error["param"] == param
        assert error["type"] == "invalid_request_error"
        assert http.get("/admin/api/workspaces/ok-slug").status_code == 404


def test_workspace_guardrails_are_settings_like_the_limits(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        workspace = make_workspace(
            http, "guarded", settings={"guardrails": ["codenames", "injection"], "rpm_limit": 30}
        )
        path = f"/admin/api/workspaces/{workspace['slug']}"
        assert workspace["settings"]["guardrails"] == ["codenames", "injection"]
        assert http.get(path).json()["settings"]["guardrails"] == ["codenames", "injection"]

        merged = http.patch(path, json={"settings": {"max_parallel": 4}}).json()
        assert merged["settings"]["guardrails"] == ["codenames", "injection"]
        replaced = http.patch(path, json={"settings": {"guardrails": ["deny.words"]}}).json()
        assert replaced["settings"]["guardrails"] == ["deny.words"]
        assert (replaced["settings"]["rpm_limit"], replaced["settings"]["max_parallel"]) == (30, 4)

        refused = http.patch(path, json={"settings": {"guardrails": ["ok", "ok"]}})
        error = error_of(refused, 400)
        assert error["param"] == "settings.guardrails[1]"
        assert error["message"].startswith("settings.guardrails[1]: ")
        assert http.get(path).json() == replaced

        emptied = http.patch(path, json={"settings": {"guardrails": []}}).json()
        assert emptied["settings"]["guardrails"] == []
        http.patch(path, json={"settings": {"guardrails": ["codenames"]}})
        cleared = http.patch(path, json={"settings": {"guardrails": None}}).json()
        assert cleared["settings"]["guardrails"] == []
    (row,) = gateway.database.rows(
        "SELECT settings FROM workspaces WHERE workspace_id = :w", w=workspace["id"]
    )
    stored = row["settings"] if isinstance(row["settings"], dict) else json.loads(row["settings"])
    assert stored["guardrails"] == [] and stored["rpm_limit"] == 30


# --- keys ---------------------------------------------------------------------------------------


def test_a_key_made_over_the_api_works_and_stops_when_revoked(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        workspace = make_workspace(http, "apps", settings={"max_parallel": 20})
        key = make_key(
            http,
            name="billing service",
            workspace=workspace["slug"],
            allowed_models=["mock-*"],
            rpm_limit=600,
            tpm_limit=100_000,
            max_parallel=8,
            budgets=[{"limit_usd": "10.00", "window": "monthly", "soft_percent": 80}],
            default_tags=["billing"],
            guardrails=["codenames"],
            metadata={"owner": "payments"},
            expires_at="2040-01-01T00:00:00Z",
        )
        plaintext = key.pop("key")
        assert plaintext.startswith("sk-sw-")
        assert key["display_prefix"] == plaintext[:12] + "..."
        assert (key["workspace_id"], key["status"], key["role"]) == (
            workspace["id"],
            "active",
            "user",
        )
        assert key["allowed_models"] == ["mock-*"]
        assert (key["rpm_limit"], key["tpm_limit"], key["max_parallel"]) == (600, 100_000, 8)
        assert key["budgets"] == [{"limit_usd": "10.00", "window": "monthly", "soft_percent": 80}]
        assert (key["default_tags"], key["metadata"]) == (["billing"], {"owner": "payments"})
        assert key["guardrails"] == ["codenames"]
        assert key["expires_at"] == "2040-01-01T00:00:00Z"

        fetched = http.get(f"/admin/api/keys/{key['id']}")
        assert fetched.json() == key
        assert plaintext not in fetched.text

    trace_id = chat(gateway, plaintext)
    (trace,) = gateway.database.rows(
        "SELECT workspace_id, api_key_id FROM traces WHERE trace_id = :t", t=trace_id
    )
    assert trace == {"workspace_id": workspace["id"], "api_key_id": key["id"]}
    (stored,) = gateway.database.rows("SELECT * FROM api_keys WHERE key_id = :k", k=key["id"])
    assert stored["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in repr(stored)

    with gateway.http() as http:
        revoked = http.post(f"/admin/api/keys/{key['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    deadline = time.monotonic() + REVOCATION_WINDOW
    while True:
        try:
            gateway.client(api_key=plaintext).chat.completions.create(
                model="mock-gpt", messages=HELLO
            )
        except openai.AuthenticationError as error:
            assert error.code == "invalid_api_key"
            break
        assert time.monotonic() < deadline, "the revoked key still worked after the cache TTL"
        time.sleep(0.05)


def test_keys_are_updated_partly_and_delete_revokes(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        key = make_key(http, name="svc", rpm_limit=10, tpm_limit=999, default_tags=["a"])
        plaintext = key.pop("key")
        response = http.patch(
            f"/admin/api/keys/{key['id']}",
            json={
                "rpm_limit": 20,
                "tpm_limit": None,
                "allowed_models": ["mock-gpt"],
                "budgets": [{"limit_usd": "1", "window": "daily"}],
            },
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["rpm_limit"], updated["tpm_limit"]) == (20, None)
        assert updated["allowed_models"] == ["mock-gpt"]
        assert updated["budgets"] == [{"limit_usd": "1.00", "window": "daily"}]
        assert (updated["name"], updated["default_tags"]) == ("svc", ["a"])

        cleared = http.patch(
            f"/admin/api/keys/{key['id']}", json={"allowed_models": None, "budgets": None}
        ).json()
        assert cleared["allowed_models"] is None and cleared["budgets"] == []

        sent_back = http.patch(f"/admin/api/keys/{key['id']}", json=cleared)
        assert sent_back.status_code == 200 and sent_back.json() == cleared
        moved = http.patch(f"/admin/api/keys/{key['id']}", json={"workspace": "default"})
        assert error_of(moved, 400)["param"] == "workspace"

        assert chat(gateway, plaintext)
        deleted = http.delete(f"/admin/api/keys/{key['id']}")
        assert deleted.status_code == 200 and deleted.json()["status"] == "revoked"
        active = http.get("/admin/api/keys").json()["data"]
        assert key["id"] not in {k["id"] for k in active}
        everything = http.get("/admin/api/keys", params={"include_revoked": "true"}).json()
        assert key["id"] in {k["id"] for k in everything["data"]}
        missing = http.get(f"/admin/api/keys/{'0' * 32}")
        assert error_of(missing, 404)["code"] == "key_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "budgets": [{"limit_usd": "5", "window": "yearly"}]}, "budgets[0].window"),
        ({"name": "x", "budgets": {"limit_usd": "5"}}, "budgets"),
        ({"name": "x", "rpm_limit": 0}, "rpm_limit"),
        ({"name": "x", "max_parallel": "4"}, "max_parallel"),
        ({"name": "x", "allowed_models": []}, "allowed_models"),
        ({"name": "x", "default_tags": ["ok", 3]}, "default_tags[1]"),
        ({"name": "x", "guardrails": "codenames"}, "guardrails"),
        ({"name": "x", "guardrails": ["codenames", "bad name"]}, "guardrails[1]"),
        ({"name": "x", "guardrails": ["codenames", "codenames"]}, "guardrails[1]"),
        ({"name": "x", "guardrails": [f"g{i}" for i in range(33)]}, "guardrails"),
        ({"name": "x", "metadata": "text"}, "metadata"),
        ({"name": "x", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "x", "role": "root"}, "role"),
        ({"name": ""}, "name"),
        ({"rpm_limit": 5}, "name"),
        ({"name": "x", "rate": 5}, "rate"),
    ],
)
def test_a_bad_key_is_a_400_naming_the_field(
    gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    with gateway.http() as http:
        before = len(http.get("/admin/api/keys").json()["data"])
        error = error_of(http.post("/admin/api/keys", json=body), 400)
        assert error["param"] == param
        assert len(http.get("/admin/api/keys").json()["data"]) == before


def test_key_guardrails_are_read_replaced_and_cleared(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        key = make_key(http, name="screened", guardrails=["codenames", "injection"], rpm_limit=3)
        key.pop("key")
        path = f"/admin/api/keys/{key['id']}"
        assert key["guardrails"] == ["codenames", "injection"]
        assert http.get(path).json() == key
        plain = make_key(http, name="unscreened")
        assert plain["guardrails"] == []

        kept = http.patch(path, json={"rpm_limit": 4}).json()
        assert kept["guardrails"] == ["codenames", "injection"]
        replaced = http.patch(path, json={"guardrails": ["deny.words"]}).json()
        assert (replaced["guardrails"], replaced["rpm_limit"]) == (["deny.words"], 4)

        refused = http.patch(path, json={"guardrails": ["deny.words", "-bad"]})
        error = error_of(refused, 400)
        assert error["param"] == "guardrails[1]"
        assert error["message"].startswith("guardrails[1]: ")
        assert http.get(path).json() == replaced

        assert http.patch(path, json={"guardrails": []}).json()["guardrails"] == []
        http.patch(path, json={"guardrails": ["codenames"]})
        assert http.patch(path, json={"guardrails": None}).json()["guardrails"] == []
    (row,) = gateway.database.rows("SELECT guardrails FROM api_keys WHERE key_id = :k", k=key["id"])
    assert row["guardrails"] in ([], "[]")


def test_a_body_that_is_not_an_object_is_a_400(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        for path in ("/admin/api/keys", "/admin/api/workspaces"):
            assert error_of(http.post(path, content=b"[1, 2]"), 400)["code"] == "invalid_body"
            assert error_of(http.post(path, content=b"{nope"), 400)["code"] == "invalid_json"


def test_a_user_key_may_not_manage_keys(gateway: GatewayProcess) -> None:
    user = create_key(gateway.database, "plain-user")
    with gateway.http(user) as http:
        for response in (http.get("/admin/api/keys"), http.get("/admin/api/workspaces")):
            assert error_of(response, 403)["code"] == "admin_key_required"


# --- scoping ------------------------------------------------------------------------------------


def test_a_workspace_admin_sees_and_manages_only_its_own_workspace(
    gateway: GatewayProcess,
) -> None:
    with gateway.http() as master:
        mine = make_workspace(master, "mine")
        theirs = make_workspace(master, "theirs")
        admin = make_key(master, name="mine admin", workspace=mine["slug"], role="master")["key"]
        their_key = make_key(master, name="their app", workspace=theirs["slug"])
        their_plaintext = their_key.pop("key")
        their_admin = make_key(master, name="their admin", workspace=theirs["id"], role="master")
    their_trace = chat(gateway, their_plaintext)

    with gateway.http(admin) as http:
        own = make_key(http, name="made by the workspace admin", rpm_limit=5)
        own_plaintext = own.pop("key")
        assert own["workspace_id"] == mine["id"]
        own_trace = chat(gateway, own_plaintext)

        listed = http.get("/admin/api/keys").json()["data"]
        assert {k["workspace_id"] for k in listed} == {mine["id"]}
        assert own["id"] in {k["id"] for k in listed}
        spaces = http.get("/admin/api/workspaces").json()["data"]
        assert [w["id"] for w in spaces] == [mine["id"]]
        assert http.get(f"/admin/api/workspaces/{mine['slug']}").status_code == 200
        assert http.get(f"/admin/api/traces/{own_trace}").status_code == 200

        for response in (
            http.get(f"/admin/api/keys/{their_key['id']}"),
            http.patch(f"/admin/api/keys/{their_key['id']}", json={"rpm_limit": 1}),
            http.post(f"/admin/api/keys/{their_key['id']}/revoke"),
            http.delete(f"/admin/api/keys/{their_admin['id']}"),
        ):
            assert error_of(response, 404)["code"] == "key_not_found"
        for response in (
            http.get(f"/admin/api/workspaces/{theirs['slug']}"),
            http.get(f"/admin/api/workspaces/{theirs['id']}"),
            http.get("/admin/api/keys", params={"workspace": theirs["slug"]}),
            http.post("/admin/api/keys", json={"name": "sneaky", "workspace": theirs["id"]}),
        ):
            assert error_of(response, 404)["code"] == "workspace_not_found"
        trace = http.get(f"/admin/api/traces/{their_trace}")
        assert error_of(trace, 404)["code"] == "trace_not_found"

        for response in (
            http.post("/admin/api/workspaces", json={"slug": new_slug("extra")}),
            http.patch(
                f"/admin/api/workspaces/{mine['slug']}", json={"settings": {"rpm_limit": 1}}
            ),
            http.get("/admin/api/rules"),
        ):
            assert error_of(response, 403)["code"] == "operator_key_required"

    # Nothing of the other workspace changed, and its key still works.
    assert chat(gateway, their_plaintext)
    with gateway.http() as master:
        assert master.get(f"/admin/api/keys/{their_key['id']}").json() == their_key
        everything = master.get("/admin/api/keys").json()["data"]
        assert {mine["id"], theirs["id"]} <= {k["workspace_id"] for k in everything}
        theirs_only = master.get("/admin/api/keys", params={"workspace": theirs["slug"]}).json()
        assert {k["id"] for k in theirs_only["data"]} == {their_key["id"], their_admin["id"]}
        assert master.get(f"/admin/api/traces/{their_trace}").status_code == 200
        assert master.get(f"/admin/api/traces/{own_trace}").status_code == 200


def test_an_admin_key_of_the_default_workspace_is_the_operators(gateway: GatewayProcess) -> None:
    operator = create_key(gateway.database, "ops", role="master")
    with gateway.http() as master:
        other = make_workspace(master, "elsewhere")
        key = make_key(master, name="app", workspace=other["slug"])
    key.pop("key")
    with gateway.http(operator) as http:
        assert http.get(f"/admin/api/keys/{key['id']}").json() == key
        assert other["id"] in {w["id"] for w in http.get("/admin/api/workspaces").json()["data"]}
        renamed = http.patch(f"/admin/api/workspaces/{other['id']}", json={"name": "Elsewhere"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Elsewhere"


def test_guardrail_names_must_be_defined_in_the_config(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        refused = http.post(
            "/admin/api/keys", json={"name": "x", "guardrails": ["codenames", "codename"]}
        )
        error = error_of(refused, 400)
        assert error["param"] == "guardrails[1]"
        assert "unknown guardrail 'codename' (did you mean 'codenames'?)" in error["message"]
        refused = http.post(
            "/admin/api/workspaces", json={"slug": "gr-x", "settings": {"guardrails": ["nope"]}}
        )
        assert error_of(refused, 400)["param"] == "settings.guardrails[0]"
