"""Server-wide settings of the mock provider and the per-request `mock` control field.

A request may carry an object field `"mock"` in its JSON body. The gateway passes unknown body
fields through untouched, so tests steer the upstream's behaviour (delays, errors, broken
streams) from the client side without any side channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
ErrorStatus = Annotated[int, msgspec.Meta(ge=400, le=599)]
ScenarioId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ErrorCode = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
ErrorMessage = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


@dataclass(frozen=True)
class MockSettings:
    latency_ms: float = 0.0
    """Delay before a non-streaming answer, or before the response headers of a stream."""
    ttft_ms: float = 0.0
    """Streaming: extra delay after the role chunk before the first content chunk."""
    chunk_interval_ms: float = 0.0
    """Streaming: delay between content chunks."""
    chunks: int = 8
    """Number of content chunks; the generated reply has `chunks * tokens_per_chunk` words."""
    tokens_per_chunk: int = 1
    embedding_dimensions: int = 16
    require_api_key: str | None = None
    """When set, `/v1/*` requests need `Authorization: Bearer <require_api_key>`."""

    def __post_init__(self) -> None:
        for name in ("latency_ms", "ttft_ms", "chunk_interval_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.chunks < 0:
            raise ValueError("chunks must be >= 0")
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be >= 1")
        if self.embedding_dimensions < 1:
            raise ValueError("embedding_dimensions must be >= 1")


class MockControl(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The optional `"mock"` object of a request body; every key is optional."""

    latency_ms: NonNegative | None = None
    ttft_ms: NonNegative | None = None
    chunk_interval_ms: NonNegative | None = None
    chunks: NonNegativeInt | None = None
    tokens_per_chunk: PositiveInt | None = None
    content: str | None = None
    error: ErrorStatus | None = None
    retry_after: NonNegative | None = None
    malformed: bool = False
    hang: bool = False
    drop_after_chunks: NonNegativeInt | None = None
    no_usage: bool = False
    fail_first: NonNegativeInt | None = None
    """Only the first `fail_first` requests of `scenario` get the injected failure."""
    scenario: ScenarioId | None = None
    fail_models: dict[str, ErrorStatus] | None = None
    """Only requests for these models fail, each with its own status."""
    error_code: ErrorCode | None = None
    error_message: ErrorMessage | None = None

    def __post_init__(self) -> None:
        if (self.fail_first is None) != (self.scenario is None):
            raise ValueError("`fail_first` and `scenario` must be given together")
        shapes_error = self.error_code is not None or self.error_message is not None
        if shapes_error and self.error is None and not self.gated:
            raise ValueError(
                "`error_code` and `error_message` need `error`, `fail_first` or `fail_models`"
            )

    @property
    def gated(self) -> bool:
        return self.fail_first is not None or self.fail_models is not None


class Behaviour(msgspec.Struct, frozen=True):
    """What one request will do: the settings with the request's control applied on top."""

    latency_ms: float
    ttft_ms: float
    chunk_interval_ms: float
    chunks: int
    tokens_per_chunk: int
    content: str | None = None
    error: int | None = None
    retry_after: float | None = None
    malformed: bool = False
    hang: bool = False
    drop_after_chunks: int | None = None
    no_usage: bool = False
    error_code: str | None = None
    error_message: str | None = None
    fail_first: int | None = None
    scenario: str | None = None
    fail_models: dict[str, int] | None = None

    @property
    def fails(self) -> bool:
        """Whether an injected failure of any kind is asked for."""
        return (
            self.error is not None
            or self.hang
            or self.malformed
            or self.drop_after_chunks is not None
        )

    @property
    def word_count(self) -> int:
        return self.chunks * self.tokens_per_chunk


def default_behaviour(settings: MockSettings) -> Behaviour:
    return Behaviour(
        latency_ms=settings.latency_ms,
        ttft_ms=settings.ttft_ms,
        chunk_interval_ms=settings.chunk_interval_ms,
        chunks=settings.chunks,
        tokens_per_chunk=settings.tokens_per_chunk,
    )


def apply_control(base: Behaviour, control: MockControl) -> Behaviour:
    def pick(override: float | None, default: float) -> float:
        return default if override is None else override

    return Behaviour(
        latency_ms=pick(control.latency_ms, base.latency_ms),
        ttft_ms=pick(control.ttft_ms, base.ttft_ms),
        chunk_interval_ms=pick(control.chunk_interval_ms, base.chunk_interval_ms),
        chunks=base.chunks if control.chunks is None else control.chunks,
        tokens_per_chunk=(
            base.tokens_per_chunk if control.tokens_per_chunk is None else control.tokens_per_chunk
        ),
        content=control.content,
        error=control.error,
        retry_after=control.retry_after,
        malformed=control.malformed,
        hang=control.hang,
        drop_after_chunks=control.drop_after_chunks,
        no_usage=control.no_usage,
        error_code=control.error_code,
        error_message=control.error_message,
        fail_first=control.fail_first,
        scenario=control.scenario,
        fail_models=control.fail_models,
    )
