"""OpenAI-shaped error responses: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import msgspec
from aiohttp import web

_KIND_BY_STATUS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}

_INJECTED_MESSAGE: dict[int, str] = {
    400: "The mock provider was asked to reject this request.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to use this model.",
    404: "The model does not exist or you do not have access to it.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
    504: "The server timed out while processing your request.",
}

_INJECTED_BY_CODE: dict[str, tuple[str, str | None]] = {
    "context_length_exceeded": (
        "This model's maximum context length is 128000 tokens, but your messages came to "
        "128001 tokens. Shorten the messages and try again.",
        "messages",
    ),
    "content_filter": (
        "The request was rejected because it was flagged by the content management policy.",
        "prompt",
    ),
}
"""Message and `param` of an injected error with a well-known `mock.error_code`."""


class MockRequestError(Exception):
    """A request the mock provider rejects, turned into an OpenAI error response by the handler."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code

    def to_response(self) -> web.Response:
        return error_response(self.status, self.message, param=self.param, code=self.code)


def error_response(
    status: int,
    message: str | None = None,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    error_type, default_code = _KIND_BY_STATUS.get(status, (default_type, None))
    body = {
        "error": {
            "message": message or _INJECTED_MESSAGE.get(status, f"Mock error {status}."),
            "type": error_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }
    return web.Response(
        status=status,
        body=msgspec.json.encode(body),
        content_type="application/json",
        headers=headers,
    )


def retry_headers(retry_after: float | None) -> dict[str, str] | None:
    """`retry-after` (seconds) and `retry-after-ms` for an injected error, if asked for."""
    if retry_after is None:
        return None
    seconds = int(retry_after) if float(retry_after).is_integer() else retry_after
    return {"retry-after": str(seconds), "retry-after-ms": str(round(retry_after * 1000))}


def injected_error_response(
    status: int,
    retry_after: float | None,
    *,
    code: str | None = None,
    message: str | None = None,
) -> web.Response:
    default_message, param = _INJECTED_BY_CODE.get(code, (None, None)) if code else (None, None)
    return error_response(
        status,
        message or default_message,
        param=param,
        code=code,
        headers=retry_headers(retry_after),
    )
