"""A notification channel's configuration: its kind, name, settings and secrets.

Secrets are never held in plain text. Each is either a `${ENV_NAME}` reference, read from the
environment when a notification is sent (for configuration kept in git), or a value sealed with
`sealing.seal` (for channels made in the console, stored in the database). `redacted()` is what
the API and console show; the repr shows the same, so a logged config reveals nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from telemetry.alerts import sealing
from telemetry.alerts.attempts import DeliverySettings
from telemetry.alerts.kind import ChannelKind
from telemetry.alerts.kinds import KINDS, KindName

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SEALED_SHOWN = "(sealed)"


class SecretError(Exception):
    """A secret could not be resolved; the message names the secret, never its value."""


def is_reference(value: str) -> bool:
    return _REFERENCE.fullmatch(value) is not None


class ChannelConfig(msgspec.Struct, frozen=True, kw_only=True):
    kind: KindName
    name: str
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    secrets: dict[str, str] = msgspec.field(default_factory=dict)
    """Secret name to a `${ENV_NAME}` reference or a sealed value."""
    id: str = ""

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise ValueError(f"channel {self.name!r} ({self.kind}): {problem}")

    @property
    def kind_spec(self) -> ChannelKind:
        return KINDS[self.kind]

    def parsed_settings(self) -> DeliverySettings:
        return msgspec.convert(self.settings, self.kind_spec.settings_type)

    def redacted(self) -> dict[str, Any]:
        """The channel as it may be shown: references as written, sealed values as `(sealed)`."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "settings": dict(self.settings),
            "secrets": {
                name: value if is_reference(value) else SEALED_SHOWN
                for name, value in sorted(self.secrets.items())
            },
        }

    def __repr__(self) -> str:
        return f"ChannelConfig({self.redacted()!r})"

    __str__ = __repr__


def _problem(channel: ChannelConfig) -> str | None:
    kind = KINDS.get(channel.kind)
    if kind is None:
        return f"unknown kind (one of {', '.join(KINDS)})"
    if not channel.name.strip():
        return "a channel needs a name"
    names = frozenset(channel.secrets)
    missing = sorted(kind.required_secrets - names)
    if missing:
        return f"missing secret {', '.join(map(repr, missing))}"
    unknown = sorted(names - kind.required_secrets - kind.optional_secrets)
    if unknown:
        return f"unknown secret {', '.join(map(repr, unknown))}"
    for name, value in channel.secrets.items():
        if not (is_reference(value) or sealing.is_sealed(value)):
            return (
                f"secret {name!r} must be a ${{ENV_NAME}} reference or a sealed value, "
                "never the secret itself"
            )
    try:
        settings = msgspec.convert(channel.settings, kind.settings_type)
    except msgspec.ValidationError as error:
        return f"settings: {error}"
    return kind.check(settings, names)


def resolve_secrets(
    channel: ChannelConfig,
    *,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> dict[str, str]:
    """The channel's secrets in plain text, for one delivery; never to be stored or shown."""
    env = os.environ if environ is None else environ
    resolved: dict[str, str] = {}
    for name, value in channel.secrets.items():
        reference = _REFERENCE.fullmatch(value)
        if reference is not None:
            found = env.get(reference[1])
            if not found:
                raise SecretError(
                    f"secret {name!r}: the environment variable {reference[1]} is not set"
                )
            resolved[name] = found
            continue
        try:
            resolved[name] = sealing.open(value, master_key=master_key)
        except sealing.SealingError as error:
            raise SecretError(f"secret {name!r}: {error}") from None
    return resolved


def seal_secrets(plain: Mapping[str, str], *, master_key: str | None = None) -> dict[str, str]:
    """Secrets as typed into the console, ready for `ChannelConfig.secrets`: references are
    kept as written, anything else is sealed."""
    return {
        name: value if is_reference(value) else sealing.seal(value, master_key=master_key)
        for name, value in plain.items()
    }
