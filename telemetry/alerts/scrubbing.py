"""Keeping a channel's secrets out of what a delivery reports: errors, logs, delivery records.

A receiver's error may quote what it was sent or where (an HTTP library may name the URL), so
every resolved secret is masked in any text a delivery produces; so are its URL-encoded form and,
for a secret URL such as a Slack incoming webhook, its path, query and password, which carry the
token. Values shorter than `MIN_LENGTH` are left alone: masking `on` everywhere would garble
messages without protecting anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

MASK = "***"
MIN_LENGTH = 4


class Scrubber:
    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str]) -> None:
        values: set[str] = set()
        for secret in secrets:
            values.update(_forms(secret))
        known = sorted((value for value in values if len(value) >= MIN_LENGTH), key=len)
        literals = [re.escape(value) for value in reversed(known)]
        self._pattern = re.compile("|".join(literals)) if literals else None

    def __call__(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(MASK, text)


def _forms(secret: str) -> list[str]:
    forms = [secret, quote(secret, safe=""), quote(secret)]
    if "://" in secret:
        parts = urlsplit(secret)
        forms += [parts.path.rstrip("/"), parts.query, parts.password or ""]
        forms += [segment for segment in parts.path.split("/") if len(segment) >= 8]
    return [form for form in forms if form and form != "/"]
