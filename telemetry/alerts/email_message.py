"""The email of a notification: a plain-text part and an HTML part, every value in the HTML
escaped (a summary or label may hold `<script>`).

Both parts are quoted-printable and non-ASCII headers are encoded words, so the message is 7-bit
clean and any relay takes it, with or without 8BITMIME; `wire_bytes` gives it with CRLF line
ends, as SMTP's DATA needs them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from html import escape

from telemetry.alerts.notification import Notification, format_number
from telemetry.alerts.slack_message import COLOURS, title

_SUBJECT_MAX = 200


def subject(notification: Notification, prefix: str) -> str:
    text = f"{prefix} {title(notification)}: {notification.summary}".strip()
    text = " ".join(text.split())
    return text if len(text) <= _SUBJECT_MAX else text[: _SUBJECT_MAX - 1] + "…"


def _facts(n: Notification) -> list[tuple[str, str]]:
    facts = [
        ("Rule", n.rule_name),
        ("Severity", n.severity),
        ("State", n.state),
        ("Value", format_number(n.value, n.unit)),
        ("Threshold", format_number(n.threshold, n.unit)),
        ("Started", f"{n.started_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    if n.ended_at is not None:
        facts.append(("Ended", f"{n.ended_at:%Y-%m-%d %H:%M:%S} UTC"))
    facts.append(("Workspace", n.workspace_id))
    facts += [(f"Label {key}", value) for key, value in sorted(n.labels.items())]
    return facts


def text_body(n: Notification) -> str:
    lines = [title(n), "", n.summary, ""]
    lines += [f"{name}: {value}" for name, value in _facts(n)]
    if n.console_url:
        lines += ["", f"Open in Steerway: {n.console_url}"]
    return "\n".join(lines) + "\n"


def html_body(n: Notification) -> str:
    colour = COLOURS["resolved" if n.state == "resolved" else n.severity]
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{escape(name)}</th>'
        f"<td>{escape(value)}</td></tr>"
        for name, value in _facts(n)
    )
    link = (
        f'<p><a href="{escape(n.console_url, quote=True)}">Open in Steerway</a></p>'
        if n.console_url
        else ""
    )
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f'<h2 style="border-left:6px solid {colour};padding-left:8px">{escape(title(n))}</h2>'
        f"<p>{escape(n.summary)}</p><table>{rows}</table>{link}</body></html>"
    )


def addressed(
    sender: str, recipients: list[str], subject_line: str, sent: datetime | None = None
) -> EmailMessage:
    """A message with its envelope headers: from, to, subject, date (`sent`, default now) and a
    Message-ID in the sender's domain; the caller adds the parts."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject_line
    message["Date"] = format_datetime(sent or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    return message


def email_message(
    notification: Notification, *, sender: str, recipients: list[str], subject_prefix: str
) -> EmailMessage:
    message = addressed(sender, recipients, subject(notification, subject_prefix))
    message["X-Steerway-Fingerprint"] = notification.fingerprint
    message.set_content(text_body(notification), cte="quoted-printable")
    message.add_alternative(html_body(notification), subtype="html", cte="quoted-printable")
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=policy.SMTP)
