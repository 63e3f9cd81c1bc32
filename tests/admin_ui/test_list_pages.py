"""The console's list pages (traces, interactions, decisions, guardrail violations) against a
running gateway on SQLite and Postgres: the rows a filter must and must not show, paging by the
Older link, a workspace admin who never sees another workspace, refused filters as a 400 page
that keeps the form, and counts and paths that equal what the rows say.

The history is the search tests' corpus (`tests/telemetry/search_corpus.py`): requests whose
every property is known, so what a page must list is worked out from the specs.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from admin_ui.formatting import dollars
from admin_ui.path_flow import steps_of
from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from telemetry.decision_paths import RequestPath
from tests.admin_ui.html_page import Page
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.search_corpus import (
    END,
    OTHER_WORKSPACE_SLUG,
    START,
    Corpus,
    Spec,
    make_corpus,
)

RANGE = {"since": START.isoformat(), "until": END.isoformat()}


@pytest.fixture(scope="module")
def corpus(gateway: GatewayProcess) -> Corpus:
    async def write() -> Corpus:
        engine = create_engine(gateway.database.url)
        try:
            return await make_corpus(engine, count=60, seed=11)
        finally:
            await engine.dispose()

    return asyncio.run(write())


@pytest.fixture(scope="module")
def other_admin(gateway: GatewayProcess, corpus: Corpus) -> str:
    async def create() -> str:
        engine = create_engine(gateway.database.url)
        try:
            created = await KeyStore(engine).create(
                "other-admin", workspace_id=corpus.other_workspace, role="master"
            )
            return created.plaintext
        finally:
            await engine.dispose()

    return asyncio.run(create())


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


def get_page(
    http: httpx.Client, path: str, params: dict[str, Any] | None = None, status: int = 200
) -> Page:
    response = http.get(path, params={**RANGE, **(params or {})})
    assert response.status_code == status, response.text[-2000:]
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    return Page(response.text)


def row_ids(page: Page, kind: str) -> list[str]:
    """The ids of the rows a list page shows, in its order."""
    return re.findall(rf'<tr data-href="[^"]*" id="{kind}-row-([0-9a-f]+)"', page.html)


def every_row(http: httpx.Client, path: str, kind: str, params: dict[str, Any]) -> list[str]:
    """Every row of a list, following its Older links from the first page."""
    page = get_page(http, path, {**params, "limit": 7})
    found = row_ids(page, kind)
    for _ in range(100):
        if "page-older" not in page:
            break
        older = html.unescape(page.element("page-older").get("href") or "")
        assert older.startswith(path + "?") and "cursor=" in older
        response = http.get(older)
        assert response.status_code == 200, response.text[-2000:]
        page = Page(response.text)
        assert "page-newest" in page
        found += row_ids(page, kind)
    else:
        raise AssertionError("paging did not end")
    assert len(found) == len(set(found)), "a row came twice"
    return found


TRACE_FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"model": "gpt-4o-mini"}, lambda s: s.model == "gpt-4o-mini"),
    ({"status": ["denied", "cancelled"]}, lambda s: s.status in ("denied", "cancelled")),
    ({"tag": "beta"}, lambda s: "beta" in s.tags),
    ({"end_user": "alice", "cache_hit": "false"}, lambda s: s.end_user == "alice"),
    ({"rule": "r-eu"}, lambda s: "r-eu" in s.rules),
    ({"guardrail": "secrets"}, lambda s: any(g == "secrets" for g, _ in s.violations)),
    ({"min_duration_ms": "700"}, lambda s: s.duration_ms >= 700),
    ({"workspace": OTHER_WORKSPACE_SLUG}, lambda s: s.workspace_id != "0" * 32),
]


@pytest.mark.parametrize(
    ("params", "wanted"), TRACE_FILTERS, ids=[str(p) for p, _ in TRACE_FILTERS]
)
def test_the_traces_page_lists_the_rows_a_filter_wants(
    http: httpx.Client, corpus: Corpus, params: dict[str, Any], wanted: Any
) -> None:
    if params.get("cache_hit") == "false":
        expected = corpus.ids(where=lambda s: wanted(s) and not s.cache_hit)
    else:
        expected = corpus.ids(where=wanted)
    assert expected and expected != corpus.ids()
    page = get_page(http, "/admin/traces", {**params, "limit": 200})
    shown = row_ids(page, "trace")
    assert set(shown) == expected
    # newest first, and the filter bar shows what it filters by
    order = {s.trace_id: (s.started_at, s.trace_id) for s in corpus.specs}
    assert shown == sorted(shown, key=lambda i: order[i], reverse=True)
    for name, value in params.items():
        if name in ("status",):
            for status in value:
                assert f'name="status" value="{status}" checked' in page.html
        elif name not in ("workspace", "cache_hit"):
            assert page.value(f"filter-{name}") == value


def test_a_key_filter_and_the_names_in_rows(http: httpx.Client, corpus: Corpus) -> None:
    key_id, name = next(iter(corpus.keys.items()))
    page = get_page(http, "/admin/traces", {"key": key_id, "limit": 200})
    assert set(row_ids(page, "trace")) == corpus.ids(where=lambda s: s.key_id == key_id)
    assert page.value("filter-key") == key_id  # the key's select shows it chosen
    assert f">{name}</a>" in page.html
    spec = next(s for s in corpus.specs if s.key_id == key_id and s.status == "ok" and s.cost)
    row = page.text(f"trace-row-{spec.trace_id}")
    assert spec.model in row and dollars(spec.cost) in row


def test_paging_by_the_older_link_shows_every_trace_once(
    http: httpx.Client, corpus: Corpus
) -> None:
    assert set(every_row(http, "/admin/traces", "trace", {})) == corpus.ids()
    slowest = every_row(http, "/admin/traces", "trace", {"sort": "duration"})
    durations = {s.trace_id: s.duration_ms for s in corpus.specs}
    assert len(slowest) == len(corpus.specs)
    assert [durations[i] for i in slowest] == sorted(durations.values(), reverse=True)


def test_the_json_link_opens_the_same_list(http: httpx.Client, corpus: Corpus) -> None:
    page = get_page(http, "/admin/traces", {"model": "claude-3-5", "limit": 200})
    api = html.unescape(page.element("list-json").get("href") or "")
    assert api.startswith("/admin/api/traces?")
    rows = http.get(api).json()["data"]
    assert [row["trace_id"] for row in rows] == row_ids(page, "trace")


def test_without_a_range_the_top_bars_default_applies(http: httpx.Client) -> None:
    """The corpus is from 2024: the last 24 hours hold none of it."""
    response = http.get("/admin/traces")
    assert response.status_code == 200
    page = Page(response.text)
    assert row_ids(page, "trace") == []
    assert "No requests in this time range." in page.html
    assert '<option value="24h" selected>' in page.html


def test_the_other_lists_show_the_rows_their_filters_want(
    http: httpx.Client, corpus: Corpus
) -> None:
    retried = get_page(http, "/admin/interactions", {"attempt": "2", "limit": 200})
    traces = {
        tid
        for tid in re.findall(
            r'href="/admin/traces/([0-9a-f]+)#interactions-heading"', retried.html
        )
    }
    assert traces == corpus.ids(where=lambda s: s.retried and s.status != "denied")
    assert len(row_ids(retried, "interaction")) == len(traces)

    errors = get_page(http, "/admin/interactions", {"status": "error", "limit": 200})
    assert len(row_ids(errors, "interaction")) == sum(
        1 for s in corpus.specs for i in s.interactions if i["status"] == "error"
    )

    denied = get_page(
        http, "/admin/decisions", {"type": "rate_limit", "outcome": "denied", "limit": 200}
    )
    assert len(row_ids(denied, "decision")) == sum(1 for s in corpus.specs if s.status == "denied")

    masks = get_page(http, "/admin/violations", {"action": "mask", "limit": 200})
    shown = re.findall(
        r'<a class="below mono" href="/admin/traces/([0-9a-f]+)#violations', masks.html
    )
    assert Counter(shown) == Counter(
        s.trace_id for s in corpus.specs for g, a in s.violations if a == "mask"
    )


def test_decision_counts_equal_the_rows_listed(http: httpx.Client) -> None:
    page = get_page(http, "/admin/decisions")
    rows = listed_rows(http, "/admin/api/decisions", {})
    expected = Counter((row["type"], row["outcome"]) for row in rows)
    shown = dict(
        ((kind, outcome), int(count))
        for kind, outcome, count in re.findall(
            r'id="count-([a-z_]+)-([a-z_]+)" data-count="(\d+)"', page.html
        )
        if outcome != "total"
    )
    assert shown == expected
    assert int(page.element("counts-total").get("data-count") or 0) == len(rows)
    # a count opens the list of the rows it counts
    link = html.unescape(page.element("count-rate_limit-denied").get("href") or "")
    denied = Page(http.get(link).text)
    assert len(row_ids(denied, "decision")) == expected[("rate_limit", "denied")]


def listed_rows(http: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**RANGE, **params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        body = http.get(path, params=query).json()
        rows += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def path_of(spec: Spec) -> str:
    served = spec.status != "denied"
    path = RequestPath(
        rules=tuple(spec.rules),
        deployment=spec.deployment,
        provider=spec.provider,
        status=spec.status,
        error_type=spec.error_type,
        cache_hit=spec.cache_hit and served,
        requests=1,
    )
    return " | ".join(steps_of(path))


def test_the_paths_equal_what_the_requests_did(http: httpx.Client, corpus: Corpus) -> None:
    expected = Counter(path_of(s) for s in corpus.specs)
    page = get_page(http, "/admin/decisions")
    shown = {
        html.unescape(path): int(requests)
        for path, requests in re.findall(
            r'<tr id="path-\d+" data-path="([^"]+)" data-requests="(\d+)">', page.html
        )
    }
    assert shown and all(expected[path] == count for path, count in shown.items())
    # the most taken paths are the ones listed
    assert min(shown.values()) >= max(
        (count for path, count in expected.items() if path not in shown), default=0
    )
    assert int(page.element("paths-total").get("data-count") or 0) == len(corpus.specs)
    if len(expected) > len(shown):
        other = page.element("paths-other")
        assert int(other.get("data-paths") or 0) == len(expected) - len(shown)
        assert int(other.get("data-requests") or 0) == len(corpus.specs) - sum(shown.values())
    assert "<svg" in page.html and 'id="path-flow"' in page.html

    # for one rule, the paths of the requests it matched
    ruled = get_page(http, "/admin/decisions", {"rule": "r-premium"})
    total = int(ruled.element("paths-total").get("data-count") or 0)
    assert total == len(corpus.ids(where=lambda s: "r-premium" in s.rules))


def test_violation_counts_equal_the_findings(http: httpx.Client, corpus: Corpus) -> None:
    page = get_page(http, "/admin/violations")
    expected = Counter(finding for s in corpus.specs for finding in s.violations)
    for (guardrail, action), count in expected.items():
        cell = page.element(f"violation-counts-table-{guardrail}-{action}")
        assert int(cell.get("data-count") or 0) == count
    assert int(page.element("counts-total").get("data-count") or 0) == sum(expected.values())


PAGES = ("/admin/traces", "/admin/interactions", "/admin/decisions", "/admin/violations")


def test_an_admin_of_one_workspace_never_sees_another(
    gateway: GatewayProcess, corpus: Corpus, other_admin: str
) -> None:
    other = corpus.other_workspace
    ours = corpus.ids(scope=other)
    theirs = corpus.ids() - ours
    default_key = next(s.key_id for s in corpus.specs if s.workspace_id != other)
    with gateway.http(other_admin) as http:
        for path in PAGES:
            page = get_page(http, path, {"limit": 200})
            linked = set(re.findall(r'href="/admin/traces/([0-9a-f]{32})', page.html))
            assert linked and linked <= ours, path
            assert not linked & theirs, path
            assert "workspace=default" not in page.html  # no link to the other workspace
            assert default_key not in page.html  # nor its keys among the choices
            refused = get_page(http, path, {"workspace": "default"}, status=404)
            assert "'default'" in refused.text("filters-error")
            assert row_ids(refused, path.rsplit("/", 1)[1].rstrip("s")) == []
        assert set(every_row(http, "/admin/traces", "trace", {})) == ours
        counts = get_page(http, "/admin/decisions")
        assert int(counts.element("paths-total").get("data-count") or 0) == len(ours)
        violations = get_page(http, "/admin/violations")
        assert int(violations.element("counts-total").get("data-count") or 0) == sum(
            len(s.violations) for s in corpus.specs if s.workspace_id == other
        )


BAD_FILTERS = [
    ("/admin/traces", {"min_duration_ms": "-1"}, "min_duration_ms"),
    ("/admin/traces", {"status": "broken"}, "status"),
    ("/admin/traces", {"min_cost": "cheap"}, "min_cost"),
    ("/admin/traces", {"colour": "red"}, None),
    ("/admin/traces", {"cursor": "not-a-cursor"}, None),
    ("/admin/interactions", {"attempt": "0"}, "attempt"),
    ("/admin/decisions", {"outcome": "maybe"}, "outcome"),
    ("/admin/violations", {"action": "shout"}, "action"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD_FILTERS)
def test_a_refused_filter_is_a_400_page_with_its_message(
    http: httpx.Client, path: str, params: dict[str, str], field: str | None
) -> None:
    page = get_page(http, path, params, status=400)
    message = page.text("filters-error")
    name = next(iter(params))
    assert name in message and message.startswith("400")
    assert "filters" in page  # the form is there to correct it
    if field is not None:  # the field is marked, and points to the message
        marked = page.element(f"filter-{field}")
        assert marked.get("aria-describedby") == "filters-error"
        assert marked.get("aria-invalid") == "true" or "filter-invalid" in (
            marked.get("class") or ""
        )
        assert page.html.count('aria-describedby="filters-error"') == 1
    else:
        assert "filter-invalid" not in page.html


def test_a_cursor_from_another_listing_is_refused(http: httpx.Client) -> None:
    first = get_page(http, "/admin/traces", {"limit": 5})
    older = html.unescape(first.element("page-older").get("href") or "")
    changed = older.replace("since=", "model=gpt-4o&since=")
    page = Page(http.get(changed).text)
    assert "cursor" in page.text("filters-error")


def test_empty_fields_of_the_form_are_passed_over(http: httpx.Client, corpus: Corpus) -> None:
    """A GET form sends its empty fields: they filter nothing."""
    blank = {"model": "", "end_user": "", "min_cost": "", "sort": "", "limit": "200"}
    page = get_page(http, "/admin/traces", blank)
    assert set(row_ids(page, "trace")) == corpus.ids()
    assert "filters-clear" not in page  # nothing to clear
    query = urlencode({**RANGE, "model": "gpt-4o"})
    filtered = Page(http.get(f"/admin/traces?{query}").text)
    assert "filters-clear" in filtered
