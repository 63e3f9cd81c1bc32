"""A notification channel from an admin API body: its `kind`, `name`, `settings` and
`secrets`. Secrets arrive as `${ENV_NAME}` references or plain values, and plain values are
sealed here, before anything is stored or checked, so no later message can quote one.

In a replacement, `secrets` changes only the secrets it names: a value replaces one, `null`
removes one, and `(sealed)` (as a read shows it) keeps it; the others are kept as stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from admin_ui.alerts_access import bad
from gateway.errors import GatewayError, invalid_request
from telemetry.alerts import ChannelConfig, seal_secrets
from telemetry.alerts.channel_config import SEALED_SHOWN
from telemetry.alerts.kinds import KINDS, KindName
from telemetry.alerts.sealing import SealingError

MAX_NAME: Final = 200
MAX_SECRET: Final = 4096
_PARAM_OF_PROBLEM: Final = (
    ("unknown kind", "kind"),
    ("a channel needs a name", "name"),
    ("missing secret", "secrets"),
    ("unknown secret", "secrets"),
    ("secret", "secrets"),
)


def _text(body: Mapping[str, Any], name: str, most: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise bad(name, "is required: a non-empty string")
    if len(value) > most:
        raise bad(name, f"must be at most {most} characters")
    return value


def _settings(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    value = body.get("settings", current)
    if not isinstance(value, Mapping):
        raise bad("settings", "must be an object")
    return dict(value)


def _given_secrets(body: Mapping[str, Any]) -> dict[str, str | None]:
    value = body.get("secrets", {})
    if not isinstance(value, Mapping):
        raise bad("secrets", "must be an object of secret names to values")
    for name, secret in value.items():
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise bad(f"secrets.{name[:100]}", "must be a non-empty string or null")
        if secret is not None and len(secret) > MAX_SECRET:
            raise bad(f"secrets.{name[:100]}", f"must be at most {MAX_SECRET} characters")
    return dict(value)


def _sealed(plain: Mapping[str, str]) -> dict[str, str]:
    try:
        return seal_secrets(plain)
    except SealingError as error:
        raise invalid_request(str(error), param="secrets", code="secrets_unsealable") from None


def channel_of(
    body: Mapping[str, Any], *, channel_id: str = "", current: ChannelConfig | None = None
) -> ChannelConfig:
    """The checked channel the body describes (replacing `current` when given)."""
    kind = body.get("kind", current.kind if current else None)
    if not isinstance(kind, str) or kind not in KINDS:
        raise bad("kind", f"must be one of {', '.join(KINDS)}")
    name = _text(body, "name", MAX_NAME)
    secrets = dict(current.secrets) if current and current.kind == kind else {}
    typed: dict[str, str] = {}
    for secret_name, value in _given_secrets(body).items():
        if value is None:
            secrets.pop(secret_name, None)
        elif value != SEALED_SHOWN or secret_name not in secrets:
            typed[secret_name] = value
    secrets.update(_sealed(typed))
    settings = _settings(body, current.settings if current else {})
    try:
        return ChannelConfig(
            id=channel_id, kind=cast(KindName, kind), name=name, settings=settings, secrets=secrets
        )
    except ValueError as error:
        raise _invalid(str(error).split("): ", 1)[-1]) from None


def _invalid(problem: str) -> GatewayError:
    param = next((p for start, p in _PARAM_OF_PROBLEM if problem.startswith(start)), "settings")
    return invalid_request(
        f"The channel is not valid: {problem}.", param=param, code="invalid_channel"
    )
