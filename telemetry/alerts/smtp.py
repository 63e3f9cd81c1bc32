"""Email channel: one message over SMTP, with STARTTLS, implicit TLS or (for a local relay)
neither, and optional authentication.

smtplib blocks, so a delivery runs in a worker thread; its `timeout_s` bounds every socket
operation, so a thread left behind by a delivery's deadline ends on its own soon after. A reply
in the 4xx range, a dropped connection or a timeout is retried; a 5xx reply is final.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Annotated, Literal

import msgspec

from telemetry.alerts.attempts import (
    DeliveryFailed,
    DeliverySettings,
    Progress,
    attempt_timeout,
    backoff_delay,
    wait_before_retry,
)
from telemetry.alerts.email_message import email_message, wire_bytes
from telemetry.alerts.kind import ChannelKind
from telemetry.alerts.notification import Notification

Security = Literal["starttls", "tls", "plain"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "plain": 25}


class EmailSettings(DeliverySettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """0: the security's usual port (587, 465 or 25)."""
    security: Security = "starttls"
    username: str = ""
    from_address: str
    to: Annotated[list[str], msgspec.Meta(min_length=1)]
    subject_prefix: str = "[Steerway]"
    ca_file: str = ""
    """PEM certificates to trust instead of the system's (a relay with a private CA)."""


class _Reply(Exception):
    """An SMTP reply that ends an attempt."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code


def _tls_context(settings: EmailSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file or None)


def _reply_text(message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return " ".join(text.split())


def _transfer(
    settings: EmailSettings, password: str | None, message: EmailMessage, timeout: float
) -> str:
    """One SMTP session; the final reply (`250 ...`) on success."""
    port = settings.port or DEFAULT_PORTS[settings.security]
    client: smtplib.SMTP
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(
            settings.host, port, timeout=timeout, context=_tls_context(settings)
        )
    else:
        client = smtplib.SMTP(settings.host, port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=_tls_context(settings))
            client.ehlo()
        if settings.username:
            client.login(settings.username, password or "")
        sender = parseaddr(settings.from_address)[1]
        code, text = client.mail(sender)
        if code != 250:
            raise _Reply(code, _reply_text(text))
        refused: list[str] = []
        last: tuple[int, bytes] = (0, b"")
        for recipient in settings.to:
            last = client.rcpt(parseaddr(recipient)[1])
            if last[0] not in (250, 251):
                refused.append(f"{recipient} ({last[0]} {_reply_text(last[1])})")
        if len(refused) == len(settings.to):
            raise _Reply(last[0], f"every recipient refused: {'; '.join(refused)}")
        code, text = client.data(wire_bytes(message))
        if code != 250:
            raise _Reply(code, _reply_text(text))
        reply = f"{code} {_reply_text(text)}"
        return reply + (f"; refused: {'; '.join(refused)}" if refused else "")


async def send(
    settings: EmailSettings,
    secrets: Mapping[str, str],
    notification: Notification,
    progress: Progress,
) -> None:
    message = email_message(
        notification,
        sender=settings.from_address,
        recipients=settings.to,
        subject_prefix=settings.subject_prefix,
    )
    await send_message(settings, secrets, message, progress)


async def send_message(
    settings: EmailSettings,
    secrets: Mapping[str, str],
    message: EmailMessage,
    progress: Progress,
) -> None:
    """Any message over the channel's relay, with its retries (a report's email too)."""
    while True:
        progress.attempts += 1
        timeout = attempt_timeout(settings, progress)
        try:
            progress.smtp_reply = await asyncio.wait_for(
                asyncio.to_thread(_transfer, settings, secrets.get("password"), message, timeout),
                timeout,
            )
            return
        except smtplib.SMTPAuthenticationError as error:
            progress.smtp_reply = f"{error.smtp_code} {_reply_text(error.smtp_error)}"
            raise DeliveryFailed(f"authentication refused: {progress.smtp_reply}") from None
        except (_Reply, smtplib.SMTPResponseException) as error:
            code = error.code if isinstance(error, _Reply) else error.smtp_code
            text = str(error) if isinstance(error, _Reply) else _reply_text(error.smtp_error)
            progress.smtp_reply = text if isinstance(error, _Reply) else f"{code} {text}"
            reason = f"SMTP reply {progress.smtp_reply}"
            if not 400 <= code < 500:
                raise DeliveryFailed(f"{reason} (not retried)") from None
        except (TimeoutError, smtplib.SMTPServerDisconnected) as error:
            # smtplib reports its own socket timeout as a disconnection caused by the timeout.
            timed_out = isinstance(error, TimeoutError) or isinstance(
                error.__context__, TimeoutError
            )
            reason = (
                f"no answer within {timeout:.3g} s"
                if timed_out
                else f"connection failed: {_describe(error)}"
            )
        except ssl.SSLCertVerificationError as error:
            raise DeliveryFailed(f"the server's certificate: {_describe(error)}") from None
        except smtplib.SMTPException as error:
            # No STARTTLS or no usable login method offered: a setting to change, not a retry.
            raise DeliveryFailed(f"SMTP: {_describe(error)}") from None
        except OSError as error:
            reason = f"connection failed: {_describe(error)}"
        if progress.attempts >= settings.max_attempts:
            raise DeliveryFailed(
                f"{reason} (attempt {progress.attempts} of {settings.max_attempts})"
            )
        await wait_before_retry(progress, backoff_delay(settings, progress.attempts), reason)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _check(settings: EmailSettings, secret_names: frozenset[str]) -> str | None:
    if settings.username and "password" not in secret_names:
        return "setting 'username' needs the secret 'password'"
    if "password" in secret_names and not settings.username:
        return "the secret 'password' needs the setting 'username'"
    for address in [settings.from_address, *settings.to]:
        if "@" not in parseaddr(address)[1]:
            return f"{address!r} is not an email address"
    return None


KIND = ChannelKind(
    name="email",
    settings_type=EmailSettings,
    send=send,
    optional_secrets=frozenset({"password"}),
    check=_check,
)
