"""Channel secrets: `${ENV}` references and sealed values work, and no secret reaches a
delivery result, a log line, an error or a repr."""

from __future__ import annotations

import logging

import msgspec
import pytest

from telemetry.alerts import ChannelConfig, deliver, deliver_all, sealing
from telemetry.alerts.channel_config import SecretError, resolve_secrets, seal_secrets
from tests.telemetry.alerts.conftest import MASTER_KEY, alert
from tests.telemetry.alerts.receivers import Receiver, Reply

SLACK_TOKEN = "T0SECRET/B0SECRET/slacktokenvalue42"
ROUTING_KEY = "pd-routing-key-9f8e7d6c5b4a"
SIGNING = "whsec-signing-value-3a2b1c"


def test_seal_and_open() -> None:
    sealed = sealing.seal("hunter2-but-longer", master_key=MASTER_KEY)
    assert sealed.startswith("sealed:v1:")
    assert "hunter2" not in sealed
    assert sealed != sealing.seal("hunter2-but-longer", master_key=MASTER_KEY)
    assert sealing.open(sealed, master_key=MASTER_KEY) == "hunter2-but-longer"


def test_a_sealed_value_needs_the_same_master_key() -> None:
    sealed = sealing.seal("value-of-secret", master_key=MASTER_KEY)
    with pytest.raises(sealing.SealingError, match="another master key, or altered") as caught:
        sealing.open(sealed, master_key="another-master-key")
    assert "value-of-secret" not in str(caught.value)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(sealing.SealingError, match="altered"):
        sealing.open(tampered, master_key=MASTER_KEY)


def test_sealing_without_a_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEERWAY_MASTER_KEY", raising=False)
    with pytest.raises(sealing.SealingError, match="need STEERWAY_MASTER_KEY to be set"):
        sealing.seal("x")
    monkeypatch.setenv("STEERWAY_MASTER_KEY", MASTER_KEY)
    assert sealing.open(sealing.seal("x")) == "x"
    assert sealing.open(sealing.seal("x"), master_key=MASTER_KEY) == "x"


def test_a_plain_secret_is_refused_without_being_quoted() -> None:
    with pytest.raises(ValueError) as caught:
        ChannelConfig(kind="pagerduty", name="pd", secrets={"routing_key": ROUTING_KEY})
    assert "must be a ${ENV_NAME} reference or a sealed value" in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)
    with pytest.raises(msgspec.ValidationError) as decoded:
        msgspec.convert(
            {"kind": "slack", "name": "s", "secrets": {"webhook_url": SLACK_TOKEN}},
            ChannelConfig,
        )
    assert SLACK_TOKEN not in str(decoded.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"kind": "slack", "name": "s"}, "missing secret 'webhook_url'"),
        ({"kind": "sms", "name": "s"}, "Expected `str` matching regex|Invalid enum value"),
        (
            {"kind": "webhook", "name": "w", "secrets": {"signing_secret": "${S}"}},
            "give the URL once",
        ),
        (
            {
                "kind": "webhook",
                "name": "w",
                "settings": {"url": "ftp://x"},
                "secrets": {"signing_secret": "${S}"},
            },
            "must be an http:// or https:// URL",
        ),
        (
            {"kind": "slack", "name": "s", "secrets": {"webhook_url": "${U}", "token": "${T}"}},
            "unknown secret 'token'",
        ),
        (
            {
                "kind": "slack",
                "name": "s",
                "settings": {"timeout_s": 0},
                "secrets": {"webhook_url": "${U}"},
            },
            "Expected `float` > 0.0",
        ),
        (
            {
                "kind": "slack",
                "name": "s",
                "settings": {"colour": "red"},
                "secrets": {"webhook_url": "${U}"},
            },
            "unknown field `colour`",
        ),
        (
            {
                "kind": "email",
                "name": "e",
                "settings": {
                    "host": "h",
                    "from_address": "a@b.c",
                    "to": ["x@y.z"],
                    "username": "u",
                },
            },
            "setting 'username' needs the secret 'password'",
        ),
        (
            {
                "kind": "email",
                "name": "e",
                "settings": {"host": "h", "from_address": "nobody", "to": ["x@y.z"]},
            },
            "'nobody' is not an email address",
        ),
    ],
)
def test_configuration_problems(fields: dict[str, object], problem: str) -> None:
    with pytest.raises((ValueError, msgspec.ValidationError), match=problem):
        msgspec.convert(fields, ChannelConfig)


def test_redacted_and_repr_show_references_but_never_sealed_values() -> None:
    channel = ChannelConfig(
        kind="webhook",
        name="hook",
        secrets={
            "signing_secret": "${HOOK_SIGNING_SECRET}",
            **seal_secrets(
                {"url": "https://hooks.example/in/" + SLACK_TOKEN}, master_key=MASTER_KEY
            ),
        },
    )
    assert channel.redacted() == {
        "id": "",
        "kind": "webhook",
        "name": "hook",
        "settings": {},
        "secrets": {"signing_secret": "${HOOK_SIGNING_SECRET}", "url": "(sealed)"},
    }
    for shown in (repr(channel), str(channel), f"{channel}"):
        assert "${HOOK_SIGNING_SECRET}" in shown
        assert "sealed:v1:" not in shown


