"""Masking what a check found, and putting it back into the answer.

A `Masker` serves one request. `mask` replaces each finding's span with a token:

- style `type`: `<EMAIL_ADDRESS>`, the kind alone; it cannot be undone.
- style `hash`: `<EMAIL_ADDRESS_1a2b3c4d>`, the kind and the first 8 hex digits of an
  HMAC-SHA256 of the value under the gateway's secret. The same value gives the same token, so
  the model can still tell two people's addresses apart; without the secret the value cannot be
  guessed from the token. The masker remembers each token's value, in memory only, so `unmask`
  can put the values back into the model's answer.

`held_back` serves streamed answers: a token can arrive split over two chunks, so the caller
holds back the end of a chunk that could be the beginning of one until the next chunk comes.

The replacement is done by presidio-anonymizer's `AnonymizerEngine` with an operator of ours. The
engine is built once per process, at the first masking (importing presidio takes over a second);
a masking then costs about 25 µs.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from gateway.guardrails.model import MASK_STYLES, Finding, TextCheck
from gateway.guardrails.pii import resolve_overlaps

if TYPE_CHECKING:
    from presidio_anonymizer import AnonymizerEngine

_OPERATOR_NAME: Final = "gateway_token"
_DIGEST_CHARS: Final = 8
_HASH_TOKEN: Final = re.compile(r"<[^<>\s]+_[0-9a-f]{8,64}>")


class Masker:
    """Masks the findings of one request's texts and unmasks the answer (see the module
    docstring). Raises ValueError for an unknown style."""

    def __init__(self, style: str = "type", secret: bytes = b"") -> None:
        if style not in MASK_STYLES:
            raise ValueError(f"unknown mask style {style!r}; styles are {', '.join(MASK_STYLES)}")
        self.style: Final = style
        self._secret = secret
        self._originals: dict[str, str] = {}
        self._issued: set[str] = set()
        self._longest = 0
        self._operators: dict[str, Any] | None = None

    def mask(self, text: str, findings: Sequence[Finding]) -> str:
        """`text` with each finding's span replaced by its token; of overlapping findings the
        one `resolve_overlaps` keeps is masked. Findings about the whole text (an empty span) are
        skipped. Raises ValueError when a span lies outside the text."""
        spans = [finding for finding in resolve_overlaps(findings) if finding.start < finding.end]
        if not spans:
            return text
        if spans[0].start < 0 or spans[-1].end > len(text):
            raise ValueError("a finding's span lies outside the text")
        engine, result = _anonymizer()
        results = [result(f.kind, f.start, f.end, f.score) for f in spans]
        masked = engine.anonymize(
            text, results, operators=self._operator_config(), merge_entities_with_spaces=False
        )
        return str(masked.text)

    def unmask(self, text: str) -> str:
        """`text` with every hash token this masker issued replaced by its value. Type tokens,
        and tokens this masker did not issue, stay as they are."""
        if not self._originals or "<" not in text:
            return text
        return _HASH_TOKEN.sub(self._original, text)

    def held_back(self, text: str) -> int:
        """How many characters at the end of `text` could be the beginning of a token this
        masker issued (`…<EMAIL_ADD`): a streaming caller holds them until the next chunk. A
        complete token is not held back; 0 when nothing could be."""
        at = text.find("<", max(0, len(text) - self._longest + 1))
        while at != -1:
            tail = text[at:]
            if any(len(token) > len(tail) and token.startswith(tail) for token in self._issued):
                return len(text) - at
            at = text.find("<", at + 1)
        return 0

    def _original(self, match: re.Match[str]) -> str:
        token = match.group()
        return self._originals.get(token, token)

    def _token(self, kind: str, value: str) -> str:
        if self.style == "type":
            token = f"<{kind}>"
        else:
            digest = hmac.digest(self._secret, value.encode(), "sha256").hex()
            size = _DIGEST_CHARS
            token = f"<{kind}_{digest[:size]}>"
            while self._originals.get(token, value) != value:
                size += 4  # two values share the first digits: lengthen the later one's token
                token = f"<{kind}_{digest[:size]}>"
            self._originals[token] = value
        if token not in self._issued:
            self._issued.add(token)
            self._longest = max(self._longest, len(token))
        return token

    def _operator_config(self) -> dict[str, Any]:
        if self._operators is None:
            from presidio_anonymizer.entities import OperatorConfig

            self._operators = {"DEFAULT": OperatorConfig(_OPERATOR_NAME, {"issue": self._token})}
        return self._operators


def redact(text: str, scanner: TextCheck) -> str:
    """`text` with what `scanner` finds replaced by type tokens (`<EMAIL_ADDRESS>`): a prompt
    that can be stored without its PII."""
    findings = scanner.scan(text).findings
    return Masker("type").mask(text, findings) if findings else text


@functools.cache
def _anonymizer() -> tuple[AnonymizerEngine, Callable[..., Any]]:
    """presidio's anonymizer with the token operator, and its result type."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import InvalidParamError, RecognizerResult
    from presidio_anonymizer.operators import Operator, OperatorType

    class TokenOperator(Operator):
        """Replaces a span with the token its masker issues for the span's kind and value."""

        def operate(self, text: str, params: dict[str, Any] | None = None) -> str:
            assert params is not None
            issue: Callable[[str, str], str] = params["issue"]
            return issue(params["entity_type"], text)

        def validate(self, params: dict[str, Any] | None = None) -> None:
            if not callable((params or {}).get("issue")):
                raise InvalidParamError("the token operator needs its masker's issue function")

        def operator_name(self) -> str:
            return _OPERATOR_NAME

        def operator_type(self) -> OperatorType:
            return OperatorType.Anonymize

    engine = AnonymizerEngine()
    engine.add_anonymizer(TokenOperator)
    return engine, RecognizerResult
