"""From a guardrail's spec to the check that runs it, behind one call shape.

Every check is called as `check(text, context)`: text checks (PII, injection, deny lists, custom)
read the text; request checks (size, metadata, model, JSON schema) read the context and, for the
answer's schema, the text. Building a check is where a bad spec fails (`CheckUnavailable`), so the
config check and the gateway's start see the same problem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from gateway.guardrails.model import CheckContext, CheckResult, GuardrailSpec
from gateway.keys.limits import InvalidField

Check = Callable[[str, CheckContext], CheckResult]

TEXT_CHECK_KINDS: Final = frozenset({"pii", "prompt_injection", "deny_list", "custom"})


class CheckUnavailable(Exception):
    """A guardrail that cannot be built; `field` is where in its spec the problem lies."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def build_check(spec: GuardrailSpec) -> Check:
    builder = _BUILDERS[spec.kind]
    return builder(spec)


def _pii(spec: GuardrailSpec) -> Check:
    from gateway.guardrails import pii as guardrail_pii

    try:
        known = guardrail_pii.available_entities(
            ner=spec.ner_model is not None, language=spec.language
        )
    except ValueError as error:
        raise CheckUnavailable("language", str(error)) from None
    for index, entity in enumerate(spec.entities):
        if entity not in known:
            raise CheckUnavailable(
                f"entities[{index}]",
                f"unknown entity {entity!r}; available: {', '.join(sorted(known))}",
            )
    try:
        scanner = _shared_scanner(
            spec.entities, spec.language, spec.threshold, spec.ner_model, spec.phone_regions
        )
    except ValueError as error:
        field = "phone_regions" if "region" in str(error) else "ner_model" if spec.ner_model else ""
        raise CheckUnavailable(field, str(error)) from None
    return lambda text, context: scanner.scan(text)


@functools.lru_cache(maxsize=32)
def _shared_scanner(
    entities: tuple[str, ...],
    language: str,
    threshold: float,
    ner_model: str | None,
    phone_regions: tuple[str, ...] | None,
) -> Any:
    """Scanners hold compiled recognizers (and perhaps a spaCy model): one per configuration."""
    from gateway.guardrails.pii import PiiScanner

    regions = {} if phone_regions is None else {"phone_regions": phone_regions}
    return PiiScanner(
        entities, language=language, threshold=threshold, ner_model=ner_model, **regions
    )


def _injection(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.injection import InjectionDetector

    detector = InjectionDetector()
    return lambda text, context: detector.scan(text)


def _deny_list(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.content import DenyList

    try:
        deny = DenyList(spec.words, spec.patterns, case_sensitive=spec.case_sensitive)
    except InvalidField as error:  # its param is the entry's path: `patterns[1]`, `words[0]`
        raise CheckUnavailable(error.param, error.problem) from None
    return lambda text, context: deny.scan(text)


def _max_input_tokens(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.content import MaxInputTokens

    check = MaxInputTokens(spec.max_tokens)
    return lambda text, context: check.inspect(context, text)


def _required_metadata(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.content import RequiredMetadata

    check = RequiredMetadata(spec.keys)
    return lambda text, context: check.inspect(context, text)


def _allowed_models(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.content import AllowedModels

    check = AllowedModels(spec.models)
    return lambda text, context: check.inspect(context, text)


def _json_schema(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.content import JsonSchemaCheck

    check = JsonSchemaCheck()
    return lambda text, context: check.inspect(context, text)


def _custom(spec: GuardrailSpec) -> Check:
    from gateway.guardrails.content import CustomCheck

    try:
        check = CustomCheck(spec.callable or "")
    except ValueError as error:
        raise CheckUnavailable("callable", str(error)) from None
    return check.scan


def _moderation(spec: GuardrailSpec) -> Check:
    """Moderation calls a model: it runs as a coroutine (`gateway.guardrails.moderation`), so
    this synchronous check is never called; calling it is a failure of the check."""

    def not_here(text: str, context: CheckContext) -> CheckResult:
        raise RuntimeError("a moderation guardrail is not a synchronous check")

    return not_here


_BUILDERS: Final[dict[str, Callable[[GuardrailSpec], Check]]] = {
    "pii": _pii,
    "prompt_injection": _injection,
    "deny_list": _deny_list,
    "max_input_tokens": _max_input_tokens,
    "required_metadata": _required_metadata,
    "allowed_models": _allowed_models,
    "json_schema": _json_schema,
    "custom": _custom,
    "moderation": _moderation,
}
