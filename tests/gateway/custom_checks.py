"""Custom checks as an operator would write them, referenced by the guardrail tests as
`tests.gateway.custom_checks:<name>`."""

from __future__ import annotations

import re

from gateway.guardrails.model import CheckContext, CheckResult, Finding

_SHOUTED_WORD = re.compile(r"\b[A-Z]{3,}\b")


def no_shouting(text: str, context: CheckContext | None) -> CheckResult | None:
    """Every all-capitals word of three letters or more, unless the request's metadata says
    shouting is fine."""
    if context is not None and context.metadata.get("shouting") == "allowed":
        return None
    findings = tuple(
        Finding("SHOUTING", match.start(), match.end(), 0.9)
        for match in _SHOUTED_WORD.finditer(text)
    )
    if not findings:
        return None
    return CheckResult(findings, reason=f"{len(findings)} shouted words")


def quotes_text_in_error(text: str, context: CheckContext | None) -> CheckResult:
    raise ValueError(f"cannot handle {text!r}")


def answers_a_string(text: str, context: CheckContext | None) -> str:
    return text


def finds_past_the_end(text: str, context: CheckContext | None) -> CheckResult:
    return CheckResult((Finding("PAST_END", 0, len(text) + 1),))


class Holder:
    @staticmethod
    def nested(text: str, context: CheckContext | None) -> CheckResult | None:
        return CheckResult((Finding("NESTED", 0, len(text)),)) if text else None


NOT_CALLABLE = 42
