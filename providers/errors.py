"""Upstream failures, classified once so the gateway can answer with the right status."""

from __future__ import annotations

import re

import msgspec

_SECRET_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|sk-ant-[A-Za-z0-9_\-*]{6,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+\S+)"
)


class UpstreamFailure(Exception):
    """A provider attempt that did not produce a usable answer.

    `kind` is one of: connect, timeout, http (the provider answered an error status),
    malformed (the provider answered something that is not its wire format), disconnected.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        param: str | None = None,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.error_type = error_type
        self.error_code = error_code
        self.param = param
        self.retry_after = retry_after
        self.retry_after_ms = retry_after_ms


def scrub_secrets(text: str, *secrets: str | None) -> str:
    """Remove anything that looks like a credential from a provider's message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_PATTERNS.sub("***", text)


class _ErrorDetail(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorDetail | str | None = None


def parse_error_body(
    raw: bytes, limit: int = 2000
) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI-shaped error body, or the raw text."""
    try:
        envelope = msgspec.json.decode(raw, type=_ErrorEnvelope)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = raw[:limit].decode("utf-8", "replace").strip()
        return (text or "no error message"), None, None, None
    detail = envelope.error
    if isinstance(detail, str):
        return detail, None, None, None
    if detail is None:
        return raw[:limit].decode("utf-8", "replace"), None, None, None
    code = None if detail.code is None else str(detail.code)
    return detail.message or "no error message", detail.type, code, detail.param
