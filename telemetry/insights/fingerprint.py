"""A message's fingerprint: the message with what varies between occurrences taken out, so
that "Rate limit reached for org-abc123 on tokens: Limit 30000, Used 29876" and the same error a
minute later fall into one group."""

from __future__ import annotations

import hashlib
import re
from typing import Final

MAX_TEMPLATE: Final = 300

_QUOTED: Final = re.compile(
    r"'[^']*'|\"[^\"]*\"|`[^`]*`|\u2018[^\u2019]*\u2019|\u201c[^\u201d]*\u201d"
)
_URL: Final = re.compile(r"\bhttps?://\S+")
_EMAIL: Final = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_UUID: Final = re.compile(
    r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
)
_HEX: Final = re.compile(r"\b(?:0x)?[0-9a-fA-F]{8,}\b")
_PREFIXED_ID: Final = re.compile(r"\b[A-Za-z]{2,12}[-_][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\b")
_NUMBER: Final = re.compile(r"[-+]?\d+(?:[.,:]\d+)*")
_SPACE: Final = re.compile(r"\s+")


def message_template(message: str | None) -> str:
    """The message with quoted text, URLs, e-mail addresses, ids and numbers replaced by
    placeholders, spaces folded, cut to `MAX_TEMPLATE` characters."""
    if not message:
        return ""
    text = _QUOTED.sub("<str>", message)
    text = _URL.sub("<url>", text)
    text = _EMAIL.sub("<email>", text)
    text = _UUID.sub("<id>", text)
    text = _HEX.sub("<id>", text)
    text = _PREFIXED_ID.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()[:MAX_TEMPLATE]


def fingerprint(*parts: str) -> str:
    """A short, stable hash of the parts."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]
