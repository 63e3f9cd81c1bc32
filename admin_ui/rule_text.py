"""Rules as text in the console: typed as YAML or JSON, shown as either, problems placed on lines.

The admin API takes JSON; the config file's rules are YAML. The console's editor takes both: a
text starting with `{` or `[` is read as JSON (exact JSON semantics), anything else as YAML (a
superset of JSON, as the config file is read, duplicate keys refused). Either way the result is
plain JSON values, what the API would have received.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec
import yaml

FORMATS: Final = ("yaml", "json")
_INDEX = re.compile(r"\[(\d+)\]\.?")
_RULE_PATH = re.compile(r"^rules\[(\d+)\]\.?")


class RuleTextError(ValueError):
    """The text is not YAML or JSON; `where` is `line L, column C` when known."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` refusing duplicate keys, which YAML would silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise RuleTextError(
                    _position(key_node.start_mark),
                    f"duplicate key '{key_node.value}' (only the last one would count)",
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _position(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def is_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_rule_text(text: str) -> Any:
    """The value written in `text` as plain JSON values; `RuleTextError` when it is not YAML or
    JSON (or is empty)."""
    if not text.strip():
        raise RuleTextError("", "the text is empty: write the rule as YAML or JSON")
    try:
        if is_json(text):
            return json.loads(text, parse_constant=_no_constant)
        loader = _Loader(text)
        try:
            value = loader.get_single_data()
        finally:
            loader.dispose()
    except json.JSONDecodeError as error:
        raise RuleTextError(
            f"line {error.lineno}, column {error.colno}", f"JSON syntax error: {error.msg}"
        ) from None
    except ValueError as error:
        if isinstance(error, RuleTextError):
            raise
        raise RuleTextError("", f"JSON syntax error: {error}") from None
    except yaml.MarkedYAMLError as error:
        where = _position(error.problem_mark) if error.problem_mark else ""
        what = error.problem or error.context or "cannot be parsed"
        raise RuleTextError(where, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as error:
        raise RuleTextError("", f"not valid YAML ({type(error).__name__})") from None
    except RecursionError:
        raise RuleTextError("", "nests deeper than the reader goes") from None
    return _plain(value)


def _plain(value: Any) -> Any:
    """YAML's own types (dates, sets, binary) as the JSON values the API would receive."""
    try:
        return msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, msgspec.EncodeError) as error:
        raise RuleTextError("", f"holds a value JSON cannot express ({error})") from None


def rule_as_text(document: Mapping[str, Any] | list[Any], format: str = "yaml") -> str:
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


# --- problems and where they are --------------------------------------------------------------


def split_problem(problem: str) -> tuple[str, str]:
    """`rules[0].when.all[1].model: unknown field` as (`when.all[1].model`, `unknown field`):
    the path within the one rule, as the editor shows it ("" for the rule as a whole)."""
    path, _, message = problem.partition(": ")
    if not message:
        return "", problem
    return _RULE_PATH.sub("", path, count=1), message


def within_list(problem: str) -> tuple[str, str]:
    """A problem of a list of rules typed as a YAML/JSON list: `rules[2].then` as `[2].then`."""
    path, _, message = problem.partition(": ")
    if not message:
        return "", problem
    return re.sub(r"^rules(?=\[)", "", path, count=1), message


def line_of(text: str, path: str) -> int | None:
    """The line (from 1) of what `path` names in `text`, or of its nearest enclosing value that
    the text has; None when the text does not parse or the path names the whole text."""
    if not path:
        return None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    if root is None:
        return None
    node = _walk(root, path)
    return None if node is root else node.start_mark.line + 1


def _walk(node: yaml.Node, rest: str) -> yaml.Node:
    while rest:
        if isinstance(node, yaml.SequenceNode):
            match = _INDEX.match(rest)
            if match is None or int(match.group(1)) >= len(node.value):
                return node
            node, rest = node.value[int(match.group(1))], rest[match.end() :]
        elif isinstance(node, yaml.MappingNode):
            found = _key(node, rest)
            if found is None:
                return node
            key, key_node, value_node = found
            rest = rest[len(key) :].removeprefix(".")
            node = value_node if rest else key_node
            if not rest:
                return node
        else:
            return node
    return node


def _key(node: yaml.MappingNode, rest: str) -> tuple[str, yaml.Node, yaml.Node] | None:
    """The longest key `rest` starts with: field names such as `metadata.tier` hold dots."""
    best: tuple[str, yaml.Node, yaml.Node] | None = None
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        key = str(key_node.value)
        fits = rest == key or rest.startswith(f"{key}.") or rest.startswith(f"{key}[")
        if fits and (best is None or len(key) > len(best[0])):
            best = (key, key_node, value_node)
    return best
