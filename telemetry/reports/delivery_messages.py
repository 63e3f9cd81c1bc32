"""What a report's recipients are sent: an email with a short summary and the files attached, a
webhook's JSON (version 1) with the download links, a Slack message linking to the console.

Every value taken from a report (a title, a workspace's name) is escaped for where it goes: HTML
in the email, mrkdwn in Slack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from html import escape
from typing import Any, Final

import msgspec

from telemetry.alerts.email_message import addressed
from telemetry.alerts.slack_message import escape as slack_escape
from telemetry.reports.delivery_figures import (
    change_text,
    figure_line,
    headline_figures,
    value_text,
)
from telemetry.reports.document import ReportDocument
from telemetry.reports.file_names import report_file_name
from telemetry.reports.period_text import local_time_text, range_text

PAYLOAD_VERSION: Final = "1"
CONTENT_TYPES: Final = {
    "csv": ("text", "csv"),
    "json": ("application", "json"),
    "pdf": ("application", "pdf"),
}


@dataclass(frozen=True, slots=True)
class Made:
    """One made report, as every message describes it."""

    instance_id: str
    document: ReportDocument
    files: Mapping[str, bytes]
    """The bytes of each format made (`csv`, `json`, `pdf`)."""
    console_url: str
    """Where the console is reached (`console.public_url`); "" when not set."""

    @property
    def base(self) -> str:
        return self.console_url.rstrip("/")

    @property
    def page_url(self) -> str:
        """The console's Reports page, at this report's instance."""
        return f"{self.base}/admin/reports#instance-{self.instance_id}" if self.base else ""

    def download_url(self, format_: str) -> str:
        if not self.base:
            return ""
        return f"{self.base}/admin/api/reports/instances/{self.instance_id}/files/{format_}"

    def file_name(self, format_: str) -> str:
        """`weekly-summary-2026-11-30.pdf`: the title and the range's first day (in its zone)."""
        d = self.document
        return report_file_name(d.title, d.start, d.time_zone, format_)

    @property
    def heading(self) -> str:
        return f"{self.document.title} · {self.document.workspace_name}"

    @property
    def period(self) -> str:
        d = self.document
        return range_text(d.start, d.end, d.time_zone)


# --- email ------------------------------------------------------------------------------------


def email_text(made: Made) -> str:
    d = made.document
    lines = [
        made.heading,
        "",
        f"Range: {made.period}",
        f"Made: {local_time_text(d.made_at, d.time_zone)}",
        "",
    ]
    lines += [figure_line(figure) for figure in headline_figures(d)]
    lines += ["", f"Attached: {', '.join(made.file_name(f) for f in sorted(made.files))}"]
    if made.page_url:
        lines += [f"Open in Steerway: {made.page_url}"]
    return "\n".join(lines) + "\n"


def email_html(made: Made) -> str:
    d = made.document
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 16px 2px 0">{escape(figure.title)}</th>'
        f'<td align="right" style="padding:2px 16px 2px 0">'
        f"{escape(value_text(figure.value, figure.unit))}</td>"
        f'<td style="color:#646e7b">{escape(change_text(figure))}</td></tr>'
        for figure in headline_figures(d)
    )
    link = (
        f'<p><a href="{escape(made.page_url, quote=True)}">Open in Steerway</a></p>'
        if made.page_url
        else ""
    )
    return (
        '<!doctype html><html><body style="font-family:sans-serif;color:#1a1d21">'
        f"<h2>{escape(d.title)}</h2>"
        f"<p>{escape(d.workspace_name)} · {escape(made.period)}<br>"
        f'<span style="color:#646e7b">Made {escape(local_time_text(d.made_at, d.time_zone))}'
        "</span></p>"
        f"<table>{rows}</table>"
        f"<p>The report is attached ({escape(', '.join(sorted(made.files)).upper())}).</p>"
        f"{link}</body></html>"
    )


