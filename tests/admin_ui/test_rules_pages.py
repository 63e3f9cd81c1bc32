"""The console's rule pages (`/admin/rules/...`) against a running gateway, on SQLite and Postgres.

Pages are read as a browser gets them (HTML) and checked against what the JSON API says about the
same rules, simulations and replays: the pages call the same functions, so the two must agree.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from rules.store import RuleStore
from telemetry.db import create_engine
from tests.admin_ui.conftest import create_key
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

CONFIG_RULE: dict[str, Any] = {
    "id": "file-tagger",
    "name": "Tags tagged traffic",
    "priority": 50,
    "when": {"tags": {"contains": "from-file"}},
    "then": {"tag": ["file"]},
}
PAGES = "/admin/rules"


@pytest.fixture(scope="module")
def pages_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(mock_provider, rules=[CONFIG_RULE])
    config["models"]["mock-large"] = [{"provider": "mock", "model": "mock-gpt-large"}]
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("rules-pages-gateway"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def http(pages_gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with pages_gateway.http() as client:
        yield client


# --- reading pages --------------------------------------------------------------------------


def page(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def element(html: str, element_id: str) -> str:
    """The markup of the element with this id, up to its closing tag (elements of the same
    name nested inside are counted)."""
    opening = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"', html)
    assert opening is not None, f"no element #{element_id}"
    name = opening.group(1)
    depth, position = 0, opening.start()
    for tag in re.finditer(rf"<(/?){name}\b[^>]*>", html[opening.start() :]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return html[position : opening.start() + tag.end()]
    raise AssertionError(f"#{element_id} is not closed")


def text_of(markup: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def textarea(html: str, element_id: str) -> str:
    found = re.search(rf'<textarea[^>]*\bid="{element_id}"[^>]*>(.*?)</textarea>', html, re.S)
    assert found is not None, f"no textarea #{element_id}"
    return unescape(found.group(1))


def problem_paths(html: str, element_id: str) -> list[str]:
    return [
        unescape(path) for path in re.findall(r'data-path="([^"]*)"', element(html, element_id))
    ]


def refused(response: httpx.Response, status: int, words: str) -> None:
    """A refusal as a page gets it: the status and what went wrong, whether the console answers
    with its error page or the API's JSON error, never a trace."""
    assert response.status_code == status, response.text[:2000]
    assert words in unescape(response.text)
    assert "Traceback" not in response.text


def new_id(prefix: str = "page") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def save_new(http: httpx.Client, text: str) -> httpx.Response:
    return http.post(f"{PAGES}/new", data={"document": text, "csrf_token": ""})


