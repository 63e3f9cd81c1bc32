"""The mock provider's `POST /v1/moderations`: OpenAI's moderation answer, scored from words.

Each input is scored by the words of `MODERATION_WORDS` it contains (whole words, any case): a
category's score is the highest of its words found, 0 when none is. `flagged` and the
`categories` booleans are true from 0.5. Two markers steer the answer itself, for tests of
timeouts and failures: `[[moderation-delay-ms:N]]` in any input makes the answer wait N
milliseconds, `[[moderation-error:S]]` makes it an error with status S.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from providers.mock.errors import MockRequestError

OPENAI_CATEGORIES: Final = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
MODERATION_WORDS: Final[dict[str, dict[str, float]]] = {
    "harassment": {"idiot": 0.81, "loser": 0.42},
    "harassment/threatening": {"threaten": 0.83},
    "hate": {"vermin": 0.88},
    "self-harm": {"overdose": 0.77},
    "sexual": {"explicit": 0.74},
    "violence": {"kill": 0.86, "punch": 0.55},
    "violence/graphic": {"gore": 0.91},
}
"""The words the mock knows, by category, with the score each gives."""
FLAG_AT: Final = 0.5
_WORD: Final = re.compile(r"[a-z]+(?:-[a-z]+)*")
_DELAY: Final = re.compile(r"\[\[moderation-delay-ms:(\d{1,6})\]\]")
_ERROR: Final = re.compile(r"\[\[moderation-error:([1-5]\d\d)\]\]")


class ModerationPlan(msgspec.Struct, frozen=True):
    body: bytes
    delay_ms: int = 0
    error_status: int | None = None


def score_text(text: str) -> dict[str, float]:
    """Every OpenAI category's score for one text."""
    words = set(_WORD.findall(text.lower()))
    scores = dict.fromkeys(OPENAI_CATEGORIES, 0.0)
    for category, table in MODERATION_WORDS.items():
        found = [score for word, score in table.items() if word in words]
        if found:
            scores[category] = max(found)
    return scores


def plan_moderation(body: dict[str, Any]) -> ModerationPlan:
    texts = _inputs(body.get("input"))
    model = body.get("model")
    model = model if isinstance(model, str) and model else "omni-moderation-latest"
    results = []
    for text in texts:
        scores = score_text(text)
        categories = {name: score >= FLAG_AT for name, score in scores.items()}
        results.append(
            {
                "flagged": any(categories.values()),
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": {name: ["text"] for name in scores},
            }
        )
    joined = "\n".join(texts)
    delay = _DELAY.search(joined)
    error = _ERROR.search(joined)
    answer = {"id": f"modr-mock-{len(joined)}", "model": model, "results": results}
    return ModerationPlan(
        body=msgspec.json.encode(answer),
        delay_ms=int(delay.group(1)) if delay else 0,
        error_status=int(error.group(1)) if error else None,
    )


def _inputs(value: Any) -> list[str]:
    """`input` as OpenAI takes it: a string, a list of strings (one result each), or a list of
    `text` and `image_url` parts (one result; images are not read)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise MockRequestError(
            "'input' must be a string or a non-empty array of strings or parts", param="input"
        )
    if all(isinstance(item, str) for item in value):
        return list(value)
    parts = []  # one multimodal input: its text parts are read together
    for index, item in enumerate(value):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            parts.append(str(item.get("text", "")))
        elif kind != "image_url":
            raise MockRequestError(f"'input[{index}]' is not a string or part", param="input")
    return ["\n".join(parts)]
