"""Channel secrets encrypted at rest with a key derived from `STEERWAY_MASTER_KEY`.

A sealed value is `sealed:v1:` and a Fernet token (AES-128-CBC with an HMAC-SHA256 tag), so it
cannot be read or altered without the key. The Fernet key is derived with HKDF-SHA256 under its
own `info` label, so the master key itself never encrypts anything and a later use of the same
master key for another purpose gets an unrelated key. Changing the master key makes sealed
values unreadable: they must be sealed again (the error says so, without quoting the value).
"""

from __future__ import annotations

import base64
import functools
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"
MASTER_KEY_VARIABLE = "STEERWAY_MASTER_KEY"
_HKDF_INFO = b"steerway notification channel secrets v1"


class SealingError(Exception):
    """A secret could not be sealed or opened; the message never quotes the secret."""


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def seal(secret: str, *, master_key: str | None = None) -> str:
    return PREFIX + _fernet(_master_key(master_key)).encrypt(secret.encode()).decode("ascii")


def open(sealed: str, *, master_key: str | None = None) -> str:
    """The secret inside `sealed` (named after `seal`'s counterpart; this module reads no files)."""
    if not is_sealed(sealed):
        raise SealingError(f"not a sealed value (a sealed value starts with {PREFIX!r})")
    try:
        plain = _fernet(_master_key(master_key)).decrypt(sealed[len(PREFIX) :].encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise SealingError(
            f"a sealed secret cannot be opened with this {MASTER_KEY_VARIABLE} "
            "(sealed under another master key, or altered); seal it again"
        ) from None
    return plain.decode()


def _master_key(given: str | None) -> str:
    key = given if given is not None else os.environ.get(MASTER_KEY_VARIABLE, "")
    if not key:
        raise SealingError(f"sealed channel secrets need {MASTER_KEY_VARIABLE} to be set")
    return key


@functools.lru_cache(maxsize=4)
def _fernet(master_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        master_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))
