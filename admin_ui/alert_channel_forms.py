"""The console's channel form: which fields each kind of channel has, the API body a filled-in
form makes, and the form a stored channel fills in.

Settings are fields `setting_<name>`, secrets `secret_<name>`. A secret is never filled in: the
form says whether it is set (a `${ENV}` reference is shown as written, a sealed value as
`(sealed)`), and on an edit an empty secret field keeps the stored one, a typed value replaces
it and the `remove_<name>` box removes it, as `PUT /admin/api/alerts/channels/{id}` takes them.
Settings the form does not show (`timeout_s`, `max_attempts`, ...) are kept as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from admin_ui.form_fields import FormValues, text_list


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    hint: str = ""
    input_type: str = "text"
    choices: tuple[tuple[str, str], ...] = ()
    number: bool = False
    listed: bool = False
    """A list of values, typed separated by commas."""
    required: bool = False


@dataclass(frozen=True, slots=True)
class KindForm:
    kind: str
    title: str
    description: str
    settings: tuple[Field, ...]
    secrets: tuple[Field, ...]


KIND_FORMS: Final = {
    "webhook": KindForm(
        "webhook",
        "Webhook",
        "A signed JSON POST to your own endpoint for every firing and resolve.",
        (Field("url", "URL", "Where to POST, http:// or https://.", "url", required=True),),
        (
            Field(
                "signing_secret",
                "Signing secret",
                "The HMAC-SHA256 key of the X-Steerway-Signature header; or ${ENV_NAME}.",
                "password",
                required=True,
            ),
        ),
    ),
    "slack": KindForm(
        "slack",
        "Slack",
        "A formatted message in a channel, through a Slack incoming webhook.",
        (),
        (
            Field(
                "webhook_url",
                "Incoming webhook URL",
                "https://hooks.slack.com/services/...: it is the credential, so it is kept "
                "sealed; or ${ENV_NAME}.",
                "password",
                required=True,
            ),
        ),
    ),
    "email": KindForm(
        "email",
        "Email",
        "A message with text and HTML parts through your SMTP relay.",
        (
            Field("host", "SMTP host", "The relay, such as smtp.example.com.", required=True),
            Field(
                "port", "Port", "Empty: 587 for STARTTLS, 465 for TLS, 25 for none.", number=True
            ),
            Field(
                "security",
                "TLS mode",
                "Certificates are always verified.",
                choices=(
                    ("starttls", "STARTTLS"),
                    ("tls", "TLS (implicit)"),
                    ("plain", "None (a relay on the same host only)"),
                ),
            ),
            Field("username", "User", "Log in as this user (needs the password)."),
            Field(
                "from_address",
                "From",
                "alerts@example.com or Steerway <alerts@example.com>.",
                required=True,
            ),
            Field("to", "To", "Addresses separated by commas.", listed=True, required=True),
        ),
        (Field("password", "Password", "The SMTP password; or ${ENV_NAME}.", "password"),),
    ),
    "pagerduty": KindForm(
        "pagerduty",
        "PagerDuty",
        "Events API v2: a firing triggers an incident, its resolve resolves it.",
        (),
        (
            Field(
                "routing_key",
                "Routing key",
                "The integration key of the PagerDuty service; or ${ENV_NAME}.",
                "password",
                required=True,
            ),
        ),
    ),
}


def text_fields(form: KindForm) -> tuple[str, ...]:
    return (
        "name",
        *(f"setting_{field.name}" for field in form.settings),
        *(f"secret_{field.name}" for field in form.secrets),
    )


def removals(form: KindForm) -> tuple[str, ...]:
    return tuple(f"remove_{field.name}" for field in form.secrets)


def _setting(field: Field, text: str) -> Any:
    stripped = text.strip()
    if field.listed:
        return text_list(stripped)
    if field.number:
        return int(stripped) if stripped.isdigit() else stripped
    return stripped


def channel_body(
    form: KindForm,
    values: FormValues,
    removed: frozenset[str] = frozenset(),
    stored_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The API body of a filled-in form; `stored_settings`: an edit's current settings, kept
    where the form has no field for them."""
    settings = dict(stored_settings or {})
    for field in form.settings:
        text = str(values.get(f"setting_{field.name}", ""))
        if text.strip():
            settings[field.name] = _setting(field, text)
        else:
            settings.pop(field.name, None)
    secrets: dict[str, str | None] = {}
    for field in form.secrets:
        typed = str(values.get(f"secret_{field.name}", ""))
        if field.name in removed:
            secrets[field.name] = None
        elif typed:
            secrets[field.name] = typed
    return {
        "kind": form.kind,
        "name": values.get("name", ""),
        "settings": settings,
        "secrets": secrets,
    }


def stored_values(form: KindForm, name: str, settings: Mapping[str, Any]) -> FormValues:
    values: FormValues = {"name": name}
    for field in form.settings:
        value = settings.get(field.name)
        if value is None:
            text = ""
        elif field.listed and isinstance(value, list):
            text = ", ".join(str(item) for item in value)
        else:
            text = str(value)
        values[f"setting_{field.name}"] = text
    for field in form.secrets:
        values[f"secret_{field.name}"] = ""
    return values


def empty_values(form: KindForm) -> FormValues:
    values = stored_values(form, "", {})
    if form.kind == "email":
        values["setting_security"] = "starttls"
    return values


def field_of(param: str | None, form: KindForm) -> str:
    """The form field an API error names (`name`, `secrets.password`, `settings.url`), or ""
    for the form as a whole."""
    if not param:
        return ""
    if param == "name":
        return "name"
    head, _, rest = param.partition(".")
    if head == "secrets" and rest in {field.name for field in form.secrets}:
        return f"secret_{rest}"
    if head == "settings" and rest in {field.name for field in form.settings}:
        return f"setting_{rest}"
    return ""
