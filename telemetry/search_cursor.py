"""The opaque cursor of a paged list: where the last page ended, and which query it belongs to.

A cursor holds the sort, the last row's sort value and id, the moment a relative time range
(`last=15m`) was measured from (so every page of one listing reads the same window), and a
digest of the list and its filters. It is URL-safe base64 text with a checksum: a cursor that
was changed, cut short or made for another query is refused, never half read. It is not a
secret and grants nothing: every page is still read within the reader's workspace.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

VERSION = 1
MAX_CURSOR_LENGTH = 512
_CHECKSUM_BYTES = 8


class InvalidCursor(ValueError):
    """A cursor that cannot be read, or that belongs to another query; the message says which."""


def digest_of(*parts: Any) -> str:
    """A short fingerprint of a query: the list, the sort and the filters (their `repr`)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class _Payload(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    sort: str
    value: str | float | None
    id: str
    as_of_us: int | None
    digest: str


@dataclass(frozen=True, slots=True)
class Cursor:
    sort: str
    value: str | float | None
    """The last row's sort value: its time (ISO 8601), duration (ms) or cost (USD, as text)."""
    id: str
    """The last row's id: rows with the same sort value are ordered by it."""
    as_of: datetime | None
    digest: str

    def encode(self) -> str:
        as_of_us = None
        if self.as_of is not None:
            as_of_us = round(self.as_of.timestamp() * 1_000_000)
        payload = msgspec.json.encode(
            _Payload(VERSION, self.sort, self.value, self.id, as_of_us, self.digest)
        )
        checksum = hashlib.sha256(payload).digest()[:_CHECKSUM_BYTES]
        return base64.urlsafe_b64encode(payload + checksum).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not text or len(text) > MAX_CURSOR_LENGTH:
            raise InvalidCursor("not a cursor this API gave out")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor("not a cursor this API gave out") from None
        payload, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
        if len(raw) <= _CHECKSUM_BYTES or (
            hashlib.sha256(payload).digest()[:_CHECKSUM_BYTES] != checksum
        ):
            raise InvalidCursor("the cursor was changed or cut short")
        try:
            decoded = msgspec.json.decode(payload, type=_Payload)
        except msgspec.DecodeError:
            raise InvalidCursor("not a cursor this API gave out") from None
        if decoded.version != VERSION:
            raise InvalidCursor("the cursor is from another version of the gateway")
        as_of = None
        if decoded.as_of_us is not None:
            try:
                as_of = datetime.fromtimestamp(decoded.as_of_us / 1_000_000, UTC)
            except (OverflowError, OSError, ValueError):
                raise InvalidCursor("not a cursor this API gave out") from None
        return cls(decoded.sort, decoded.value, decoded.id, as_of, decoded.digest)
