"""The `telemetry.sampling` section: what is kept whole when traffic is large.

```yaml
telemetry:
  sampling:
    ratio: 0.1                # share of the other traces kept whole (1: all, the default)
    errors: true              # HTTP status >= 400, or status error
    slow_ms: 10000            # longer than this (0: no such test)
    guardrail_verdicts: true  # a guardrail found something (block, mask, log) or failed
    rule_denials: true        # a steering rule denied the request
    evaluation: true          # marked for evaluation
```

Every field is optional. A trace that is not kept whole still leaves its trace row and its
interactions' figures (docs/configuration.md has the table of what is kept).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from telemetry.trace_sampling import TraceSampling

SECTION_FIELDS: Final = (
    "ratio",
    "errors",
    "slow_ms",
    "guardrail_verdicts",
    "rule_denials",
    "evaluation",
)
_FLAGS: Final = ("errors", "guardrail_verdicts", "rule_denials", "evaluation")


class SamplingConfig(msgspec.Struct, frozen=True, kw_only=True):
    ratio: float = 1.0
    """Share of the traces no "always keep" test holds that are kept whole, decided per trace
    id; 1 keeps every trace whole and turns sampling off."""
    errors: bool = True
    slow_ms: int = 10_000
    guardrail_verdicts: bool = True
    rule_denials: bool = True
    evaluation: bool = True

    def policy(self) -> TraceSampling | None:
        """The recorder's policy; None while sampling is off (every trace kept whole)."""
        if self.ratio >= 1.0:
            return None
        return TraceSampling(
            ratio=self.ratio,
            errors=self.errors,
            slow_ms=float(self.slow_ms),
            guardrail_verdicts=self.guardrail_verdicts,
            rule_denials=self.rule_denials,
            evaluation=self.evaluation,
        )


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    def report(self, path: str, message: str) -> None: ...

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def non_negative_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def non_negative_number(self, value: Any, path: str, *, default: float) -> float: ...


def parse_sampling(value: Any, path: str, reader: Reader) -> SamplingConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = SamplingConfig()
    flags = {
        name: _flag(fields.get(name), f"{path}.{name}", reader, default=getattr(defaults, name))
        for name in _FLAGS
    }
    return SamplingConfig(
        ratio=_ratio(fields.get("ratio"), f"{path}.ratio", reader, default=defaults.ratio),
        slow_ms=reader.non_negative_integer(
            fields.get("slow_ms"), f"{path}.slow_ms", default=defaults.slow_ms
        ),
        **flags,
    )


def _ratio(value: Any, path: str, reader: Reader, *, default: float) -> float:
    ratio = reader.non_negative_number(value, path, default=default)
    if ratio > 1:
        reader.report(path, f"expected a number from 0 to 1, got {ratio:g}")
        return default
    return ratio


def _flag(value: Any, path: str, reader: Reader, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    reader.report(path, f"expected true or false, got {value!r}")
    return default
