"""The traces list template with its context: filters kept, rows, paging, empty states."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs

from tests.console.list_page import render_list, sample_rows


def test_rows_link_to_their_traces_with_numbers_and_units() -> None:
    rows = sample_rows(6)
    text = render_list("/admin/traces?model=small&last=1h", rows, next_cursor="01abc")
    assert text.count("<tr data-href=") == 6
    for row in rows:
        assert f'href="/admin/traces/{row["trace_id"]}"' in text
    assert "$0.0000034" in text and "122 ms" in text and "40.0 ms" in text
    assert "data-rows" in text and "data-filter" in text
    # the filter keeps its value and the top bar's range rides along
    assert 'id="filter-model" name="model" value="small"' in text
    assert '<input type="hidden" name="last" value="1h">' in text
    # the next page keeps the filters and adds the cursor
    (next_url,) = re.findall(r'href="([^"]+)" rel="next"', text)
    path, _, query = html.unescape(next_url).partition("?")
    assert path == "/admin/traces"
    assert parse_qs(query) == {"model": ["small"], "last": ["1h"], "cursor": ["01abc"]}
    assert "premium-to-large" in text


def test_an_empty_list_shows_how_to_make_a_first_request() -> None:
    text = render_list("/admin/traces", [])
    assert "No requests yet." in text
    unescaped = html.unescape(text)
    assert "curl http://testserver.local/v1/chat/completions" in unescaped
    assert "Authorization: Bearer $STEERWAY_KEY" in unescaped
    assert '"model": "mock-gpt"' in unescaped
    assert 'base_url="http://testserver.local/v1"' in unescaped


def test_an_empty_filtered_list_says_how_to_widen_it() -> None:
    text = render_list("/admin/traces?status=error&status=denied", [])
    assert "No trace matches these filters." in text
    assert '<input type="checkbox" name="status" value="error" checked>' in text
    assert '<input type="checkbox" name="status" value="denied" checked>' in text
    assert '<input type="checkbox" name="status" value="ok">' in text


def test_auto_refresh_is_in_the_url_and_works_without_the_script() -> None:
    text = render_list("/admin/traces?refresh=30", sample_rows(1))
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in text
    assert 'aria-pressed="true"' in text
    off = render_list("/admin/traces", sample_rows(1))
    assert "http-equiv" not in off and 'href="/admin/traces?refresh=10"' in off
