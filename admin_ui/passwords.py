"""Console passwords: Argon2id hashes with OWASP's recommended parameters (19 MiB of memory,
two passes, one lane).

The gateway hashes on the same CPUs that proxy requests, so the cost is the OWASP configuration
rather than argon2-cffi's default (RFC 9106's low-memory profile, 64 MiB and three passes over
four lanes), which measured seven times slower on a 2-vCPU machine under load (0.69 s against
0.10 s a verification). Hashes made with other parameters are re-made at the next sign-in
(`needs_rehash`), so the parameters can be raised later without anyone noticing.

Hashing runs in a thread (the library releases the GIL) and at most `MAX_CONCURRENT_HASHES` at a
time per process: a burst of sign-ins waits its turn instead of stalling the event loop. A sign-in for an
account that does not exist (or has no password) is checked against a dummy hash, so it takes as
long as a real one and its timing does not tell whether the account exists.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from functools import cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.keys.limits import InvalidField

MIN_PASSWORD_LENGTH: Final = 10
MAX_PASSWORD_LENGTH: Final = 1024
MAX_CONCURRENT_HASHES: Final = 2

_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def check_password(password: object, path: str = "password", email: str | None = None) -> str:
    """The password if it may be used, else `InvalidField` saying why."""
    if not isinstance(password, str):
        raise InvalidField(path, "expected a string")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidField(path, f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidField(path, f"at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise InvalidField(path, "must not be only spaces")
    if "\x00" in password:
        raise InvalidField(path, "must not contain NUL characters")
    if email is not None and password.strip().lower() == email.strip().lower():
        raise InvalidField(path, "must not be the email address")
    return password


def hash_password(password: str) -> str:
    """An Argon2id PHC string; blocking (see `hash_password_async`)."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash, a dummy one is checked so the
    answer (always False) takes as long. Blocking."""
    target = stored if stored else _dummy_hash()
    try:
        matched = _hasher.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return bool(matched) and bool(stored)


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


async def hash_password_async(password: str) -> str:
    async with _hash_slot():
        return await asyncio.to_thread(hash_password, password)


async def verify_password_async(stored: str | None, password: str) -> bool:
    async with _hash_slot():
        return await asyncio.to_thread(verify_password, stored, password)


def _hash_slot() -> asyncio.Semaphore:
    """The running loop's semaphore (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
    return slots


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))