def test_resolving_references_and_sealed_values() -> None:
    channel = ChannelConfig(
        kind="webhook",
        name="hook",
        settings={"url": "https://hooks.example/in"},
        secrets={"signing_secret": "${HOOK_SIGNING_SECRET}"},
    )
    assert resolve_secrets(channel, environ={"HOOK_SIGNING_SECRET": SIGNING}) == {
        "signing_secret": SIGNING
    }
    with pytest.raises(SecretError, match="HOOK_SIGNING_SECRET is not set"):
        resolve_secrets(channel, environ={})
    sealed = ChannelConfig(
        kind="webhook",
        name="hook",
        settings={"url": "https://hooks.example/in"},
        secrets=seal_secrets({"signing_secret": SIGNING}, master_key=MASTER_KEY),
    )
    assert resolve_secrets(sealed, master_key=MASTER_KEY) == {"signing_secret": SIGNING}


async def test_a_missing_reference_fails_the_delivery_before_any_attempt(
    receiver: Receiver,
) -> None:
    channel = ChannelConfig(
        kind="pagerduty",
        name="pd",
        settings={"events_url": receiver.url},
        secrets={"routing_key": "${NOT_SET_ANYWHERE_ROUTING}"},
    )
    result = await deliver(channel, alert(), environ={})
    assert (result.status, result.attempts) == ("failed", 0)
    assert (
        result.error
        == "secret 'routing_key': the environment variable NOT_SET_ANYWHERE_ROUTING is not set"
    )
    assert receiver.received == []


async def test_a_secret_under_another_master_key_fails_clearly(receiver: Receiver) -> None:
    channel = ChannelConfig(
        kind="slack",
        name="s",
        secrets=seal_secrets(
            {"webhook_url": receiver.url + "/" + SLACK_TOKEN}, master_key="old-key"
        ),
    )
    result = await deliver(channel, alert(), master_key=MASTER_KEY)
    assert (result.status, result.attempts) == ("failed", 0)
    assert result.error is not None
    assert result.error.startswith("secret 'webhook_url': a sealed secret cannot be opened")


def _echo_everything(request, body: bytes) -> str:
    """A receiver whose refusals quote the URL it was called at and the body it was sent."""
    return f"refused {request.path_qs} with {body.decode()}"


async def test_no_secret_reaches_results_logs_or_reprs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.check = _echo_everything
    unreachable = "http://127.0.0.1:9/" + SLACK_TOKEN
    channels = [
        ChannelConfig(
            kind="slack",
            name="slack echo",
            secrets=seal_secrets(
                {"webhook_url": f"{receiver.url}/{SLACK_TOKEN}"}, master_key=MASTER_KEY
            ),
        ),
        ChannelConfig(
            kind="pagerduty",
            name="pd echo",
            settings={"events_url": receiver.url + "/v2/enqueue"},
            secrets={"routing_key": "${TEST_ROUTING_KEY}"},
        ),
        ChannelConfig(
            kind="webhook",
            name="hook down",
            settings={"max_attempts": 1},
            secrets=seal_secrets(
                {"signing_secret": SIGNING, "url": unreachable}, master_key=MASTER_KEY
            ),
        ),
    ]
    with caplog.at_level(logging.DEBUG):
        results = await deliver_all(
            channels, alert(), environ={"TEST_ROUTING_KEY": ROUTING_KEY}, master_key=MASTER_KEY
        )

    assert [r.status for r in results] == ["failed", "failed", "failed"]
    assert [r.http_status for r in results] == [400, 400, None]
    # The receivers did quote them: the masking is what kept them out.
    assert SLACK_TOKEN in receiver.received[0].problem
    assert ROUTING_KEY in "".join(r.problem or "" for r in receiver.received)
    assert (results[0].error or "").startswith("HTTP 400: refused *** with {")
    assert '"routing_key":"***"' in (results[1].error or "")
    shown = [
        caplog.text,
        *(repr(r) for r in results),
        *(msgspec.json.encode(r).decode() for r in results),
        *(repr(c) for c in channels),
        *(str(c.redacted()) for c in channels),
    ]
    for text in shown:
        for secret in (SLACK_TOKEN, "slacktokenvalue42", ROUTING_KEY, SIGNING):
            assert secret not in text
    assert "failed after 1 attempt(s)" in caplog.text


async def test_a_server_error_quoting_a_secret_is_masked_across_retries(receiver: Receiver) -> None:
    receiver.script = [Reply(503, f"overloaded at /{SLACK_TOKEN}")] * 3
    channel = ChannelConfig(
        kind="slack",
        name="s",
        settings={"max_attempts": 2, "backoff_s": 0.01},
        secrets=seal_secrets(
            {"webhook_url": f"{receiver.url}/{SLACK_TOKEN}"}, master_key=MASTER_KEY
        ),
    )
    result = await deliver(channel, alert(), master_key=MASTER_KEY)
    assert result.error == "HTTP 503: overloaded at *** (attempt 2 of 2)"