def api_rule(http: httpx.Client, rule_id: str) -> dict[str, Any]:
    response = http.get(f"/admin/api/rules/{rule_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_state(http: httpx.Client, rule_id: str, state: str, timeout: float = 10.0) -> str:
    """The list page once it shows the rule in `state` (workers reload within about a second)."""
    deadline = time.monotonic() + timeout
    while True:
        html = page(http.get(PAGES))
        row = re.search(rf'<tr id="rule-{re.escape(rule_id)}"[^>]*data-state="([a-z-]+)"', html)
        if row is not None and row.group(1) == state:
            return html
        if time.monotonic() > deadline:
            raise AssertionError(f"{rule_id} is not shown {state}: {row and row.group(1)}")
        time.sleep(0.2)


# --- the list and the editor ----------------------------------------------------------------


def test_the_list_shows_each_rule_its_state_and_the_problems_of_a_rule_left_out(
    pages_gateway: GatewayProcess, http: httpx.Client
) -> None:
    kept, broken = new_id("kept"), new_id("broken")
    assert (
        save_new(
            http, f"id: {kept}\npriority: 7\nwhen: {{tags: {kept}}}\nthen:\n  route: mock-gpt\n"
        ).status_code
        == 303
    )

    async def store_rule_for_a_removed_model() -> None:
        # As if the config had lost the model under a stored rule.
        engine = create_engine(pages_gateway.database.url)
        try:
            await RuleStore(engine).create(
                {"id": broken, "priority": 8, "then": {"route": "model-removed"}}, "someone"
            )
        finally:
            await engine.dispose()

    asyncio.run(store_rule_for_a_removed_model())
    html = wait_state(http, broken, "problem")

    rows = element(html, "rules-table")
    assert f'id="rule-{kept}"' in rows and 'data-state="in-force"' in element(html, f"rule-{kept}")
    broken_row = element(html, f"rule-{broken}")
    assert "then.route.model" in problem_paths(broken_row, f"rule-{broken}")
    assert "unknown model &#39;model-removed&#39;" in broken_row or "model-removed" in broken_row
    assert "by someone" in text_of(broken_row)
    listed = {item["id"]: item for item in http.get("/admin/api/rules").json()["data"]}
    assert listed[broken]["in_force"] is False and listed[broken]["problems"]

    config_row = text_of(element(html, "rule-file-tagger"))
    assert "config file" in config_row and "In force" in config_row
    assert "Edit" not in config_row, "a config file rule is not editable here"

    filtered = page(http.get(PAGES, params={"state": "problem"}))
    assert f'id="rule-{broken}"' in filtered and f'id="rule-{kept}"' not in filtered
    editor = page(http.get(f"{PAGES}/{broken}/edit"))
    assert "then.route.model" in problem_paths(editor, "rule-left-out")


def test_an_invalid_rule_shows_each_problem_by_path_and_keeps_the_text(
    http: httpx.Client,
) -> None:
    rule_id = new_id()
    typed = (
        f"id: {rule_id}\n"
        "when:\n"
        "  all:\n"
        "    - tags: premium\n"
        "    - model: 5\n"
        "then:\n"
        "  route: no-such-model\n"
    )
    html = page(save_new(http, typed), 400)
    assert problem_paths(html, "rule-problems") == ["when.all[1].model", "then.route.model"]
    problems = element(html, "rule-problems")
    assert "line 5" in text_of(problems) and "line 7" in text_of(problems)
    assert textarea(html, "rule-text") == typed
    assert 'aria-invalid="true"' in html
    assert http.get(f"/admin/api/rules/{rule_id}").status_code == 404

    broken_yaml = f"id: {rule_id}\nthen: [route: x\n"
    html = page(save_new(http, broken_yaml), 400)
    assert "YAML syntax error" in text_of(element(html, "rule-problems"))
    assert textarea(html, "rule-text") == broken_yaml
    as_json = json.dumps({"id": rule_id, "then": {"route": "mock-gpt"}, "priority": "high"})
    html = page(save_new(http, as_json), 400)
    assert problem_paths(html, "rule-problems") == ["priority"]
    assert textarea(html, "rule-text") == as_json


def test_saving_creates_versions_and_the_history_shows_each_change(http: httpx.Client) -> None:
    rule_id = new_id()
    first = (
        f"id: {rule_id}\npriority: 20\nwhen:\n  all:\n    - tags: premium\n"
        "    - model: mock-gpt\nthen:\n  route: mock-large\n"
    )
    created = save_new(http, first)
    assert created.status_code == 303
    assert created.headers["location"] == f"{PAGES}/{rule_id}/edit?saved=1"
    editor = page(http.get(created.headers["location"]))
    assert "Saved as version 1; in force now." in text_of(element(editor, "rule-saved"))
    assert re.search(r'name="version" value="1"', editor)
    assert api_rule(http, rule_id)["version"] == 1

    second = first.replace("model: mock-gpt", "model: mock-embedding").replace(
        "priority: 20", "priority: 30"
    )
    saved = http.post(
        f"{PAGES}/{rule_id}/edit", data={"document": second, "version": "1", "csrf_token": ""}
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("saved=2")
    stored = api_rule(http, rule_id)
    assert stored["version"] == 2 and stored["priority"] == 30
    assert stored["when"]["all"][1] == {"model": "mock-embedding"}

    stale = http.post(
        f"{PAGES}/{rule_id}/edit",
        data={
            "document": first.replace("priority: 20", "priority: 40"),
            "csrf_token": "",
            "version": "1",
        },
    )
    html = page(stale, 409)
    assert "at version 2, not 1" in text_of(element(html, "rule-error"))
    assert textarea(html, "rule-text") == first.replace("priority: 20", "priority: 40")
    assert api_rule(http, rule_id)["version"] == 2

    history = page(http.get(f"{PAGES}/{rule_id}/history"))
    version_two = element(history, "version-2")
    changed = re.search(
        r'<tr class="diff-changed" data-path="when.all\[1\].model">(.*?)</tr>', version_two, re.S
    )
    assert changed is not None, version_two
    assert text_of(changed.group(1)) == '~ changed when.all[1].model "mock-gpt" "mock-embedding"'
    assert 'data-path="priority"' in version_two
    assert "by master" in text_of(version_two) and "current" in text_of(version_two)
    assert "rollback-2" not in history and 'id="rollback-1"' in history

    compared = page(http.get(f"{PAGES}/{rule_id}/history", params={"from": 2, "to": 1}))
    comparison = element(compared, "history-comparison")
    assert 'data-path="when.all[1].model"' in comparison and 'data-path="priority"' in comparison


def test_rollback_restores_an_earlier_version_even_after_a_delete(http: httpx.Client) -> None:
    rule_id = new_id()
    original = f"id: {rule_id}\npriority: 15\nwhen:\n  tags: gold\nthen:\n  route: mock-gpt\n"
    assert save_new(http, original).status_code == 303
    changed = original.replace("tags: gold", "tags: silver")
    http.post(f"{PAGES}/{rule_id}/edit", data={"document": changed, "version": "1"})
    assert api_rule(http, rule_id)["when"] == {"tags": "silver"}

    restored = http.post(f"{PAGES}/{rule_id}/rollback", data={"version": "1", "csrf_token": ""})
    assert restored.status_code == 303
    assert restored.headers["location"] == f"{PAGES}/{rule_id}/history?restored=1&now=3"
    rule = api_rule(http, rule_id)
    assert (rule["version"], rule["when"]) == (3, {"tags": "gold"})
    versions = http.get(f"/admin/api/rules/{rule_id}/history").json()["data"]
    assert versions[0]["action"] == "rollback"
    notice = page(http.get(restored.headers["location"]))
    assert "Version 1 restored as version 3" in text_of(element(notice, "history-restored"))

    disabled = http.post(f"{PAGES}/{rule_id}/disable", data={"next": PAGES})
    assert (disabled.status_code, disabled.headers["location"]) == (303, PAGES)
    assert api_rule(http, rule_id)["enabled"] is False
    wait_state(http, rule_id, "off")
    outside = http.post(f"{PAGES}/{rule_id}/enable", data={"next": "https://elsewhere.test/"})
    assert outside.headers["location"] == f"{PAGES}/{rule_id}/edit"
    assert api_rule(http, rule_id)["enabled"] is True

    deleted = http.post(f"{PAGES}/{rule_id}/delete", data={"csrf_token": ""})
    assert deleted.headers["location"] == f"{PAGES}?deleted={rule_id}"
    listing = page(http.get(deleted.headers["location"]))
    assert f'id="rule-{rule_id}"' not in listing and rule_id in element(listing, "rules-deleted")
    assert http.get(f"/admin/api/rules/{rule_id}").status_code == 404
    history = page(http.get(f"{PAGES}/{rule_id}/history"))
    assert "This rule is deleted." in text_of(element(history, "history-status"))
    http.post(f"{PAGES}/{rule_id}/rollback", data={"version": "2"})
    assert api_rule(http, rule_id)["when"] == {"tags": "silver"}


def test_unknown_rules_and_config_rules_are_refused_as_the_api_refuses_them(
    http: httpx.Client,
) -> None:
    refused(http.get(f"{PAGES}/no-such-rule/edit"), 404, "No rule with id 'no-such-rule'")
    refused(http.get(f"{PAGES}/no-such-rule/history"), 404, "No rule with id 'no-such-rule'")
    refused(
        http.post(f"{PAGES}/file-tagger/disable", data={}),
        409,
        "Rule 'file-tagger' is defined in the config file",
    )
    view = page(http.get(f"{PAGES}/file-tagger/edit"))
    assert "readonly" in re.search(r"<textarea[^>]*>", view).group(0)  # type: ignore[union-attr]
    assert 'id="rule-save"' not in view and 'id="rule-read-only"' in view
    clash = page(save_new(http, "id: file-tagger\nthen:\n  tag: [x]\n"), 409)
    assert "defined in the config file" in text_of(element(clash, "rule-error"))
    assert textarea(clash, "rule-text") == "id: file-tagger\nthen:\n  tag: [x]\n"
    reserved = page(save_new(http, "id: simulate\nthen:\n  tag: [x]\n"), 400)
    assert problem_paths(reserved, "rule-problems") == ["id"]


# --- simulate and replay --------------------------------------------------------------------


def test_simulate_prefilled_from_the_url_shows_the_matching_rule_as_the_api_does(
    http: httpx.Client,
) -> None:
    rule_id = new_id("gold")
    text = (
        f"id: {rule_id}\npriority: 5\nwhen:\n  all:\n    - tags: gold\n"
        "    - metadata.tier: platinum\nthen:\n  route: mock-large\n  cap: {max_tokens: 64}\n"
    )
    assert save_new(http, text).status_code == 303
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500}
    query = {
        "request": json.dumps(body),
        "operation": "chat",
        "tags": ["gold", "from-file"],
        "metadata": json.dumps({"tier": "platinum"}),
        "user": "someone",
        "time": "2026-11-21T18:00:00Z",
    }
    html = page(http.get(f"{PAGES}/simulate", params=query))
    form = element(html, "simulate-form")
    assert re.search(r'id="sim-model"[^>]*value="mock-gpt"', form)
    assert re.search(r'id="sim-tags"[^>]*value="gold, from-file"', form)
    assert json.loads(textarea(form, "sim-messages")) == body["messages"]
    assert json.loads(textarea(form, "sim-request")) == {"max_tokens": 500}

    matched = element(html, "simulation-matched")
    # The first rule that matches ends the evaluation: the config file's rule (priority 50)
    # would match the from-file tag, but the new rule (priority 5) comes first.
    assert re.findall(r'<tr data-rule-id="([^"]+)"', matched) == [rule_id]
    assert "metadata.tier" in text_of(matched)
    api = http.post(
        "/admin/api/rules/simulate",
        json={
            "request": body,
            "tags": ["gold", "from-file"],
            "metadata": {"tier": "platinum"},
            "user": "someone",
            "time": "2026-11-21T18:00:00Z",
        },
    ).json()
    assert [match["rule_id"] for match in api["matched"]] == [rule_id]
    route = text_of(element(html, "simulation-route-name"))
    assert route == api["route"]["name"] == "mock-large"
    sent = json.loads(text_of(element(html, "simulation-request")))
    assert sent == api["request"] and sent["max_tokens"] == 64

    alone = {
        "model": "mock-gpt",
        "prompt": "hi",
        "rules": "id: never\nwhen: {tags: never}\nthen: {tag: [x]}",
    }
    typed = page(http.get(f"{PAGES}/simulate", params=alone))
    assert 'id="simulation-no-match"' in typed
    assert "The candidate rules alone" in text_of(element(typed, "simulation-summary"))
    wrong = page(
        http.get(f"{PAGES}/simulate", params={"model": "mock-gpt", "metadata": "[1]"}), 400
    )
    assert "must be a JSON object" in text_of(element(wrong, "sim-metadata-error"))
    candidate = page(
        http.get(
            f"{PAGES}/simulate",
            params={"model": "mock-gpt", "prompt": "hi", "rules": "- then: {route: nope}"},
        ),
        400,
    )
    assert problem_paths(candidate, "sim-rule-problems") == ["[0].then.route.model"]


def chat(gateway: GatewayProcess, text: str, tags: str) -> str:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": text}]
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=messages, extra_headers={"x-steerway-tags": tags}
    )
    return raw.headers["x-steerway-trace-id"]


