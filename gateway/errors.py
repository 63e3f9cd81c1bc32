"""The error model: every failure leaves the gateway in OpenAI's shape with the status its SDK expects."""

from __future__ import annotations

import msgspec


class GatewayError(Exception):
    """An error the client should see, already classified.

    `type` and `code` follow OpenAI's vocabulary so SDK users can branch on them; `message` is
    written for the caller and must never carry a secret or a stack trace.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> bytes:
    return msgspec.json.encode(
        {"error": {"message": message, "type": type, "param": param, "code": code}}
    )


def invalid_request(
    message: str, param: str | None = None, code: str | None = None
) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def missing_key() -> GatewayError:
    return GatewayError(
        401,
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
        code="missing_api_key",
    )


def invalid_key() -> GatewayError:
    return GatewayError(401, "Incorrect API key provided.", code="invalid_api_key")


def clipped(text: str, limit: int = 200) -> str:
    """Caller-sent text as an error message may quote it: short enough to read."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model `{clipped(model)}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
    )


def not_found(method: str, path: str) -> GatewayError:
    return GatewayError(
        404,
        f"Unknown request URL: {_clipped(method, 16)} {_clipped(path, 200)}.",
        code="unknown_url",
    )


def method_not_allowed(method: str, path: str) -> GatewayError:
    return GatewayError(
        405, f"Method {_clipped(method, 16)} is not allowed on {path}.", code="method_not_allowed"
    )


def _clipped(text: str, limit: int) -> str:
    """What the client sent, cut to `limit` characters: messages may be stored and logged."""
    return text if len(text) <= limit else text[:limit] + "…"


def upstream_error(provider: str, detail: str, status: int = 502) -> GatewayError:
    return GatewayError(
        status,
        f"The upstream provider '{provider}' failed: {detail}",
        type="upstream_error",
        code="upstream_error",
    )


def upstream_timeout(provider: str, detail: str) -> GatewayError:
    return GatewayError(
        504,
        f"The upstream provider '{provider}' timed out: {detail}",
        type="upstream_error",
        code="upstream_timeout",
    )


def no_deployment(model: str) -> GatewayError:
    return GatewayError(
        503,
        f"No deployment of `{model}` is available right now: all are cooling down after "
        "failures or at their capacity. Retry later.",
        type="server_error",
        code="no_deployment_available",
        headers={"retry-after": "1"},
    )


def database_unavailable(retry_after: str) -> GatewayError:
    return GatewayError(
        503,
        "The gateway's database is unavailable right now, so this request cannot be served. "
        "Retry later.",
        type="server_error",
        code="service_unavailable",
        headers={"retry-after": retry_after},
    )


def internal_error() -> GatewayError:
    return GatewayError(
        500,
        "The gateway failed to handle this request; it has been recorded.",
        type="server_error",
        code="internal_error",
    )
