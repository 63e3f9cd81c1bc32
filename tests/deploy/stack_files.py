"""The deployment's files as data: the compose file, the Grafana dashboards, the Prometheus rules,
and the PromQL in them taken apart far enough to say which metrics and labels it names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DEPLOY = REPO / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
GATEWAY_CONFIG = DEPLOY / "steerway" / "steerway.yaml"

# What Grafana puts in place of its own variables before a query reaches Prometheus; any
# duration does for parsing.
GRAFANA_DURATIONS = {"__rate_interval": "1m", "__interval": "15s", "__range": "6h"}
PROMETHEUS_OWN_METRICS = frozenset({"up"})
"""Series Prometheus makes for every target itself."""
TARGET_LABELS = frozenset({"instance", "job"})
"""Labels Prometheus attaches to every scraped series."""


@dataclass(frozen=True)
class Expression:
    where: str
    promql: str


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of every instruction, continuation lines joined, comments left out."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def builder_stage() -> list[tuple[str, str]]:
    """The instructions after the first `FROM`, up to the next."""
    instructions = dockerfile_instructions()
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[0] + 1 : starts[1]]


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.partition("=")[0])
    return names


def _dashboard_variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """Template variables by name, each as the `allValue` regex an "All" selection sends."""
    return {
        variable["name"]: variable.get("allValue") or ".*"
        for variable in dashboard.get("templating", {}).get("list", [])
    }


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(promql: str, variables: dict[str, str]) -> str:
    """The query as Prometheus receives it. An unknown variable is an error: Grafana would send
    it as it stands and the panel would show nothing."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in GRAFANA_DURATIONS:
            return GRAFANA_DURATIONS[name]
        if name in variables:
            return variables[name]
        raise ValueError(f"unknown Grafana variable ${name} in {promql!r}")

    return _VARIABLE.sub(replace, promql)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$")


def dashboard_expressions() -> list[Expression]:
    """Every query of every panel, and every template variable's `label_values(metric, label)`
    as the selector `metric{label!=""}`, with Grafana's variables substituted."""
    found = []
    for name, dashboard in dashboards().items():
        variables = _dashboard_variables(dashboard)
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                where = f"{name}: {panel['title']} ({target['refId']})"
                found.append(Expression(where, substitute(target["expr"], variables)))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            match = _LABEL_VALUES.match(variable["definition"])
            if match is None:
                raise ValueError(f"{name}: variable {variable['name']}: not label_values(m, l)")
            metric, label = match.groups()
            found.append(
                Expression(f"{name}: variable {variable['name']}", f'{metric}{{{label}!=""}}')
            )
    return found


def rule_expressions() -> list[Expression]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                found.append(Expression(f"{path.name}: {name}", rule["expr"]))
    return found


# --- what a PromQL expression names -------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_IDENTIFIER = re.compile(r"(?<![\w.])[a-zA-Z_:][\w:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")


@dataclass(frozen=True)
class Names:
    selectors: list[tuple[str, frozenset[str]]]
    """Each metric named, with the labels its own matchers use."""
    grouping: frozenset[str]
    """Labels of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`."""

    @property
    def metrics(self) -> set[str]:
        return {metric for metric, _ in self.selectors}


def names(promql: str) -> Names:
    """The metrics an expression selects and the labels it uses. Strings are blanked first so
    no quoted value is mistaken for a name; functions and aggregations are the identifiers
    followed by `(`."""
    text = _STRING.sub('""', promql)
    grouping = frozenset(
        label.strip()
        for labels in _GROUPING.findall(text)
        for label in labels.split(",")
        if label.strip()
    )
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    selectors: list[tuple[str, frozenset[str]]] = []
    position = 0
    while True:
        match = _IDENTIFIER.search(text, position)
        if match is None:
            break
        position = match.end()
        name = match.group()
        rest = text[position:].lstrip()
        if name in _KEYWORDS or rest.startswith("("):
            continue
        labels: frozenset[str] = frozenset()
        matchers = _MATCHERS.match(rest)
        if matchers is not None:
            labels = frozenset(_MATCHER_LABEL.findall(matchers.group(1)))
            position = len(text) - len(rest) + matchers.end()
        selectors.append((name, labels))
    return Names(selectors, grouping)