def test_replay_shows_the_model_mix_before_and_after_and_the_exact_cost_difference(
    pages_gateway: GatewayProcess, http: httpx.Client
) -> None:
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    run = secrets.token_hex(4)
    traces = [chat(pages_gateway, f"question {n}", f"vip-{run}") for n in range(2)]
    traces.append(chat(pages_gateway, "another", run))
    for trace_id in traces:
        assert pages_gateway.database.wait_rows(
            "SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id
        )
    candidate = (
        f"id: vip-{run}\npriority: 1\nwhen:\n  tags: vip-{run}\nthen:\n  route: mock-large\n"
    )
    query = {"run": "1", "since": since, "rules": candidate, "merge": "on", "requests": "100"}
    html = page(http.get(f"{PAGES}/replay", params=query))

    mix = element(html, "replay-model-mix")
    rows = {
        name: text_of(cells)
        for name, cells in re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', mix, re.S)
    }
    assert rows == {
        "mock-gpt": "mock-gpt 3 100.0% 1 33.3% -2",
        "mock-large": "mock-large 0 0.0% 2 66.7% +2",
    }
    chart = element(html, "replay-mix-chart")
    assert "<title>mock-large, after (replayed rules): 2 requests (66.7%)</title>" in chart
    assert "requests</text>" in chart and "Before (as recorded)" in chart

    api = http.post(
        "/admin/api/rules/replay",
        json={
            "since": since,
            "last": 100,
            "merge": True,
            "rules": [
                {
                    "id": f"vip-{run}",
                    "priority": 1,
                    "when": {"tags": f"vip-{run}"},
                    "then": {"route": "mock-large"},
                }
            ],
        },
    ).json()
    difference = Decimal(api["cost"]["difference_usd"])
    assert difference > 0
    shown = text_of(element(html, "replay-cost-difference"))
    assert shown == f"+${format(difference, 'f')}"
    assert text_of(element(html, "replay-cost-before")) == f"${api['cost']['before_usd']}"
    assert api["requests"] == 3 and "3" in text_of(element(html, "replay-summary"))
    rules = element(html, "replay-rule-counts")
    assert re.search(rf'data-rule-id="vip-{run}">.*?candidate', rules, re.S)

    empty = page(
        http.get(
            f"{PAGES}/replay", params={"run": "1", "since": "2001-01-01", "until": "2001-01-02"}
        )
    )
    assert 'id="replay-empty"' in empty
    refused = page(http.get(f"{PAGES}/replay", params={"run": "1", "requests": "0"}), 400)
    assert "positive integer" in text_of(element(refused, "replay-requests-error"))
    intro = page(http.get(f"{PAGES}/replay"))
    assert 'id="replay-intro"' in intro and 'id="replay-result"' not in intro


