"""How rules, their versions, simulations and replays read on the console's pages.

Plain functions from what the rules API answers to what the templates show: states with their
labels, times for `<time>`, exact dollars, diffs between versions, the replay's mix tables and
chart. No request is read and nothing is stored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from admin_ui.rule_diff import rule_changes
from admin_ui.rule_text import line_of, rule_as_text, split_problem
from admin_ui.rules import READ_ONLY_KEYS
from admin_ui.rules_chart import count_text, mix_chart
from gateway.steering.rulebook import Rulebook

BASE: Final = "/admin/rules"
STATES: Final = {
    "in-force": "In force",
    "off": "Disabled",
    "problem": "Left out",
    "pending": "Not loaded yet",
}
EXAMPLE_MODEL: Final = "gpt-4o-mini"


def time_view(value: str | datetime | None) -> dict[str, str] | None:
    """An ISO 8601 UTC time as the `<time>` element shows it (the page script may localise it;
    UTC stays on hover)."""
    if value is None:
        return None
    iso = value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    text = iso.replace("T", " ").replace("Z", "")
    return {"iso": iso, "text": f"{text.split('.')[0]} UTC"}


def usd(amount: str, *, signed: bool = False) -> str:
    """Exact dollars as the API gives them (a decimal string), with the sign in front."""
    value = Decimal(amount)
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${format(abs(value), 'f')}"


def rule_state(item: Mapping[str, Any], problems: list[str], rulebook: Rulebook) -> str:
    """in-force, off, problem (left out of the running rules) or pending (stored, not loaded by
    this worker yet)."""
    if problems:
        return "problem"
    if not item.get("enabled", True):
        return "off"
    compiled = rulebook.current.get(str(item["id"]))
    return "in-force" if compiled is not None and compiled.enabled else "pending"


def list_row(item: Mapping[str, Any], rulebook: Rulebook) -> dict[str, Any]:
    """A rule as the list and the editor show it. The problems of a database rule the running
    config no longer supports come from the rulebook, as the API's list gives them."""
    rule_id = str(item["id"])
    problems = list(item.get("problems") or ())
    if not problems and item.get("source") == "database":
        problems = list(rulebook.invalid.get(rule_id, ()))
    state = rule_state(item, problems, rulebook)
    return {
        "id": rule_id,
        "name": item.get("name") or rule_id,
        "description": item.get("description") or "",
        "priority": item["priority"],
        "enabled": bool(item.get("enabled", True)),
        "source": item.get("source", "database"),
        "read_only": bool(item.get("read_only")),
        "state": state,
        "state_label": STATES[state],
        "problems": [split_problem(problem) for problem in problems],
        "version": item.get("version"),
        "updated_at": time_view(item.get("updated_at")),
        "updated_by": item.get("updated_by"),
        "edit_url": f"{BASE}/{rule_id}/edit",
        "history_url": f"{BASE}/{rule_id}/history",
    }


def example_rule(rulebook: Rulebook) -> dict[str, Any]:
    """A rule that is valid with the running config: it routes to one of its models."""
    model = rulebook.models[0] if rulebook.models else EXAMPLE_MODEL
    return {
        "id": "premium-traffic",
        "name": "Premium traffic",
        "description": f"Requests tagged premium go to {model}.",
        "priority": 100,
        "when": {"tags": {"contains": "premium"}},
        "then": {"route": model, "tag": ["premium-route"]},
    }


def problem_views(problems: list[tuple[str, str]], text: str) -> list[dict[str, Any]]:
    return [
        {"path": path, "message": message, "line": line_of(text, path)}
        for path, message in problems
    ]


def editable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in READ_ONLY_KEYS}


def version_entries(versions: list[dict[str, Any]], current: int | None) -> list[dict[str, Any]]:
    """The history's versions (as the API lists them, newest first), each with what changed from
    the version before it and whether it is the rule now."""
    by_number = {int(version["version"]): version for version in versions}
    entries = []
    for version in versions:
        number = int(version["version"])
        previous = by_number.get(number - 1)
        entries.append(
            {
                "version": number,
                "action": version["action"],
                "author": version["author"],
                "created_at": time_view(version["created_at"]),
                "changes": rule_changes(
                    previous["document"] if previous is not None else None,
                    version["document"],
                ),
                "current": current == number,
                "text": rule_as_text(version["document"]),
            }
        )
    return entries


def version_comparison(
    query: Mapping[str, Any], by_number: Mapping[int, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The diff between two chosen versions (`from`, `to` in the URL), when both exist."""
    older, newer = str(query.get("from") or ""), str(query.get("to") or "")
    if not (older.isdigit() and newer.isdigit()):
        return None
    before, after = by_number.get(int(older)), by_number.get(int(newer))
    if before is None or after is None:
        return {"from": older, "to": newer, "missing": True, "changes": []}
    return {
        "from": int(older),
        "to": int(newer),
        "missing": False,
        "changes": rule_changes(before["document"], after["document"]),
    }


def json_text(value: Any) -> str:
    return rule_as_text(value, "json").rstrip("\n")


def simulation_view(result: Mapping[str, Any]) -> dict[str, Any]:
    route = result.get("route")
    return {
        **result,
        "matched": [
            {**match, "actions_text": json_text(match["actions"])} for match in result["matched"]
        ],
        "effects_text": json_text(result["effects"]) if result["effects"] else None,
        "request_text": json_text(result["request"]),
        "parameters_text": (
            json_text(result["parameters_changed"]) if result["parameters_changed"] else None
        ),
        "route": route,
        "evaluation": f"{float(result['evaluation_us']):.1f} µs",
    }


def mix_rows(mix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per model (or deployment) in either mix: requests and share before and after."""
    rows: dict[str, dict[str, Any]] = {}
    for series in ("before", "after"):
        for entry in mix[series]:
            row = rows.setdefault(
                entry["name"],
                {
                    "name": entry["name"],
                    **{f"{side}_requests": 0.0 for side in ("before", "after")},
                    **{f"{side}_share": 0.0 for side in ("before", "after")},
                },
            )
            row[f"{series}_requests"] = float(entry["requests"])
            row[f"{series}_share"] = float(entry["share"])
    ordered = sorted(
        rows.values(),
        key=lambda row: (-max(row["before_requests"], row["after_requests"]), row["name"]),
    )
    for row in ordered:
        change = row["after_requests"] - row["before_requests"]
        sign = "+" if change > 0 else "-" if change < 0 else ""
        row["change"] = sign + count_text(abs(change))
        for side in ("before", "after"):
            row[side] = count_text(row[f"{side}_requests"])
            row[f"{side}_share"] = f"{row[f'{side}_share']:.1%}"
    return ordered


def replay_view(result: Mapping[str, Any]) -> dict[str, Any]:
    cost = result["cost"]
    window = result["window"]
    return {
        **result,
        "oldest": time_view(window["oldest"]),
        "newest": time_view(window["newest"]),
        "cost_view": {
            "before": usd(cost["before_usd"]),
            "after": usd(cost["after_usd"]),
            "difference": usd(cost["difference_usd"], signed=True),
            "direction": (
                "more"
                if Decimal(cost["difference_usd"]) > 0
                else "less"
                if Decimal(cost["difference_usd"]) < 0
                else "same"
            ),
        },
        "model_rows": mix_rows(result["model_mix"]),
        "deployment_rows": mix_rows(result["deployment_mix"]),
        "chart": mix_chart(result["model_mix"]["before"], result["model_mix"]["after"]),
        "changes": [
            {**change, "requests_text": count_text(change["requests"])}
            for change in result["changes"]
        ],
        "rerouted": count_text(result["requests_rerouted"]),
    }
