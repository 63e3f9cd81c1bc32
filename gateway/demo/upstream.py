"""How the demo history's providers fail, in their own words, and what a client then sees.

Failures come in runs: a provider that just failed a request fails its next attempt `AGAIN` of
the time, the same way, so some requests outlast their retries. During an incident a provider
times out or is overloaded far more often. The messages are the providers' own; what the
client sees is what `gateway.upstream.attempts.client_error` makes of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.demo.cast import AGAIN, Model, Provider
from gateway.demo.draws import lognormal
from gateway.demo.rhythm import Incident
from providers.errors import UpstreamFailure

TIMEOUT_SECONDS = 30.0

SERVER_ERRORS = {
    "openai": {
        500: "The server had an error while processing your request. Sorry about that!",
        502: "Bad gateway.",
        503: "The engine is currently overloaded, please try again later.",
    },
    "azure-eu": {
        500: "The server had an error processing your request.",
        502: "Bad gateway.",
        503: "The service is temporarily unable to process your request. Please try again later.",
    },
    "anthropic": {500: "Internal server error", 502: "Bad gateway", 529: "Overloaded"},
    "gemini": {
        500: "An internal error has occurred. Please retry or report in the forum.",
        502: "Bad gateway.",
        503: "The model is overloaded. Please try again later.",
    },
}
# provider: (type, code, message) of its 429
THROTTLES = {
    "openai": ("requests", "rate_limit_exceeded", "Rate limit reached for requests per min (RPM)."),
    "azure-eu": (
        "requests",
        "rate_limit_exceeded",
        "Requests to the deployment have exceeded the rate limit of your current pricing tier.",
    ),
    "anthropic": (
        "rate_limit_error",
        None,
        "This request would exceed the rate limit for your organization of 400,000 input "
        "tokens per minute.",
    ),
    "gemini": ("rate_limit_error", None, "Resource has been exhausted (e.g. check quota)."),
}


@dataclass(frozen=True, slots=True)
class ClientError:
    """The error a client got: status, the trace's error type, the message."""

    status: int
    error_type: str
    message: str


def failure_type(failure: UpstreamFailure) -> str:
    """The attempt's `error_type` (`gateway.upstream.attempts.failure_type`)."""
    return f"http_{failure.status}" if failure.kind == "http" else failure.kind


def client_error(provider: str, failure: UpstreamFailure) -> ClientError:
    """What the client sees for a failed attempt (`gateway.upstream.attempts.client_error`)."""
    if failure.kind == "timeout":
        return ClientError(
            504,
            "upstream_timeout",
            f"The upstream provider '{provider}' timed out: {failure.message}",
        )
    status = failure.status or 502
    if failure.kind != "http" or status >= 500:
        detail = failure.message if failure.kind != "http" else f"HTTP {status}: {failure.message}"
        return ClientError(
            502, "upstream_error", f"The upstream provider '{provider}' failed: {detail}"
        )
    return ClientError(
        status,
        failure.error_code or failure.error_type or "invalid_request_error",
        f"{provider}: {failure.message}",
    )


def failing(
    rng: random.Random, provider: Provider, incident: Incident | None, before: str | None
) -> str | None:
    """How an attempt on `provider` fails (`timeout`, `http_429`, `http_503`...), or None.
    `before` is how the provider failed this request's previous attempt, if it did."""
    if before is not None and rng.random() < AGAIN:
        return before
    if incident is not None and rng.random() < incident.failure_rate:
        return "timeout" if incident.kind == "timeout" else f"http_{provider.overloaded_status}"
    if rng.random() >= provider.failure_rate:
        return None
    draw = rng.random()
    if draw < provider.timeout_share:
        return "timeout"
    if draw < provider.timeout_share + provider.throttle_share:
        return "http_429"
    if rng.random() < 0.7:
        return f"http_{provider.overloaded_status}"
    return f"http_{rng.choice(sorted(SERVER_ERRORS[provider.name]))}"


def failure_of(rng: random.Random, provider: str, way: str) -> tuple[UpstreamFailure, float]:
    """The failure `way` names and how many seconds the attempt took to fail."""
    if way == "timeout":
        failure = UpstreamFailure("timeout", "no response in time")
        return failure, TIMEOUT_SECONDS + rng.uniform(0, 0.005)
    status = int(way.removeprefix("http_"))
    if status == 429:
        error_type, code, message = THROTTLES[provider]
        retry_after = rng.choice(("1", "2")) if rng.random() < 0.5 else None
        failure = UpstreamFailure(
            "http",
            message,
            status=429,
            error_type=error_type,
            error_code=code,
            retry_after=retry_after,
        )
        return failure, lognormal(rng, 0.08, 0.5)
    message = SERVER_ERRORS[provider][status]
    failure = UpstreamFailure("http", message, status=status, error_type="server_error")
    return failure, lognormal(rng, 0.25, 0.6)


def context_failure(provider: str, model: Model, tokens: int) -> UpstreamFailure:
    """A prompt longer than the model's context window, refused as the provider refuses it."""
    if provider == "anthropic":
        message = f"prompt is too long: {tokens} tokens > {model.context_window} maximum"
        return UpstreamFailure("http", message, status=400, error_type="invalid_request_error")
    message = (
        f"This model's maximum context length is {model.context_window} tokens. However, "
        f"your messages resulted in {tokens} tokens. Please reduce the length of the messages."
    )
    return UpstreamFailure(
        "http",
        message,
        status=400,
        error_type="invalid_request_error",
        error_code="context_length_exceeded",
        param="messages",
    )
