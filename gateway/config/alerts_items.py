"""`alerts.channels` and `alerts.rules` of the config file: each entry checked as the admin API
checks it, every problem reported with the path of its field (`alerts.rules[1].window`).

A channel's secrets are `${ENV_NAME}` references only, kept as written (read from the
environment when a notification is sent), never a secret in the file. A rule names its
channels by name; one the file does not declare must exist in the workspace at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from telemetry.alerts.channel_config import ChannelConfig
from telemetry.alerts.config_items import DEFAULT_WORKSPACE_SLUG, FileChannel, FileRule
from telemetry.alerts.rule import RuleError
from telemetry.alerts.rule_parsing import FIELDS, parse_rule

if TYPE_CHECKING:
    from gateway.config.alerts import Reader

CHANNEL_FIELDS: Final = ("name", "workspace", "kind", "settings", "secrets")
RULE_FIELDS: Final = (*FIELDS, "workspace")


def _entries(value: Any, path: str, reader: Reader) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        reader.report(path, "expected a list")
        return []
    return [(f"{path}[{index}]", item) for index, item in enumerate(value)]


def _workspace(fields: Mapping[str, Any], path: str, reader: Reader) -> str:
    return reader.string(
        fields.get("workspace"), f"{path}.workspace", default=DEFAULT_WORKSPACE_SLUG
    )


def parse_channels(value: Any, path: str, reader: Reader) -> tuple[FileChannel, ...]:
    channels: list[FileChannel] = []
    seen: set[tuple[str, str]] = set()
    for where, item in _entries(value, path, reader):
        fields = reader.fields(item, where, CHANNEL_FIELDS, required=("name", "kind"))
        if not fields:
            continue
        workspace = _workspace(fields, where, reader)
        name = reader.string(fields.get("name"), f"{where}.name")
        kind = reader.string(fields.get("kind"), f"{where}.kind")
        settings = fields.get("settings") or {}
        if not isinstance(settings, Mapping):
            reader.report(f"{where}.settings", "expected a mapping")
            continue
        secrets = _secrets(fields.get("secrets"), f"{where}.secrets", reader)
        if not name or not kind or secrets is None:
            continue
        if (workspace, name) in seen:
            reader.report(f"{where}.name", f"a second channel named '{name}' in '{workspace}'")
            continue
        seen.add((workspace, name))
        try:
            channel = ChannelConfig(
                kind=kind,  # type: ignore[arg-type]  # checked by ChannelConfig
                name=name,
                settings={str(key): _plain(item) for key, item in settings.items()},
                secrets=secrets,
            )
        except ValueError as error:
            reader.report(where, str(error))
            continue
        channels.append(FileChannel(path=where, workspace=workspace, channel=channel))
    return tuple(channels)


def _secrets(value: Any, path: str, reader: Reader) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        reader.report(path, "expected a mapping of secret names to ${ENV_NAME} references")
        return None
    found: dict[str, str] = {}
    for name, item in value.items():
        reference = reader.reference(item, f"{path}.{name}")
        if reference is None:
            return None
        found[str(name)] = reference
    return found


def parse_rules(value: Any, path: str, reader: Reader) -> tuple[FileRule, ...]:
    rules: list[FileRule] = []
    seen: set[tuple[str, str]] = set()
    for where, item in _entries(value, path, reader):
        fields = reader.fields(item, where, RULE_FIELDS, required=("name", "metric"))
        if fields.get("name") is None or fields.get("metric") is None:
            continue  # reported as missing
        workspace = _workspace(fields, where, reader)
        named = fields.get("channels") or []
        if not isinstance(named, list) or not all(isinstance(n, str) and n for n in named):
            reader.report(f"{where}.channels", "expected a list of channel names")
            continue
        data = {
            key: _plain(item)
            for key, item in fields.items()
            if key not in ("workspace", "channels")
        }
        try:
            rule = parse_rule(data)
        except RuleError as error:
            reader.report(f"{where}.{error.field}", error.reason)
            continue
        if (workspace, rule.name) in seen:
            reader.report(f"{where}.name", f"a second rule named '{rule.name}' in '{workspace}'")
            continue
        seen.add((workspace, rule.name))
        if len(set(named)) != len(named):
            reader.report(f"{where}.channels", "names a channel twice")
            continue
        rules.append(
            FileRule(
                path=where,
                workspace=workspace,
                rule=rule,
                channels=tuple(str.__str__(name) for name in named),
            )
        )
    return tuple(rules)


def _plain(value: Any) -> Any:
    """Strings read from the environment as plain strings, in nested values too."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