# --- who may see them -----------------------------------------------------------------------


def test_only_an_operator_sees_the_rule_pages(
    pages_gateway: GatewayProcess, http: httpx.Client
) -> None:
    slug = f"team-{secrets.token_hex(3)}"
    workspace = http.post("/admin/api/workspaces", json={"slug": slug}).json()
    admin = http.post(
        "/admin/api/keys",
        json={"name": "team admin", "workspace": workspace["id"], "role": "master"},
    ).json()["key"]
    user = create_key(pages_gateway.database, "plain user")
    paths = [
        PAGES,
        f"{PAGES}/new",
        f"{PAGES}/simulate?model=mock-gpt&prompt=x",
        f"{PAGES}/replay?run=1",
    ]
    operator = "the master key or an admin key of the default workspace"
    before = http.get("/admin/api/rules").json()["data"]
    with pages_gateway.http(admin) as team_admin:
        for path in paths:
            refused(team_admin.get(path), 403, operator)
        refused(
            team_admin.post(f"{PAGES}/new", data={"document": "then: {tag: [x]}"}), 403, operator
        )
    with pages_gateway.http(user) as plain:
        assert plain.get(PAGES).status_code == 403
    with httpx.Client(base_url=pages_gateway.url) as anonymous:
        sent = anonymous.get(PAGES)
        assert (sent.status_code, sent.headers["location"]) == (303, f"/admin/signin?next={PAGES}")
    assert http.get("/admin/api/rules").json()["data"] == before, "nothing was created"
