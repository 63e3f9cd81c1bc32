"""The simulate and replay pages' GET forms, read into the JSON bodies their API endpoints take.

The pages call the same functions as `POST /admin/api/rules/simulate` and `.../replay` with the
body built here, so a page and the API never disagree. The query parameters are the API's field
names (`request`, `tags`, `metadata`, `key`, `workspace`, `time`, `rules`, `merge`...), which is
how a trace page links to the simulator with its request; the form adds a few of its own
(`model`, `prompt`, `messages` for typing a request by hand, `requests` and `last` for the
replay window). What the form cannot turn into a body (metadata that is not a JSON object) is a
`FieldError` naming the input; what the API refuses names a `param`, which `field_for` turns
back into the input to mark.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from admin_ui.rule_text import RuleTextError, parse_rule_text, split_problem, within_list

SIMULATE_INPUTS: Final = (
    "model",
    "operation",
    "prompt",
    "messages",
    "request",
    "tags",
    "metadata",
    "headers",
    "key",
    "key_name",
    "workspace",
    "user",
    "time",
    "rules",
    "merge",
)
REQUEST_INPUTS: Final = ("model", "prompt", "messages", "request")
"""Any of these filled in means there is a request to simulate."""
TEXT_INPUTS: Final = ("key", "key_name", "workspace", "user", "time")
REPLAY_INPUTS: Final = (
    "requests",
    "last",
    "since",
    "until",
    "workspace",
    "rules",
    "merge",
    "run",
)
RANGES: Final = (
    ("", "Any time"),
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
)
"""Relative ranges, written as the console's top bar writes `last`."""
INPUT_OF: Final = {"last": "requests"}
"""Body fields whose input has another name: `last` in a console URL is a time range."""
_RANGE: Final = re.compile(r"(\d{1,6})([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_RANGE: Final = timedelta(days=36_500)
_CHECKED: Final = frozenset({"on", "1", "true", "yes"})


class QueryParams(Protocol):
    def multi_items(self) -> Any: ...


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def form_values(query: QueryParams, inputs: tuple[str, ...]) -> dict[str, str]:
    """The form's inputs as the URL gives them ("" for those absent). A repeated parameter
    (`tags=a&tags=b`, as a trace page writes tags) is joined with commas."""
    found: dict[str, list[str]] = {}
    for name, value in query.multi_items():
        if name in inputs and isinstance(value, str):
            found.setdefault(name, []).append(value)
    return {name: ", ".join(found.get(name, [])) for name in inputs}


def simulate_values(query: QueryParams) -> dict[str, str]:
    """The simulate form's values; a whole `request` body (as a trace page links it) is shown
    split into its model, its messages and the rest, which mean the same request."""
    values = form_values(query, SIMULATE_INPUTS)
    try:
        body = json.loads(values["request"]) if values["request"].strip() else None
    except json.JSONDecodeError:
        return values  # left as typed: simulating says what is wrong with it
    if not isinstance(body, dict):
        return values
    if not values["model"].strip() and isinstance(body.get("model"), str):
        values["model"] = body.pop("model")
    if not values["messages"].strip() and not values["prompt"].strip():
        messages = body.get("messages")
        if isinstance(messages, list):
            body.pop("messages")
            values["messages"] = json.dumps(messages, indent=2, ensure_ascii=False)
        elif isinstance(body.get("input"), str) and values["operation"] == "embeddings":
            values["prompt"] = body.pop("input")
    values["request"] = json.dumps(body, ensure_ascii=False) if body else ""
    return values


def checked(value: str) -> bool:
    return value.strip().lower() in _CHECKED


def wants_simulation(values: Mapping[str, str]) -> bool:
    return any(values[name].strip() for name in REQUEST_INPUTS)


def _json_input(values: Mapping[str, str], field: str, kind: type, what: str) -> Any:
    text = values[field].strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise FieldError(
            field, f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    if not isinstance(value, kind):
        raise FieldError(field, f"must be {what}")
    return value


def candidate_rules(text: str) -> tuple[list[Any] | None, bool]:
    """Candidate rules typed as YAML or JSON: one rule, or a list of rules. Also whether the
    text was a list (problems are then shown as `[1].then...`, else as `then...`)."""
    if not text.strip():
        return None, False
    try:
        value = parse_rule_text(text)
    except RuleTextError as error:
        raise FieldError("rules", str(error)) from None
    if isinstance(value, list):
        return value, True
    return [value], False


def simulate_body(values: Mapping[str, str]) -> dict[str, Any]:
    """The simulate endpoint's body for the form's values."""
    request: dict[str, Any] = (
        _json_input(values, "request", dict, "a JSON object: the request's body") or {}
    )
    model = values["model"].strip()
    if model:
        request["model"] = model
    operation = values["operation"].strip()
    messages = _json_input(values, "messages", list, "a JSON list of messages")
    prompt = values["prompt"]
    if messages is not None:
        request["messages"] = messages
    elif prompt.strip():
        if operation == "embeddings":
            request["input"] = prompt
        else:
            request["messages"] = [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"request": request}
    if operation:
        body["operation"] = operation
    if values["tags"].strip():
        body["tags"] = values["tags"]
    for field, what in (("metadata", "a JSON object"), ("headers", "a JSON object of headers")):
        found = _json_input(values, field, dict, what)
        if found is not None:
            body[field] = found
    for field in TEXT_INPUTS:
        if values[field].strip():
            body[field] = values[field].strip()
    _add_candidates(body, values)
    return body


def relative_since(last: str, now: datetime) -> datetime | None:
    """The start of a relative range such as `24h` or `7d` ending now; None for no range."""
    if not last.strip():
        return None
    match = _RANGE.fullmatch(last.strip())
    if match is None:
        raise FieldError("last", "a range such as 15m, 6h or 7d")
    span = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if span > MAX_RANGE:
        raise FieldError("last", "at most 100 years")
    return now - span


def replay_body(values: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The replay endpoint's body for the form's values (`workspace` already resolved to an
    id). A relative range (`last`) gives `since` unless `since` is given."""
    body: dict[str, Any] = {}
    count = values["requests"].strip()
    if count:
        if not re.fullmatch(r"\d{1,9}", count):
            raise FieldError("requests", "must be a whole number of requests")
        body["last"] = int(count)
    since = relative_since(values["last"], now)
    if values["since"].strip():
        body["since"] = values["since"].strip()
    elif since is not None:
        body["since"] = since.isoformat()
    for field in ("until", "workspace"):
        if values[field].strip():
            body[field] = values[field].strip()
    _add_candidates(body, values)
    return body


def _add_candidates(body: dict[str, Any], values: Mapping[str, str]) -> None:
    rules, _ = candidate_rules(values["rules"])
    if rules is not None:
        body["rules"] = rules
        body["merge"] = checked(values["merge"])


def field_for(param: str | None, values: Mapping[str, str]) -> str | None:
    """The form input an API error's `param` is about, or None for the form as a whole."""
    if not param:
        return None
    head = re.split(r"[.\[]", param, maxsplit=1)[0]
    if head == "request":
        rest = param[len(head) :].lstrip(".")
        if rest.startswith("model"):
            return "model"
        if rest.startswith("messages"):
            return "messages" if values.get("messages", "").strip() else "prompt"
        if rest.startswith("input"):
            return "prompt"
        return "request"
    head = INPUT_OF.get(head, head)
    return head if head in values else None


def rule_problems(problems: list[str], as_list: bool) -> list[tuple[str, str]]:
    """Problems with candidate rules, each as (path within what was typed, message)."""
    return [within_list(problem) if as_list else split_problem(problem) for problem in problems]
