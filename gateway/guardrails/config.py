"""The `guardrails` section of the config: declared guardrails, defaults and settings.

```yaml
guardrails:
  default: [pii]                 # applied to every request
  offload_chars: 8192            # longer inputs are checked in a worker thread
  stream_window_chars: 256       # streamed answers: text re-read around each new chunk
  stream_hold_chars: 64          # ... and held back under block or mask
  mask_secret: ${STEERWAY_MASK_SECRET:-}
  definitions:
    pii: {kind: pii, action: mask, direction: both, mask_style: hash, unmask: true}
    injection: {kind: prompt_injection, action: block, threshold: 0.5}
```

Every problem is reported with its path, like the rest of the config; a guardrail is checked as
far as building it (regexes compile, entity names exist, a custom check imports) so a file that
passes `check-config` starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from gateway.guardrails.model import (
    ACTIONS,
    DIRECTIONS,
    INPUT_ONLY_KINDS,
    KINDS,
    MASK_STYLES,
    MASKABLE_KINDS,
    OUTPUT_ONLY_KINDS,
    GuardrailSpec,
)
from gateway.guardrails.moderation_config import FIELDS as MODERATION_FIELDS
from gateway.guardrails.moderation_config import parse_moderation

if TYPE_CHECKING:
    from gateway.config.file import Secret

SECTION_FIELDS: Final = (
    "default",
    "offload_chars",
    "stream_window_chars",
    "stream_hold_chars",
    "mask_secret",
    "definitions",
)
COMMON_FIELDS: Final = ("kind", "action", "direction", "threshold")
KIND_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "pii": ("entities", "language", "ner_model", "phone_regions", "mask_style", "unmask"),
    "prompt_injection": (),
    "deny_list": ("words", "patterns", "case_sensitive", "mask_style"),
    "max_input_tokens": ("max_tokens",),
    "required_metadata": ("keys",),
    "allowed_models": ("models",),
    "json_schema": (),
    "custom": ("callable", "mask_style"),
    "moderation": MODERATION_FIELDS,
}
DEFAULT_THRESHOLDS: Final[Mapping[str, float]] = {"pii": 0.4}
DEFAULT_THRESHOLD: Final = 0.5


class GuardrailsConfig(msgspec.Struct, frozen=True, kw_only=True):
    definitions: Mapping[str, GuardrailSpec] = msgspec.field(default_factory=dict)
    default: tuple[str, ...] = ()
    offload_chars: int = 8192
    """Inputs longer than this (in characters, all texts together) are checked in a worker
    thread so that one large prompt does not hold up other requests."""
    stream_window_chars: int = 256
    stream_hold_chars: int = 64
    """Streamed answers under `block` or `mask`: characters held back until more text arrives,
    so that a value is not sent in part before it can be recognised."""
    mask_secret: Secret | None = None
    """The key of the HMAC behind `mask_style: hash` tokens; a random one per process if unset."""

    @property
    def names(self) -> list[str]:
        return list(self.definitions)


class Reader(Protocol):
    """The config reader's typed reads (see `gateway.config.file`)."""

    problems: list[str]

    def report(self, path: str, message: str) -> None: ...

    def entries(self, value: Any, path: str) -> list[tuple[str, Any]]: ...

    def fields(
        self, value: Any, path: str, known: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]: ...

    def string(self, value: Any, path: str, *, default: str = "") -> str: ...

    def choice(self, value: Any, path: str, options: tuple[str, ...], *, default: str) -> str: ...

    def positive_integer(self, value: Any, path: str, *, default: int) -> int: ...

    def secret(self, value: Any, path: str) -> Secret | None: ...


def parse_guardrails(value: Any, path: str, reader: Reader) -> GuardrailsConfig:
    fields = reader.fields(value, path, SECTION_FIELDS)
    defaults = GuardrailsConfig()
    definitions = {
        name: _parse_spec(name, item, f"{path}.definitions.{name}", reader)
        for name, item in reader.entries(fields.get("definitions"), f"{path}.definitions")
    }
    default = tuple(
        _names(fields.get("default"), f"{path}.default", reader, known=definitions.keys())
    )
    return GuardrailsConfig(
        definitions=definitions,
        default=default,
        offload_chars=reader.positive_integer(
            fields.get("offload_chars"), f"{path}.offload_chars", default=defaults.offload_chars
        ),
        stream_window_chars=reader.positive_integer(
            fields.get("stream_window_chars"),
            f"{path}.stream_window_chars",
            default=defaults.stream_window_chars,
        ),
        stream_hold_chars=reader.positive_integer(
            fields.get("stream_hold_chars"),
            f"{path}.stream_hold_chars",
            default=defaults.stream_hold_chars,
        ),
        mask_secret=reader.secret(fields.get("mask_secret"), f"{path}.mask_secret"),
    )


def unknown_names(names: Collection[str], known: Collection[str]) -> list[str]:
    """Messages for guardrail names that the config does not declare."""
    problems = []
    for name in names:
        if name not in known:
            problems.append(f"unknown guardrail {name!r}{_hint(name, known)}")
    return problems


