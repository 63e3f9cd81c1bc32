"""The Slack message of a notification: Block Kit blocks inside a coloured attachment, and a
plain `text` for notifications and clients that show no blocks.

Slack's mrkdwn gives `&`, `<` and `>` meaning (`<url|text>` is a link, `<!channel>` pings a whole
channel), so every value taken from a notification is escaped before it is placed in mrkdwn.
"""

from __future__ import annotations

from typing import Any

from telemetry.alerts.notification import Notification, format_number

COLOURS = {"critical": "#d92d20", "warning": "#f79009", "resolved": "#12b76a"}
EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "resolved": ":white_check_mark:"}
_HEADER_MAX = 150
_SECTION_MAX = 3000
_LABELS_SHOWN = 10


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _look(notification: Notification) -> str:
    return "resolved" if notification.state == "resolved" else notification.severity


def title(notification: Notification) -> str:
    n = notification
    state = "RESOLVED" if n.state == "resolved" else f"FIRING · {n.severity}"
    test = "[test] " if n.test else ""
    return f"{test}[{state}] {n.rule_name}"


def slack_message(notification: Notification) -> dict[str, Any]:
    n = notification
    look = _look(n)
    fields = [
        f"*Severity*\n{n.severity}",
        f"*State*\n{n.state}",
        f"*Value*\n{escape(format_number(n.value, n.unit))}",
        f"*Threshold*\n{escape(format_number(n.threshold, n.unit))}",
        f"*Started*\n{n.started_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if n.ended_at is not None:
        fields.append(f"*Ended*\n{n.ended_at:%Y-%m-%d %H:%M:%S} UTC")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(title(n), _HEADER_MAX), "emoji": True},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"{EMOJI[look]} {escape(n.summary)}", _SECTION_MAX),
            },
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if n.labels:
        shown = sorted(n.labels.items())[:_LABELS_SHOWN]
        text = "  ".join(f"`{escape(k)}={escape(v)}`" for k, v in shown)
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, _SECTION_MAX)}]}
        )
    if n.console_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Steerway"},
                        "url": n.console_url,
                        "style": "danger" if look == "critical" else "primary",
                    }
                ],
            }
        )
    fallback = f"{EMOJI[look]} {title(n)}: {n.summary} (value {format_number(n.value, n.unit)}, threshold {format_number(n.threshold, n.unit)})"
    return {
        "text": escape(_clip(fallback, _SECTION_MAX)),
        "attachments": [
            {"color": COLOURS[look], "fallback": _clip(fallback, _SECTION_MAX), "blocks": blocks}
        ],
    }
