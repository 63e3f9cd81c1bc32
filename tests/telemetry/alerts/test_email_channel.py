"""The email channel against aiosmtpd: plain, STARTTLS with authentication, implicit TLS;
messages parsed with the `email` package and checked part by part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry.alerts import ChannelConfig, deliver
from telemetry.alerts.channel_config import seal_secrets
from tests.telemetry.alerts.conftest import MASTER_KEY, alert
from tests.telemetry.alerts.smtp_server import (
    SmtpHandler,
    password_authenticator,
    self_signed_certificate,
    server_tls_context,
    start_smtp,
)

PASSWORD = "smtp-pass-7c1d9e2f"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def plain_server() -> Iterator[tuple[SmtpHandler, int]]:
    handler = SmtpHandler()
    controller = start_smtp(handler)
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[SmtpHandler, int]]:
    handler = SmtpHandler()
    controller = start_smtp(
        handler,
        tls_context=server_tls_context(*certificate),
        require_starttls=True,
        authenticator=password_authenticator("alerts", PASSWORD),
        auth_required=True,
    )
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[SmtpHandler, int]]:
    handler = SmtpHandler()
    controller = start_smtp(handler, ssl_context=server_tls_context(*certificate))
    yield handler, controller.port
    controller.stop()


def email(port: int, *, secrets: dict[str, str] | None = None, **settings: object) -> ChannelConfig:
    return ChannelConfig(
        kind="email",
        name="ops mail",
        settings={
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "from_address": "Steerway <alerts@steerway.example>",
            "to": ["oncall@example.com", "Finance Team <finance@example.com>"],
            "timeout_s": 5,
            "backoff_s": 0.01,
            **settings,
        },
        secrets=seal_secrets(secrets or {}, master_key=MASTER_KEY),
    )


async def test_plain_delivery_text_and_html_parts(plain_server: tuple[SmtpHandler, int]) -> None:
    handler, port = plain_server
    result = await deliver(email(port), alert(), master_key=MASTER_KEY)

    assert (result.status, result.attempts, result.error) == ("sent", 1, None)
    assert result.smtp_reply == "250 Message accepted for delivery"
    [sent] = handler.messages
    assert sent.mail_from == "alerts@steerway.example"
    assert sent.rcpt_tos == ["oncall@example.com", "finance@example.com"]
    message = sent.message
    assert message["From"] == "Steerway <alerts@steerway.example>"
    assert message["To"] == "oncall@example.com, Finance Team <finance@example.com>"
    assert message["Subject"] == (
        "[Steerway] [FIRING · critical] Error rate: "
        "Error rate 7.5 % on <script>alert(1)</script> & friends"
    )
    assert message["X-Steerway-Fingerprint"] == alert().fingerprint
    assert message["Message-ID"].endswith("@steerway.example>")
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"

    text = text_part.get_content().replace("\r\n", "\n")
    assert "Error rate 7.5 % on <script>alert(1)</script> & friends\n" in text
    assert "Value: 7.5 %\nThreshold: 5 %\n" in text
    assert "Label model: gpt-4o-mini\n" in text
    assert text.endswith("Open in Steerway: https://steerway.example/admin/alerts/01abc?x=1&y=2\n")

    html = html_part.get_content()
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(map(len, sent.raw.splitlines())) <= 78
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
    assert '<a href="https://steerway.example/admin/alerts/01abc?x=1&amp;y=2">' in html
    assert '<th align="left" style="padding:2px 12px 2px 0">Threshold</th><td>5 %</td>' in html
    assert "border-left:6px solid #d92d20" in html


async def test_starttls_with_authentication(
    starttls_server: tuple[SmtpHandler, int], certificate: tuple[Path, Path]
) -> None:
    handler, port = starttls_server
    channel = email(
        port,
        security="starttls",
        username="alerts",
        ca_file=str(certificate[0]),
        secrets={"password": PASSWORD},
    )
    result = await deliver(channel, alert(state="resolved"), master_key=MASTER_KEY)

    assert (result.status, result.attempts, result.error) == ("sent", 1, None)
    [sent] = handler.messages
    assert sent.login == "alerts"
    assert sent.message["Subject"].startswith("[Steerway] [RESOLVED] Error rate: ")


async def test_a_wrong_password_is_reported_without_it(
    starttls_server: tuple[SmtpHandler, int], certificate: tuple[Path, Path]
) -> None:
    handler, port = starttls_server
    channel = email(
        port,
        security="starttls",
        username="alerts",
        ca_file=str(certificate[0]),
        secrets={"password": "wrong-" + PASSWORD},
    )
    result = await deliver(channel, alert(), master_key=MASTER_KEY)

    assert (result.status, result.attempts) == ("failed", 1)
    assert result.smtp_reply == "535 5.7.8 Authentication credentials invalid"
    assert result.error == "authentication refused: 535 5.7.8 Authentication credentials invalid"
    assert PASSWORD not in repr(result)
    assert handler.messages == []


async def test_an_untrusted_certificate_is_refused(
    starttls_server: tuple[SmtpHandler, int],
) -> None:
    _, port = starttls_server
    channel = email(port, security="starttls", username="alerts", secrets={"password": PASSWORD})
    result = await deliver(channel, alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("failed", 1)
    assert (result.error or "").startswith(
        "the server's certificate: SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED]"
    )


async def test_starttls_asked_of_a_server_without_it(plain_server: tuple[SmtpHandler, int]) -> None:
    handler, port = plain_server
    result = await deliver(email(port, security="starttls"), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("failed", 1)
    assert result.error == (
        "SMTP: SMTPNotSupportedError: STARTTLS extension not supported by server."
    )
    assert handler.messages == []


async def test_implicit_tls(
    tls_server: tuple[SmtpHandler, int], certificate: tuple[Path, Path]
) -> None:
    handler, port = tls_server
    result = await deliver(
        email(port, security="tls", ca_file=str(certificate[0])), alert(), master_key=MASTER_KEY
    )
    assert (result.status, result.smtp_reply) == ("sent", "250 Message accepted for delivery")
    assert len(handler.messages) == 1


async def test_a_4xx_reply_is_retried(plain_server: tuple[SmtpHandler, int]) -> None:
    handler, port = plain_server
    handler.replies = ["451 4.3.0 Try again later"]
    result = await deliver(email(port), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("sent", 2)
    assert handler.data_commands == 2
    assert len(handler.messages) == 1


async def test_a_5xx_reply_is_final(plain_server: tuple[SmtpHandler, int]) -> None:
    handler, port = plain_server
    handler.replies = ["554 5.7.1 Message rejected as spam"]
    result = await deliver(email(port), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("failed", 1)
    assert result.smtp_reply == "554 5.7.1 Message rejected as spam"
    assert result.error == "SMTP reply 554 5.7.1 Message rejected as spam (not retried)"
    assert handler.data_commands == 1


async def test_some_recipients_refused(plain_server: tuple[SmtpHandler, int]) -> None:
    handler, port = plain_server
    handler.refused = {"finance@example.com"}
    result = await deliver(email(port), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("sent", 1)
    assert result.smtp_reply == (
        "250 Message accepted for delivery; refused: "
        "Finance Team <finance@example.com> (550 5.1.1 No such user)"
    )
    assert handler.messages[0].rcpt_tos == ["oncall@example.com"]


async def test_every_recipient_refused(plain_server: tuple[SmtpHandler, int]) -> None:
    handler, port = plain_server
    handler.refused = {"finance@example.com", "oncall@example.com"}
    result = await deliver(email(port), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("failed", 1)
    assert result.error == (
        "SMTP reply 550 every recipient refused: oncall@example.com (550 5.1.1 No such user); "
        "Finance Team <finance@example.com> (550 5.1.1 No such user) (not retried)"
    )
    assert handler.data_commands == 0


async def test_no_server_listening() -> None:
    from tests.ports import free_port

    result = await deliver(email(free_port(), max_attempts=2), alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("failed", 2)
    assert (result.error or "").startswith("connection failed: ConnectionRefusedError")
