"""The console's key and workspace pages through a running gateway, on SQLite and Postgres.

The pages are plain HTML forms, so these tests post what a browser would post: a key made on the
create page works with the openai SDK and is refused once revoked on its page; the plaintext is
on the one page that answers the create form and nowhere else (no later page, no redirect, no
log line); a refused form shows the API's message at the field it names and keeps what was
typed; a workspace's admin sees nothing of any other workspace.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway.keys.store import KEY_PREFIX
from tests.admin_ui.html_page import Page
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.logwatch import LogWatch, assert_no_traceback, watched_gateway

API = "/admin/api"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
REVOCATION_WINDOW = 2.0  # the key cache's TTL is 1 s
GUARDRAILS = {
    "codenames": {"kind": "deny_list", "words": ["project falcon"], "action": "log"},
    "injection": {"kind": "prompt_injection", "action": "log"},
}
FormData = dict[str, str | list[str]]

shown_secrets: list[str] = []
"""Every plaintext a page showed in this module: none may reach the gateway's output."""


@pytest.fixture(scope="module")
def watched(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, LogWatch]]:
    config = mock_config(mock_provider, guardrails={"definitions": GUARDRAILS})
    with watched_gateway(
        backend_database,
        config,
        tmp_path_factory.mktemp("key-pages"),
        master_key="sk-master-" + secrets.token_hex(8),
    ) as running:
        yield running
    output = running[1].since(0)
    assert_no_traceback(output)
    for secret in shown_secrets:
        assert secret not in output
    shown_secrets.clear()


@pytest.fixture
def console(watched: tuple[GatewayProcess, LogWatch]) -> GatewayProcess:
    return watched[0]


