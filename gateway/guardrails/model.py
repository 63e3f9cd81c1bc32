"""What every guardrail shares: how one is configured, what a check finds, what it decides.

A guardrail is a named, configured check (`GuardrailSpec`) with an action. Its check reads a text
(`TextCheck.scan`) or the request as a whole (`RequestCheck.inspect`) and answers a
`CheckResult`: the findings (kind, character span, score) and an overall score. Findings carry
offsets, never the matched text, so a result can be recorded as it is. The guardrail turns the
result into a `Verdict` by comparing the score with its threshold.

A custom check registered in the config (`kind: custom`, `callable: "package.module:function"`)
is called as `function(text, context)` and answers the same `CheckResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import msgspec

from gateway.guardrails.moderation_model import ModerationSpec

KINDS: Final = (
    "pii",
    "prompt_injection",
    "deny_list",
    "max_input_tokens",
    "required_metadata",
    "allowed_models",
    "json_schema",
    "custom",
    "moderation",
)
ACTIONS: Final = ("block", "mask", "log")
DIRECTIONS: Final = ("input", "output", "both")
MASK_STYLES: Final = ("type", "hash")

TEXT_KINDS: Final = frozenset({"pii", "prompt_injection", "deny_list", "custom"})
"""Kinds whose check reads each text of the request or answer."""
MASKABLE_KINDS: Final = frozenset({"pii", "deny_list", "custom", "moderation"})
"""Kinds whose findings `mask` can replace (spans; for moderation, the flagged text)."""
REMOTE_KINDS: Final = frozenset({"moderation"})
"""Kinds whose check is a call to a model: run as a coroutine, never in the checks' thread."""
INPUT_ONLY_KINDS: Final = frozenset(
    {"max_input_tokens", "required_metadata", "allowed_models", "prompt_injection"}
)
OUTPUT_ONLY_KINDS: Final = frozenset({"json_schema"})

DEFAULT_PII_ENTITIES: Final = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "CRYPTO",
    "URL",
)


class Finding(msgspec.Struct, frozen=True, gc=False):
    """One thing a check found: its kind (an entity type such as `EMAIL_ADDRESS`, or a pattern
    family such as `role_override`), its span as character offsets into the checked text
    (0, 0 when the finding is about the text as a whole) and the check's confidence."""

    kind: str
    start: int = 0
    end: int = 0
    score: float = 1.0


class CheckResult(msgspec.Struct, frozen=True, gc=False):
    """What one check said about one text (or one request).

    `score` is the overall confidence that the text violates the check; when None it is the
    highest finding's score (0 without findings). `reason` explains the result in words and must
    never quote the text that was checked.
    """

    findings: tuple[Finding, ...] = ()
    score: float | None = None
    reason: str = ""

    @property
    def overall(self) -> float:
        if self.score is not None:
            return self.score
        return max((finding.score for finding in self.findings), default=0.0)


CLEAN: Final = CheckResult()


class CheckContext(msgspec.Struct, kw_only=True, gc=False):
    """What a request-level check (and a custom check) may read besides the text."""

    direction: str  # input | output
    model: str | None = None
    metadata: Mapping[str, Any] = msgspec.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    workspace_id: str | None = None
    key_name: str | None = None
    estimated_input_tokens: int = 0
    response_format: Mapping[str, Any] | None = None


class TextCheck(Protocol):
    """A check over one text (a message's content, an embedding input, an answer)."""

    def scan(self, text: str) -> CheckResult: ...


class RequestCheck(Protocol):
    """A check over the request as a whole (its model, metadata, size) or, for the output, the
    whole answer text together with the request (`json_schema`)."""

    def inspect(self, context: CheckContext, text: str | None = None) -> CheckResult: ...


class GuardrailSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One guardrail as the config declares it. Only the fields of its kind are read."""

    name: str
    kind: str
    action: str = "block"
    direction: str = "input"
    threshold: float = 0.5
    # pii
    entities: tuple[str, ...] = DEFAULT_PII_ENTITIES
    language: str = "en"
    ner_model: str | None = None
    """An installed spaCy model (such as `en_core_web_sm`) for names and places; without one the
    pattern recognizers run on a blank pipeline."""
    phone_regions: tuple[str, ...] | None = None
    """Regions whose national phone formats are recognised (international `+` numbers always
    are); None for the scanner's default."""
    mask_style: str = "type"
    unmask: bool = False
    # deny_list
    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    case_sensitive: bool = False
    # max_input_tokens
    max_tokens: int = 0
    # required_metadata
    keys: tuple[str, ...] = ()
    # allowed_models
    models: tuple[str, ...] = ()
    # custom
    callable: str | None = None
    # moderation
    moderation: ModerationSpec | None = None

    def applies_to(self, direction: str) -> bool:
        return self.direction == direction or self.direction == "both"


class Verdict(msgspec.Struct, kw_only=True, gc=False):
    """What one guardrail decided about one direction of one request."""

    guardrail: str
    kind: str
    direction: str
    action: str  # the configured action: block | mask | log
    triggered: bool
    score: float
    entities: dict[str, int] = msgspec.field(default_factory=dict)
    """How many findings of each kind (entity types, pattern families); never the values."""
    latency_us: float = 0.0
    reason: str = ""
    failed: bool = False
    """The check itself failed (a custom check raised): nothing is known about the text."""

    @property
    def outcome(self) -> str:
        """`pass` when nothing was found; else what was done: `blocked`, `masked`, `flagged`;
        `error` when the check failed."""
        if self.failed:
            return "error"
        if not self.triggered:
            return "pass"
        return {"block": "blocked", "mask": "masked"}.get(self.action, "flagged")


def count_kinds(findings: tuple[Finding, ...] | list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return counts