def _parse_spec(name: str, value: Any, path: str, reader: Reader) -> GuardrailSpec:
    if not isinstance(value, Mapping):
        reader.report(path, f"expected a mapping, got {type(value).__name__}")
        return GuardrailSpec(name=name, kind="custom")
    kind_value = value.get("kind")
    if kind_value not in KINDS:
        if kind_value is None:
            reader.report(path, "missing required field 'kind'")
        else:
            reader.report(
                f"{path}.kind",
                f"unknown kind {kind_value!r}{_hint(str(kind_value), KINDS)}; "
                f"kinds are {', '.join(KINDS)}",
            )
        return GuardrailSpec(name=name, kind="custom")
    kind = str(kind_value)
    problems_before = len(reader.problems)
    fields = reader.fields(value, path, COMMON_FIELDS + KIND_FIELDS[kind], _required(kind))
    action = reader.choice(fields.get("action"), f"{path}.action", ACTIONS, default="block")
    if action == "mask" and kind not in MASKABLE_KINDS:
        reader.report(
            f"{path}.action",
            f"a {kind} guardrail cannot mask (only {', '.join(sorted(MASKABLE_KINDS))} can); "
            "use block or log",
        )
    direction = reader.choice(
        fields.get("direction"),
        f"{path}.direction",
        DIRECTIONS,
        default="output" if kind in OUTPUT_ONLY_KINDS else "input",
    )
    if kind in INPUT_ONLY_KINDS and direction != "input":
        reader.report(f"{path}.direction", f"a {kind} guardrail checks the input only")
    if kind in OUTPUT_ONLY_KINDS and direction != "output":
        reader.report(f"{path}.direction", f"a {kind} guardrail checks the output only")
    threshold = _threshold(fields.get("threshold"), f"{path}.threshold", kind, reader)
    mask_style = reader.choice(
        fields.get("mask_style"), f"{path}.mask_style", MASK_STYLES, default="type"
    )
    unmask = _flag(fields.get("unmask"), f"{path}.unmask", reader)
    if unmask and (action != "mask" or mask_style != "hash"):
        reader.report(
            f"{path}.unmask",
            "unmask needs action: mask and mask_style: hash (type tokens such as "
            "<EMAIL_ADDRESS> cannot be told apart)",
        )
    spec = GuardrailSpec(
        name=name,
        kind=kind,
        action=action,
        direction=direction,
        threshold=threshold,
        mask_style=mask_style,
        unmask=unmask,
        case_sensitive=_flag(fields.get("case_sensitive"), f"{path}.case_sensitive", reader),
        words=tuple(_strings(fields.get("words"), f"{path}.words", reader)),
        patterns=tuple(_strings(fields.get("patterns"), f"{path}.patterns", reader)),
        keys=tuple(_strings(fields.get("keys"), f"{path}.keys", reader)),
        models=tuple(_strings(fields.get("models"), f"{path}.models", reader)),
        max_tokens=reader.positive_integer(
            fields.get("max_tokens"), f"{path}.max_tokens", default=0
        )
        if "max_tokens" in fields
        else 0,
        language=reader.string(fields.get("language"), f"{path}.language", default="en"),
        ner_model=reader.string(fields.get("ner_model"), f"{path}.ner_model") or None,
        callable=reader.string(fields.get("callable"), f"{path}.callable") or None,
        phone_regions=tuple(_strings(fields["phone_regions"], f"{path}.phone_regions", reader))
        if "phone_regions" in fields
        else None,
        moderation=parse_moderation(fields, path, reader) if kind == "moderation" else None,
        **_entities(fields, path, reader),
    )
    if kind == "deny_list" and not (spec.words or spec.patterns):
        reader.report(path, "a deny_list needs words or patterns")
    if kind == "required_metadata" and not spec.keys and "keys" in fields:
        reader.report(f"{path}.keys", "must not be empty")
    if kind == "allowed_models" and not spec.models and "models" in fields:
        reader.report(f"{path}.models", "must not be empty")
    if len(reader.problems) == problems_before:
        _try_building(spec, path, reader)
    return spec


def _required(kind: str) -> tuple[str, ...]:
    return {
        "max_input_tokens": ("max_tokens",),
        "required_metadata": ("keys",),
        "allowed_models": ("models",),
        "custom": ("callable",),
    }.get(kind, ())


def _threshold(value: Any, path: str, kind: str, reader: Reader) -> float:
    if value is None:
        return DEFAULT_THRESHOLDS.get(kind, DEFAULT_THRESHOLD)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        reader.report(path, f"expected a number between 0 and 1, got {value!r}")
        return DEFAULT_THRESHOLD
    return float(value)


def _flag(value: Any, path: str, reader: Reader) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        reader.report(path, f"expected true or false, got {value!r}")
        return False
    return value


def _strings(value: Any, path: str, reader: Reader) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        reader.report(path, f"expected a list of strings, got {type(value).__name__}")
        return []
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            reader.report(f"{path}[{index}]", f"expected a non-empty string, got {item!r}")
        else:
            found.append(str(item))
    return found


def _names(value: Any, path: str, reader: Reader, *, known: Collection[str]) -> list[str]:
    names = _strings(value, path, reader)
    for index, name in enumerate(names):
        for problem in unknown_names([name], known):
            reader.report(f"{path}[{index}]", problem)
    return list(dict.fromkeys(names))


def _entities(fields: dict[str, Any], path: str, reader: Reader) -> dict[str, Any]:
    if "entities" not in fields:
        return {}
    entities = _strings(fields["entities"], f"{path}.entities", reader)
    if not entities:
        reader.report(f"{path}.entities", "must not be empty")
        return {}
    return {"entities": tuple(dict.fromkeys(entities))}


def _try_building(spec: GuardrailSpec, path: str, reader: Reader) -> None:
    """Build the guardrail's check once, so that what would fail at start fails here."""
    from gateway.guardrails.checks import CheckUnavailable, build_check

    try:
        build_check(spec)
    except CheckUnavailable as error:
        reader.report(f"{path}.{error.field}" if error.field else path, error.problem)
    except ValueError as error:
        reader.report(path, str(error))


def _hint(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
