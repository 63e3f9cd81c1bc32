"""Keeping a provider's configured secrets out of what the gateway says about it.

A provider's error can quote what it was sent: its API key, any configured header, credentials
from the base URL (which the HTTP client sends as a Basic `Authorization` header). Every such
value is replaced by `***` in upstream messages before they reach a client, a log, a span or
the database, and so is anything shaped like a well-known credential. Values shorter than
`MIN_SECRET_LENGTH` are left alone: replacing `on` or `1` everywhere would garble messages
without protecting anything.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from yarl import URL

MIN_SECRET_LENGTH = 6
MASK = "***"

_CREDENTIAL_SHAPES = (
    r"sk-[A-Za-z0-9_\-*]{6,}",
    r"sk-ant-[A-Za-z0-9_\-*]{6,}",
    r"AIza[0-9A-Za-z_\-]{20,}",
    r"Bearer\s+\S+",
    r"Basic\s+[A-Za-z0-9+/=]{6,}",
)


class SecretScrubber:
    """Replaces known secret values and credential-shaped text with `***`."""

    __slots__ = ("_pattern",)

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        known = {value for value in values if value and len(value) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is replaced whole.
        literals = [re.escape(value) for value in sorted(known, key=len, reverse=True)]
        self._pattern = re.compile("|".join([*literals, *_CREDENTIAL_SHAPES]))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text)


def configured_secrets(
    api_key: str | None, headers: Mapping[str, str], base_url: str
) -> list[str | None]:
    """The values of a provider's configuration that must never be shown: the API key, every
    header value (and the words after the first: `Bearer <token>` may be echoed as the token
    alone), and the base URL's password, query values and the Basic credentials made of its
    user info."""
    values: list[str | None] = [api_key]
    for value in headers.values():
        values += [value, *value.split()[1:]]
    url = URL(base_url)
    if url.password:
        values += [url.password, url.raw_password]
        credentials = f"{url.user or ''}:{url.password}"
        values.append(base64.b64encode(credentials.encode()).decode())
    values += url.query.values()
    return values + [quote(value, safe="") for value in values if value]


def scrubber_for(
    *, api_key: str | None, headers: Mapping[str, str], base_url: str
) -> SecretScrubber:
    return SecretScrubber(configured_secrets(api_key, headers, base_url))