# --- helpers ------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def api_key(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = http.post(f"{API}/keys", json={"name": unique("key"), **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def api_workspace(http: httpx.Client, prefix: str, **fields: Any) -> dict[str, Any]:
    response = http.post(f"{API}/workspaces", json={"slug": unique(prefix), **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def html_page(http: httpx.Client, path: str) -> Page:
    response = http.get(path)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def as_form(pairs: Sequence[tuple[str, str]], **changes: str | list[str]) -> FormData:
    """A form's fields as httpx posts them (repeated names as lists), with `changes` made."""
    data: FormData = {}
    for name, value in pairs:
        current = data.get(name)
        if current is None:
            data[name] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            data[name] = [current, value]
    data.update(changes)
    return data


def key_form(**changes: str | list[str]) -> FormData:
    """What the create page sends for a typical key, with `changes` made."""
    form: FormData = {
        "csrf_token": "",
        "name": unique("console-key"),
        "workspace": "default",
        "role": "user",
        "expires_at": "",
        "allowed_models": ["mock-gpt"],
        "allowed_model_patterns": "",
        "rpm_limit": "60",
        "tpm_limit": "",
        "max_parallel": "",
        "budget_monthly_limit_usd": "10",
        "budget_monthly_soft_percent": "80",
        "default_tags": "billing, nightly",
        "metadata": "",
    }
    form.update(changes)
    return form


def keys_named(console: GatewayProcess, name: str) -> list[dict[str, Any]]:
    return console.database.rows("SELECT key_id, key_hash FROM api_keys WHERE name = :n", n=name)


def key_count(console: GatewayProcess) -> int:
    return int(console.database.rows("SELECT count(*) AS n FROM api_keys")[0]["n"])


def windows(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(len(text) - size + 1)]


def assert_never_shown(html: str, secret: str, key_hash: str) -> None:
    """Neither the key nor its hash, whole or any 16 characters of either, is in `html`. The
    display prefix holds the first 6 characters after `sk-sw-`, so no 16 of them can match it."""
    body = secret.removeprefix(KEY_PREFIX)
    assert len(body) >= 40 and len(key_hash) == 64
    assert secret not in html
    for part in (*windows(body), *windows(key_hash)):
        assert part not in html


def wait_for_401(console: GatewayProcess, secret: str) -> None:
    client = console.client(api_key=secret)
    deadline = time.monotonic() + REVOCATION_WINDOW
    while True:
        try:
            client.chat.completions.create(model="mock-gpt", messages=HELLO)
        except openai.AuthenticationError as error:
            assert error.status_code == 401
            return
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_each_key_by_its_prefix_never_its_secret_or_hash(
    console: GatewayProcess,
) -> None:
    with console.http() as http:
        created = api_key(
            http,
            allowed_models=["mock-gpt", "gpt-4o*"],
            rpm_limit=60,
            tpm_limit=100_000,
            max_parallel=3,
            budgets=[{"limit_usd": "10", "window": "monthly", "soft_percent": 80}],
            default_tags=["billing"],
            guardrails=["codenames"],
            expires_at="2031-01-31T00:00:00Z",
        )
        secret, key_id = created["key"], created["id"]
        (stored,) = keys_named(console, created["name"])
        assert stored["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()

        listing = html_page(http, "/admin/keys")
        assert key_id in listing.ids_with_prefix("key-row-")
        row = listing.text(f"key-row-{key_id}")
        for shown in (
            created["name"],
            created["display_prefix"],
            "default",
            "user",
            "mock-gpt",
            "gpt-4o*",
            "60 requests/min",
            "100,000 tokens/min",
            "3 parallel",
            "$10.00/monthly@80%",
            "codenames",
            "billing",
            "2031-01-31 00:00 UTC",
            "active",
        ):
            assert shown in row, (shown, row)
        for path in ("/admin/keys", "/admin/keys?state=all", f"/admin/keys/{key_id}"):
            assert_never_shown(html_page(http, path).html, secret, stored["key_hash"])


def test_the_filters_are_a_get_form_whose_url_can_be_shared(console: GatewayProcess) -> None:
    with console.http() as http:
        team = api_workspace(http, "filters")
        slug = team["slug"]
        active = api_key(http, name=unique("active"), workspace=slug)
        expired = api_key(http, workspace=slug, expires_at="2020-01-01T00:00:00Z")
        revoked = api_key(http, workspace=slug)
        assert http.post(f"{API}/keys/{revoked['id']}/revoke").status_code == 200
        elsewhere = api_key(http, name=unique("Elsewhere"))

        def listed(query: str) -> set[str]:
            return html_page(http, f"/admin/keys?{query}").ids_with_prefix("key-row-")

        assert listed(f"workspace={slug}") == {active["id"]}
        assert listed(f"workspace={team['id']}&state=active") == {active["id"]}
        assert listed(f"workspace={slug}&state=expired") == {expired["id"]}
        assert listed(f"workspace={slug}&state=revoked") == {revoked["id"]}
        assert listed(f"workspace={slug}&state=all") == {
            k["id"] for k in (active, expired, revoked)
        }
        assert listed(f"q={elsewhere['name'].upper()}") == {elsewhere["id"]}
        assert listed(f"state=all&q={active['display_prefix'][:12]}") == {active["id"]}
        everything = listed("state=all")
        assert {active["id"], expired["id"], revoked["id"], elsewhere["id"]} <= everything

        shared = html_page(http, f"/admin/keys?workspace={slug}&state=revoked&q=zz-nothing")
        assert shared.value("filter-workspace") == slug
        assert shared.value("filter-state") == "revoked"
        assert shared.value("filter-q") == "zz-nothing"
        assert "No key matches these filters" in shared.text("keys-empty")
        assert (
            shared.element("keys-show-all").get("href") == f"/admin/keys?state=all&workspace={slug}"
        )

        assert http.get("/admin/keys?state=lost").status_code == 400
        assert http.get("/admin/keys?workspace=no-such-workspace").status_code == 404


def test_a_workspace_without_keys_says_how_to_create_the_first(console: GatewayProcess) -> None:
    with console.http() as http:
        slug = api_workspace(http, "empty")["slug"]
        empty = html_page(http, f"/admin/keys?workspace={slug}")
        assert not empty.ids_with_prefix("key-row-")
        assert f"No keys in {slug} yet" in empty.text("keys-empty")
        assert empty.element("keys-create-first").get("href") == f"/admin/keys/new?workspace={slug}"
        assert f"steerway keys create my-app --workspace {slug}" in empty.text("keys-empty")
        assert html_page(http, f"/admin/keys/new?workspace={slug}").value("field-workspace") == slug


# --- create -------------------------------------------------------------------------------------


INVALID_FIELDS = [
    ({"rpm_limit": "0"}, "rpm_limit", "expected a positive whole number, got 0"),
    ({"tpm_limit": "1.5"}, "tpm_limit", "expected a positive whole number, got '1.5'"),
    ({"max_parallel": "-2"}, "max_parallel", "expected a positive whole number, got -2"),
    ({"budget_weekly_limit_usd": "ten"}, "budget_weekly", "not an amount of US dollars: 'ten'"),
    ({"budget_daily_soft_percent": "50"}, "budget_daily", "required"),
    ({"budget_monthly_soft_percent": "150"}, "budget_monthly", "a percentage above 0 and below"),
    ({"budget_total_limit_usd": "0.0000001"}, "budget_total", "at most 6 decimal places"),
    ({"name": "   "}, "name", "expected a non-empty string"),
    ({"name": "nul\x00name"}, "name", "must not contain NUL"),
    ({"expires_at": "next tuesday"}, "expires_at", "not an ISO 8601 time"),
    ({"expires_at": "0001-01-01T00:00"}, "expires_at", "between 1970-01-01"),
    ({"metadata": "{not json"}, "metadata", "not valid JSON"),
    ({"metadata": "[1, 2]"}, "metadata", "expected a JSON object"),
    ({"guardrails": ["codenames", "pii"]}, "guardrails", "unknown guardrail 'pii'"),
    ({"allowed_model_patterns": "x" * 300}, "allowed_models", "at most 256 characters"),
    ({"default_tags": "ok, " + "t" * 65}, "default_tags", "at most 64 characters"),
    ({"workspace": "no-such-workspace"}, "workspace", "No workspace 'no-such-workspace'"),
    ({"role": "root"}, "role", "expected one of user, master"),
]


@pytest.mark.parametrize(("changes", "field", "problem"), INVALID_FIELDS)
def test_a_refused_key_shows_the_problem_at_its_field_and_keeps_what_was_typed(
    console: GatewayProcess, changes: FormData, field: str, problem: str
) -> None:
    form = key_form(**changes)
    keys_before = key_count(console)
    with console.http() as http:
        response = http.post("/admin/keys/new", data=form)
    assert response.status_code == 400, response.text[:2000]
    page = Page(response.text)
    assert problem.lower() in page.text(f"error-{field}").lower()
    assert page.ids_with_prefix("error-") == {field, "form"}
    assert page.value("field-name") == form["name"]
    assert page.value("field-rpm_limit") == form["rpm_limit"]
    assert page.value("field-budget_monthly_limit_usd") == form["budget_monthly_limit_usd"]
    assert page.value("field-default_tags") == form["default_tags"]
    assert page.value("field-role") == form["role"] or field == "role"
    assert page.checked("allowed_models") == ["mock-gpt"]
    if "guardrails" in changes:
        assert page.checked("guardrails") == changes["guardrails"]
    assert key_count(console) == keys_before


def test_a_new_key_is_shown_once_works_with_the_sdk_and_is_refused_once_revoked(
    watched: tuple[GatewayProcess, LogWatch],
) -> None:
    console, log = watched
    mark = log.mark()
    form = key_form(expires_at="2031-05-01T12:30", guardrails=["codenames"])
    with console.http() as http:
        new = html_page(http, "/admin/keys/new")
        assert dict(new.form_values("key-form"))["csrf_token"] == ""
        response = http.post("/admin/keys/new", data=form)
        assert response.status_code == 200, response.text[:2000]
        assert response.headers["cache-control"] == "no-store"
        created = Page(response.text)
        secret = created.text("new-key-secret")
        shown_secrets.append(secret)
        assert secret.startswith(KEY_PREFIX)
        assert created.element("copy-new-key-secret").get("data-copy-from") == "new-key-secret"
        (stored,) = keys_named(console, str(form["name"]))
        assert stored["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
        key_id = stored["key_id"]
        assert created.element("new-key-detail-link").get("href") == f"/admin/keys/{key_id}"

        snippet = created.element("new-key-snippet").text
        assert f'OpenAI(base_url="{console.base_url}", api_key="{secret}")' in snippet
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(snippet, {})  # the snippet as a reader pastes it
        assert printed.getvalue().strip()

        answer = console.client(api_key=secret).chat.completions.create(
            model="mock-gpt", messages=HELLO
        )
        assert answer.choices[0].message.content
        stored_key = http.get(f"{API}/keys/{key_id}").json()
        assert stored_key["rpm_limit"] == 60
        assert stored_key["budgets"] == [
            {"limit_usd": "10.00", "window": "monthly", "soft_percent": 80}
        ]
        assert stored_key["allowed_models"] == ["mock-gpt"]
        assert stored_key["default_tags"] == ["billing", "nightly"]
        assert stored_key["guardrails"] == ["codenames"]
        assert stored_key["expires_at"] == "2031-05-01T12:30:00Z"

        later = [f"/admin/keys/{key_id}", f"/admin/keys/{key_id}/revoke", "/admin/keys"]
        for path in later:
            assert_never_shown(html_page(http, path).html, secret, stored["key_hash"])

        confirm = html_page(http, f"/admin/keys/{key_id}/revoke")
        fields = confirm.form_values("revoke-form")
        assert fields == [("csrf_token", "")]
        assert confirm.element("cancel-revoke").get("href") == f"/admin/keys/{key_id}"
        revoked = http.post(f"/admin/keys/{key_id}/revoke", data=as_form(fields))
        assert revoked.status_code == 303
        assert revoked.headers["location"] == f"/admin/keys/{key_id}?revoked=1"
        detail = html_page(http, revoked.headers["location"])
        assert detail.text("key-state") == "revoked"
        assert "revoked" in detail.text("notice")
        assert "key-form" not in detail and "revoke-key-link" not in detail
        wait_for_401(console, secret)
    assert secret not in log.since(mark)


# --- edit ---------------------------------------------------------------------------------------


def test_the_edit_form_changes_only_what_was_changed(console: GatewayProcess) -> None:
    with console.http() as http:
        created = api_key(
            http,
            allowed_models=["mock-gpt", "gpt-4o*"],
            rpm_limit=60,
            budgets=[{"limit_usd": "10", "window": "monthly", "soft_percent": 80}],
            default_tags=["a"],
            guardrails=["codenames"],
            metadata={"owner": "ana", "cost_centre": 12},
            expires_at="2031-05-01T12:30:45Z",
        )
        key_id = created["id"]
        before = http.get(f"{API}/keys/{key_id}").json()
        page = html_page(http, f"/admin/keys/{key_id}")
        assert page.value("field-rpm_limit") == "60"
        assert page.checked("allowed_models") == ["mock-gpt"]
        assert page.value("field-allowed_model_patterns") == "gpt-4o*"
        assert page.value("field-budget_monthly_limit_usd") == "10.00"
        assert page.value("field-budget_monthly_soft_percent") == "80"
        assert page.value("field-expires_at") == "2031-05-01T12:30:45"
        assert page.checked("guardrails") == ["codenames"]
        fields = page.form_values("key-form")

        unchanged = http.post(f"/admin/keys/{key_id}", data=as_form(fields))
        assert unchanged.status_code == 303
        assert unchanged.headers["location"] == f"/admin/keys/{key_id}?saved=0"
        assert http.get(f"{API}/keys/{key_id}").json() == before

        edited = http.post(
            f"/admin/keys/{key_id}",
            data=as_form(fields, rpm_limit="120", budget_daily_limit_usd="1.5", max_parallel="4"),
        )
        assert edited.status_code == 303
        assert edited.headers["location"] == f"/admin/keys/{key_id}?saved=1"
        after = http.get(f"{API}/keys/{key_id}").json()
        assert after["rpm_limit"] == 120 and after["max_parallel"] == 4
        assert after["budgets"] == [
            {"limit_usd": "1.50", "window": "daily"},
            {"limit_usd": "10.00", "window": "monthly", "soft_percent": 80},
        ]
        changed = {"rpm_limit", "max_parallel", "budgets"}
        assert {k: v for k, v in after.items() if k not in changed} == {
            k: v for k, v in before.items() if k not in changed
        }
        assert "saved" in html_page(http, edited.headers["location"]).text("notice").lower()

        refused = http.post(
            f"/admin/keys/{key_id}", data=as_form(fields, name="renamed", tpm_limit="0")
        )
        assert refused.status_code == 400
        again = Page(refused.text)
        assert "positive whole number" in again.text("error-tpm_limit")
        assert again.value("field-name") == "renamed"
        assert http.get(f"{API}/keys/{key_id}").json() == after

        cleared = http.post(
            f"/admin/keys/{key_id}",
            data=as_form(
                fields, allowed_models=[], allowed_model_patterns="", expires_at="", metadata=""
            ),
        )
        assert cleared.status_code == 303
        final = http.get(f"{API}/keys/{key_id}").json()
        assert final["allowed_models"] is None
        assert final["expires_at"] is None
        assert final["metadata"] == {}


# --- who sees what ------------------------------------------------------------------------------


def test_a_workspace_admin_sees_and_manages_only_its_own_workspace(console: GatewayProcess) -> None:
    with console.http() as http:
        own, other = api_workspace(http, "own"), api_workspace(http, "other")
        admin = api_key(http, workspace=own["slug"], role="master")
        own_key = api_key(http, workspace=own["slug"])
        other_key = api_key(http, name=unique("hidden"), workspace=other["slug"])

    with console.http(admin["key"]) as as_admin:
        listing = html_page(as_admin, "/admin/keys?state=all")
        assert listing.ids_with_prefix("key-row-") == {admin["id"], own_key["id"]}
        assert other_key["name"] not in listing.html and other["slug"] not in listing.html
        assert "filter-workspace" not in listing
        for path in (
            f"/admin/keys/{other_key['id']}",
            f"/admin/keys/{other_key['id']}/revoke",
            f"/admin/keys?workspace={other['slug']}",
            f"/admin/keys/new?workspace={other['slug']}",
            f"/admin/workspaces/{other['slug']}",
            f"/admin/workspaces/{other['id']}",
        ):
            response = as_admin.get(path)
            assert response.status_code == 404, path
            assert other_key["name"] not in response.text
        assert as_admin.post(f"/admin/keys/{other_key['id']}/revoke").status_code == 404
        assert (
            as_admin.post(f"/admin/keys/{other_key['id']}", data={"name": "x"}).status_code == 404
        )

        elsewhere = as_admin.post("/admin/keys/new", data=key_form(workspace=other["slug"]))
        assert elsewhere.status_code == 400
        assert f"No workspace '{other['slug']}'" in Page(elsewhere.text).text("error-form")

        form = key_form(workspace="")
        made = as_admin.post("/admin/keys/new", data=form)
        assert made.status_code == 200, made.text[:2000]
        shown_secrets.append(Page(made.text).text("new-key-secret"))
        assert "field-workspace" not in html_page(as_admin, "/admin/keys/new")

        workspaces = html_page(as_admin, "/admin/workspaces")
        assert workspaces.ids_with_prefix("workspace-row-") == {own["slug"]}
        assert "new-workspace-link" not in workspaces
        own_page = html_page(as_admin, f"/admin/workspaces/{own['slug']}")
        assert "workspace-form" not in own_page and "workspace-new-key-link" in own_page
        assert as_admin.get("/admin/workspaces/new").status_code == 403
        assert as_admin.post("/admin/workspaces/new", data={"slug": "mine"}).status_code == 403
        assert (
            as_admin.post(f"/admin/workspaces/{own['id']}", data={"name": "x"}).status_code == 403
        )

    with console.http() as http:
        assert http.get(f"{API}/keys/{other_key['id']}").json()["status"] == "active"
        (made_key,) = keys_named(console, str(form["name"]))
        assert http.get(f"{API}/keys/{made_key['key_id']}").json()["workspace_id"] == own["id"]
        assert http.get(f"{API}/workspaces/{own['slug']}").json()["name"] == own["name"]
        user_key = api_key(http)["key"]
    with console.http(user_key) as as_user:
        assert as_user.get("/admin/keys").status_code == 403
        assert as_user.get("/admin/workspaces").status_code == 403
    with httpx.Client(base_url=console.url) as anonymous:  # sent to sign in, nothing made
        for answer in (
            anonymous.get("/admin/keys"),
            anonymous.post("/admin/keys/new", data=key_form()),
        ):
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/admin/signin?next=/admin/keys")


# --- workspaces ---------------------------------------------------------------------------------


def test_workspaces_are_created_listed_with_their_keys_and_changed(console: GatewayProcess) -> None:
    slug = unique("team")
    with console.http() as http:
        new = html_page(http, "/admin/workspaces/new")
        fields = as_form(
            new.form_values("workspace-form"),
            slug=slug,
            name="Team",
            rpm_limit="600",
            budget_monthly_limit_usd="250",
            budget_monthly_soft_percent="90",
            guardrails=["codenames"],
        )
        assert fields["csrf_token"] == ""
        created = http.post("/admin/workspaces/new", data=fields)
        assert created.status_code == 303, created.text[:2000]
        workspace = http.get(f"{API}/workspaces/{slug}").json()
        assert created.headers["location"] == f"/admin/workspaces/{workspace['id']}?created=1"
        assert workspace["name"] == "Team"
        assert workspace["settings"] == {
            "budgets": [{"limit_usd": "250.00", "window": "monthly", "soft_percent": 90}],
            "rpm_limit": 600,
            "tpm_limit": None,
            "max_parallel": None,
            "guardrails": ["codenames"],
        }

        api_key(http, workspace=slug)
        api_key(http, workspace=slug, expires_at="2020-01-01T00:00:00Z")
        gone = api_key(http, workspace=slug)
        http.post(f"{API}/keys/{gone['id']}/revoke")
        detail = html_page(http, created.headers["location"])
        assert "created" in detail.text("notice").lower()
        assert detail.text("workspace-key-counts") == "1 active · 1 expired · 1 revoked"
        assert detail.element("workspace-keys-link").get("href") == f"/admin/keys?workspace={slug}"
        listing = html_page(http, "/admin/workspaces")
        row = listing.text(f"workspace-row-{slug}")
        for shown in ("Team", "600 requests/min", "$250.00/monthly@90%", "codenames"):
            assert shown in row, (shown, row)
        assert "default" in listing.ids_with_prefix("workspace-row-")

        duplicate = http.post("/admin/workspaces/new", data={**fields, "name": "Again"})
        assert duplicate.status_code == 400
        assert "already exists" in Page(duplicate.text).text("error-slug")
        bad_slug = http.post("/admin/workspaces/new", data={**fields, "slug": "Not A Slug"})
        assert bad_slug.status_code == 400
        assert Page(bad_slug.text).value("field-slug") == "Not A Slug"
        assert "lowercase letters" in Page(bad_slug.text).text("error-slug")

        form = detail.form_values("workspace-form")
        edited = http.post(
            f"/admin/workspaces/{workspace['id']}",
            data=as_form(form, name="Team Two", rpm_limit="", budget_daily_limit_usd="5"),
        )
        assert edited.status_code == 303
        assert edited.headers["location"] == f"/admin/workspaces/{workspace['id']}?saved=1"
        after = http.get(f"{API}/workspaces/{slug}").json()
        assert after["name"] == "Team Two"
        assert after["settings"]["rpm_limit"] is None
        assert after["settings"]["budgets"] == [
            {"limit_usd": "5.00", "window": "daily"},
            {"limit_usd": "250.00", "window": "monthly", "soft_percent": 90},
        ]
        assert after["settings"]["guardrails"] == ["codenames"]

        refused = http.post(
            f"/admin/workspaces/{workspace['id']}",
            data=as_form(form, budget_weekly_limit_usd="-1", tpm_limit="10"),
        )
        assert refused.status_code == 400
        page = Page(refused.text)
        assert "positive amount" in page.text("error-budget_weekly")
        assert page.value("field-tpm_limit") == "10"
        assert http.get(f"{API}/workspaces/{slug}").json() == after

        same = html_page(http, f"/admin/workspaces/{slug}").form_values("workspace-form")
        unchanged = http.post(f"/admin/workspaces/{slug}", data=as_form(same))
        assert unchanged.headers["location"] == f"/admin/workspaces/{workspace['id']}?saved=0"
