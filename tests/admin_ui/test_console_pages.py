"""Console pages over HTTP against a running gateway, on SQLite and Postgres: the trace page,
its workspace scoping, error pages in the layout (JSON under /admin/api), static files."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from admin_ui.formatting import dollars, tokens
from admin_ui.static_files import static_assets
from tests.admin_ui.conftest import create_key, error_of, workspace_keys
from tests.e2e.conftest import GatewayProcess

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello <script>x</script>"}]


def recorded_trace(gateway: GatewayProcess, api_key: str | None = None) -> str:
    raw = gateway.client(api_key).chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO, extra_headers={"x-steerway-tags": "console-page"}
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    for table in ("traces", "ai_interactions", "spans"):
        assert gateway.database.wait_rows(f"SELECT 1 FROM {table} WHERE trace_id = :t", t=trace_id)
    return trace_id


def page_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    assert '<nav class="sidebar"' in text  # in the console's layout
    return text


def test_the_trace_page_shows_what_was_recorded(gateway: GatewayProcess) -> None:
    trace_id = recorded_trace(gateway)
    with gateway.http() as http:
        text = page_of(http.get(f"/admin/traces/{trace_id}"), 200)
    assert trace_id in text
    assert '<svg class="waterfall"' in text
    spans = gateway.database.rows("SELECT name FROM spans WHERE trace_id = :t", t=trace_id)
    assert text.count('<g class="wf-row"') == len(spans) >= 4
    assert all(f">{row['name']}</text>" in text for row in spans)
    decisions = gateway.database.rows("SELECT type FROM decisions WHERE trace_id = :t", t=trace_id)
    assert text.count('<li class="decision">') == len(decisions) >= 1
    (interaction,) = gateway.database.rows(
        "SELECT prompt_tokens, completion_tokens FROM ai_interactions WHERE trace_id = :t",
        t=trace_id,
    )
    assert f"<dt>Prompt tokens</dt><dd>{tokens(interaction['prompt_tokens'])}</dd>" in text
    detail = http_json(gateway, f"/admin/api/traces/{trace_id}")
    cost = detail["interactions"][0]["cost_usd"]
    assert f"<dt>Cost</dt><dd>{dollars(cost)}" in text
    # stored content is shown as text, never as markup
    assert "hello &lt;script&gt;x&lt;/script&gt;" in text and "<script>x</script>" not in text
    # the curl command names the key's variable, never a key
    assert "$STEERWAY_KEY" in text and gateway.master_key not in text
    simulate = re.search(r'href="(/admin/rules/simulate\?[^"]+)"', text)
    assert simulate and "request=" in simulate.group(1)


def http_json(gateway: GatewayProcess, path: str) -> dict:
    with gateway.http() as http:
        response = http.get(path)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_missing_trace_is_a_404_page(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        text = page_of(http.get(f"/admin/traces/{'0' * 32}"), 404)
        # the JSON API keeps answering in JSON
        assert error_of(http.get(f"/admin/api/traces/{'0' * 32}"), 404)["code"] == "trace_not_found"
    assert "<h1" in text and "Not found" in text
    assert (
        f"No trace with id &#39;{'0' * 32}&#39;." in text
        or f"No trace with id '{'0' * 32}'" in html.unescape(text)
    )


def test_another_workspaces_trace_is_a_404_for_a_workspace_admin(gateway: GatewayProcess) -> None:
    slug, admin, user = workspace_keys(gateway, "pages")
    theirs = recorded_trace(gateway)  # the default workspace's
    ours = recorded_trace(gateway, api_key=user)
    with gateway.http(admin) as http:
        hidden = page_of(http.get(f"/admin/traces/{theirs}"), 404)
        shown = page_of(http.get(f"/admin/traces/{ours}"), 200)
    assert "Not found" in hidden and "mock-gpt" not in hidden
    assert ours in shown and slug in shown
    # the workspace picker offers only the admin's own workspace
    options = re.findall(r'<option value="([^"]*)"', shown.split('name="last"')[0])
    assert options == [slug]


def test_without_an_admin_key_the_pages_say_so_in_html(gateway: GatewayProcess) -> None:
    trace_id = recorded_trace(gateway)
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        # Nobody signed in: off to the sign-in form, which comes back here afterwards.
        sent = http.get(f"/admin/traces/{trace_id}")
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/admin/signin?next=/admin/traces/{trace_id}"
        signin = http.get(sent.headers["location"])
        assert (
            signin.status_code == 200
            and '<form method="post" action="/admin/signin"' in signin.text
        )
        assert "mock-gpt" not in signin.text
        wrong = page_of(
            http.get(f"/admin/traces/{trace_id}", headers={"Authorization": "Bearer sk-wrong"}),
            401,
        )
    user = create_key(gateway.database, "page-user")
    with gateway.http(user) as http:
        refused = page_of(http.get(f"/admin/traces/{trace_id}"), 403)
    for text in (wrong, refused):
        assert trace_id not in text.split("<main")[1].split("error-path")[0]
        assert "mock-gpt" not in text
    assert "Sign in" in wrong and "sk-wrong" not in wrong
    assert "not an admin key" in refused


def test_unknown_pages_and_bad_ids_are_pages_too(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        nowhere = page_of(http.get("/admin/no-such-page"), 404)
        bad = page_of(http.get("/admin/traces/abc%00def"), 400)
        # the API answers the same mistake in JSON
        api = error_of(http.get("/admin/api/traces/abc%00def"), 400)
    assert "There is no page at /admin/no-such-page." in nowhere
    assert "&#39;trace_id&#39;" in bad
    assert api["param"] == "trace_id"


@pytest.mark.parametrize("path", ["/admin", "/admin/"])
def test_the_console_opens_on_the_traces(gateway: GatewayProcess, path: str) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        response = http.get(path)
    assert response.status_code == 302
    assert response.headers["location"] == "/admin/traces"


def test_static_files_have_their_types_and_long_caches_for_versioned_urls(
    gateway: GatewayProcess,
) -> None:
    assets = static_assets()
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        for name, content_type in (
            ("console.css", "text/css; charset=utf-8"),
            ("console.js", "text/javascript; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ):
            versioned = http.get(assets.url(name))
            assert versioned.status_code == 200
            assert versioned.headers["content-type"] == content_type
            assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert versioned.headers["x-content-type-options"] == "nosniff"
            assert versioned.content == assets.assets[name].body
            plain = http.get(f"/admin/static/{name}")
            assert plain.headers["cache-control"] == "no-cache"
            again = http.get(
                f"/admin/static/{name}", headers={"If-None-Match": plain.headers["etag"]}
            )
            assert again.status_code == 304 and again.content == b""
        stale = http.get("/admin/static/console.css?v=000000000000")
        assert stale.headers["cache-control"] == "no-cache"
        for path in (
            "/admin/static/nothing.css",
            "/admin/static/../../gateway/proxy.py",
            "/admin/static/%2e%2e/console.py",
        ):
            missing = http.get(path)
            assert missing.status_code == 404, path
            assert b"import" not in missing.content


def test_pages_link_their_files_by_version(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        text = page_of(http.get(f"/admin/traces/{'0' * 32}"), 404)
    for name in ("console.css", "console.js"):
        assert f'"{static_assets().url(name)}"' in text
    # nothing is loaded from anywhere else
    assert not re.search(r'(src|href)="(https?:)?//', text)
