"""Links from an alert to the rest of the console: the traces of its window, filtered by its
group's labels, and a new silence that would match it.

The traces explorer (`/admin/traces`) reads the list API's parameters (`admin_ui.search_params`):
`since` and `until`, `workspace`, and one parameter per dimension the alert's labels may carry
(`model`, `provider`, `key`, ...). A label no trace filter knows (a rule's own `team` label) is
left out: the link still narrows by the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlencode

from admin_ui.pages import ADMIN_PATH

TRACES_PATH: Final = f"{ADMIN_PATH}/traces"
SILENCE_PATH: Final = f"{ADMIN_PATH}/alerts/silences/new"
TRACE_FILTERS: Final = (
    "model",
    "served_model",
    "provider",
    "deployment",
    "key",
    "end_user",
    "tag",
)
"""Alert labels (analytics dimensions) that are also trace filters of the same name."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chart_window(
    started: datetime, resolved: datetime | None, window_s: int, now: datetime
) -> tuple[datetime, datetime]:
    """From a window's length before the alert started (at least 15 minutes) to as long after
    it resolved (but never after now), or to now while it is open; whole minutes."""
    lead = timedelta(seconds=max(window_s, 900))
    start = started - lead
    end = now if resolved is None else min(now, resolved + lead)
    start = start.replace(second=0, microsecond=0)
    end = (end + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return start, end


def traces_url(labels: Mapping[str, str], workspace: str, start: datetime, end: datetime) -> str:
    items = [("since", _iso(start)), ("until", _iso(end)), ("workspace", workspace)]
    items.extend((name, labels[name]) for name in TRACE_FILTERS if labels.get(name))
    return f"{TRACES_PATH}?{urlencode(items)}"


def trace_filters(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """The labels the traces link filters by."""
    return [(name, labels[name]) for name in TRACE_FILTERS if labels.get(name)]


def silence_url(rule_name: str, labels: Mapping[str, str], workspace: str) -> str:
    """The new-silence form with a matcher for each of the alert's labels and its rule."""
    matchers = [f"alertname={rule_name}"]
    matchers.extend(f"{name}={value}" for name, value in sorted(labels.items()))
    items = [("matcher", matcher) for matcher in matchers]
    items.append(("workspace", workspace))
    return f"{SILENCE_PATH}?{urlencode(items)}"
