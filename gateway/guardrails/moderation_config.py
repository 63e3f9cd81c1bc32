"""The fields of a `kind: moderation` guardrail in the config, and the names they refer to.

```yaml
guardrails:
  definitions:
    moderation:
      kind: moderation
      action: block
      direction: both
      provider: openai                 # an OpenAI-compatible provider of the config ...
      model: omni-moderation-latest    # ... and its moderation model
      # judge_model: judge             # or: a public chat model of the gateway, with a rubric
      categories: [toxicity, harassment, hate, self-harm, sexual, violence]
      threshold: 0.5
      thresholds: {violence: 0.8}
      timeout_ms: 3000
      stream_chars: 400
```
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Final

from gateway.guardrails.moderation_model import (
    CATEGORIES,
    CATEGORY_NAME,
    DEFAULT_STREAM_CHARS,
    DEFAULT_TIMEOUT_MS,
    ModerationSpec,
    family,
)

if TYPE_CHECKING:
    from gateway.config.file import ProviderConfig
    from gateway.guardrails.config import GuardrailsConfig, Reader

FIELDS: Final = (
    "provider",
    "model",
    "judge_model",
    "categories",
    "thresholds",
    "timeout_ms",
    "stream_chars",
)
ENDPOINT_PROVIDER_TYPES: Final = ("openai",)
"""Provider types whose servers answer OpenAI's `POST /moderations`."""


def parse_moderation(fields: Mapping[str, Any], path: str, reader: Reader) -> ModerationSpec:
    provider = reader.string(fields.get("provider"), f"{path}.provider") or None
    model = reader.string(fields.get("model"), f"{path}.model") or None
    judge = reader.string(fields.get("judge_model"), f"{path}.judge_model") or None
    if judge is not None and (provider is not None or model is not None):
        reader.report(
            path, "set either provider and model (a moderation endpoint) or judge_model, not both"
        )
    elif judge is None and (provider is None or model is None):
        reader.report(
            path,
            "a moderation guardrail needs provider and model (an OpenAI-compatible moderation "
            "endpoint) or judge_model (a public chat model of the gateway)",
        )
    categories = _categories(fields.get("categories"), f"{path}.categories", reader)
    return ModerationSpec(
        provider=provider,
        model=model,
        judge_model=judge,
        categories=categories,
        thresholds=_thresholds(fields.get("thresholds"), f"{path}.thresholds", categories, reader),
        timeout_ms=reader.positive_integer(
            fields.get("timeout_ms"), f"{path}.timeout_ms", default=DEFAULT_TIMEOUT_MS
        ),
        stream_chars=reader.positive_integer(
            fields.get("stream_chars"), f"{path}.stream_chars", default=DEFAULT_STREAM_CHARS
        ),
    )


def _categories(value: Any, path: str, reader: Reader) -> tuple[str, ...]:
    if value is None:
        return CATEGORIES
    if not isinstance(value, list) or not value:
        reader.report(path, "expected a non-empty list of category names")
        return CATEGORIES
    found: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not CATEGORY_NAME.match(family(item)):
            reader.report(
                f"{path}[{index}]",
                f"expected a category name such as {CATEGORIES[1]!r}, got {item!r}",
            )
            continue
        name = family(item)
        if name not in found:
            found.append(name)
    return tuple(found) or CATEGORIES


def _thresholds(
    value: Any, path: str, categories: Collection[str], reader: Reader
) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        reader.report(path, f"expected a mapping of category to threshold, got {value!r}")
        return {}
    thresholds: dict[str, float] = {}
    for name, number in value.items():
        where = f"{path}.{name}"
        category = family(str(name))
        if category not in categories:
            reader.report(
                where, f"not one of this guardrail's categories ({', '.join(categories)})"
            )
        elif isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number <= 1:
            reader.report(where, f"expected a number above 0 and at most 1, got {number!r}")
        else:
            thresholds[category] = float(number)
    return thresholds


def check_references(
    guardrails: GuardrailsConfig,
    providers: Mapping[str, ProviderConfig],
    models: Collection[str],
    reader: Reader,
) -> None:
    """A moderation endpoint's provider must exist and speak OpenAI's format; a judge must be
    a public model of the config."""
    for name, spec in guardrails.definitions.items():
        moderation = spec.moderation
        if moderation is None:
            continue
        path = f"guardrails.definitions.{name}"
        if moderation.provider is not None:
            provider = providers.get(moderation.provider)
            if provider is None:
                reader.report(f"{path}.provider", f"unknown provider {moderation.provider!r}")
            elif provider.type not in ENDPOINT_PROVIDER_TYPES:
                reader.report(
                    f"{path}.provider",
                    f"a {provider.type} provider has no OpenAI-compatible /moderations endpoint; "
                    "use an openai-type provider or judge_model",
                )
        if moderation.judge_model is not None and moderation.judge_model not in models:
            reader.report(f"{path}.judge_model", f"unknown model {moderation.judge_model!r}")
