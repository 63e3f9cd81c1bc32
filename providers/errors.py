"""Upstream failures, classified once so the gateway can answer with the right status."""

from __future__ import annotations

import errno
import socket
import ssl

import msgspec

from providers.http_client import InvalidHeader, InvalidURL, MalformedResponse, ServerDisconnected

_REASON_BY_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTDOWN: "host unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


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


def connection_reason(error: BaseException) -> str:
    """Why a connection to a provider failed, in a few generic words.

    Never the library's message: those name the host, port or URL the provider is reached at,
    which are the operator's business, not the client's."""
    if isinstance(error, socket.gaierror):
        return "host name not found"
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return "TLS error"
    if isinstance(error, ServerDisconnected):
        return "the provider closed the connection"
    if isinstance(error, MalformedResponse):
        return "the response was cut short"
    if isinstance(error, InvalidURL):
        return "invalid URL"
    if isinstance(error, InvalidHeader):
        return "invalid header"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.errno in _REASON_BY_ERRNO:
        return _REASON_BY_ERRNO[error.errno]
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    return "connection failed"


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