def email_message(
    made: Made, *, sender: str, recipients: list[str], subject_prefix: str
) -> EmailMessage:
    """multipart/mixed: the summary as text and HTML alternatives, then one attachment per file."""
    d = made.document
    subject = f"{subject_prefix} {d.title}: {d.workspace_name}, {made.period}"
    message = addressed(sender, recipients, " ".join(subject.split()), d.made_at)
    message["X-Steerway-Report-Instance"] = made.instance_id
    message.set_content(email_text(made), cte="quoted-printable")
    message.add_alternative(email_html(made), subtype="html", cte="quoted-printable")
    for format_ in sorted(made.files):
        main, sub = CONTENT_TYPES.get(format_, ("application", "octet-stream"))
        message.add_attachment(
            made.files[format_], maintype=main, subtype=sub, filename=made.file_name(format_)
        )
    return message


# --- webhook ----------------------------------------------------------------------------------


class WebhookFigure(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    value: Decimal | float | int | str | None
    """Money as a decimal string, exact."""
    unit: str
    previous: Decimal | float | int | str | None
    change_pct: float | None
    text: str
    """As the email writes it: "$1,482.0375"."""


class WebhookFile(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    name: str
    size: int
    url: str
    """The admin API's download link (needs an admin key or a console session); "" when the
    console's public URL is not configured."""


class WebhookReport(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    title: str
    workspace_name: str
    start: datetime
    end: datetime
    time_zone: str
    made_at: datetime
    figures: tuple[WebhookFigure, ...]
    files: tuple[WebhookFile, ...]
    console_url: str


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    event: str
    delivery_id: str
    sent_at: datetime
    workspace_id: str | None
    report: WebhookReport


def webhook_payload(made: Made, *, delivery_id: str, sent_at: datetime) -> bytes:
    d = made.document
    figures = tuple(
        WebhookFigure(
            name=figure.name,
            title=figure.title,
            value=figure.value,
            unit=figure.unit,
            previous=figure.previous,
            change_pct=figure.change_pct,
            text=value_text(figure.value, figure.unit),
        )
        for figure in headline_figures(d)
    )
    files = tuple(
        WebhookFile(
            format=format_,
            name=made.file_name(format_),
            size=len(made.files[format_]),
            url=made.download_url(format_),
        )
        for format_ in sorted(made.files)
    )
    payload = WebhookPayload(
        version=PAYLOAD_VERSION,
        event="report.made",
        delivery_id=delivery_id,
        sent_at=sent_at,
        workspace_id=d.workspace_id,
        report=WebhookReport(
            instance_id=made.instance_id,
            title=d.title,
            workspace_name=d.workspace_name,
            start=d.start,
            end=d.end,
            time_zone=d.time_zone,
            made_at=d.made_at,
            figures=figures,
            files=files,
            console_url=made.page_url,
        ),
    )
    return msgspec.json.encode(payload)


# --- Slack ------------------------------------------------------------------------------------

_HEADER_MAX: Final = 150


def slack_message(made: Made) -> dict[str, Any]:
    d = made.document
    heading = made.heading
    fields = [
        f"*{slack_escape(figure.title)}*\n{slack_escape(value_text(figure.value, figure.unit))}"
        + ("" if change_text(figure) == "—" else f"  ({slack_escape(change_text(figure))})")
        for figure in headline_figures(d)
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": heading
                if len(heading) <= _HEADER_MAX
                else heading[: _HEADER_MAX - 1] + "…",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f":bar_chart: {slack_escape(made.period)}, made "
                f"{slack_escape(local_time_text(d.made_at, d.time_zone))}",
            },
        },
    ]
    if fields:
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}
        )
    if made.page_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Steerway"},
                        "url": made.page_url,
                    }
                ],
            }
        )
    summary = "; ".join(figure_line(figure) for figure in headline_figures(d)[:3])
    return {
        "text": slack_escape(f"{heading}, {made.period}" + (f": {summary}" if summary else "")),
        "attachments": [{"color": "#4f46e5", "blocks": blocks}],
    }
