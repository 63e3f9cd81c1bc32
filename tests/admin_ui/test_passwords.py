"""Console passwords: Argon2id hashes, checked in constant behaviour, re-made when the
parameters change."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher

from admin_ui import passwords
from admin_ui.passwords import (
    check_password,
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)
from gateway.keys.limits import InvalidField


def test_a_hash_is_argon2id_salted_and_verifies_only_its_password() -> None:
    first = hash_password("a long enough password")
    second = hash_password("a long enough password")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second  # a salt of its own
    assert "a long enough password" not in first
    assert verify_password(first, "a long enough password")
    assert verify_password(second, "a long enough password")
    assert not verify_password(first, "a long enough passworD")
    assert not verify_password(first, "")
    assert not needs_rehash(first)


def test_no_hash_and_broken_hashes_never_verify() -> None:
    assert not verify_password(None, "anything at all")
    assert not verify_password("", "anything at all")
    assert not verify_password("$argon2id$not-a-hash", "anything at all")
    assert not verify_password("plain text", "plain text")
    assert needs_rehash("$argon2id$not-a-hash")


def test_an_unknown_account_is_checked_against_a_dummy_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a stored hash the work is the same: one Argon2 verification of a real hash."""
    checked: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checked.append(str(hash))
            return super().verify(hash, password)

    used = passwords._hasher
    counting = Counting(used.time_cost, used.memory_cost, used.parallelism)
    monkeypatch.setattr(passwords, "_hasher", counting)
    assert not verify_password(None, "guess")
    assert not verify_password(hash_password("the real password"), "guess")
    assert len(checked) == 2
    dummy, real = checked
    assert dummy.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert dummy.split("$")[3] == real.split("$")[3]  # the same cost parameters


def test_hashes_made_with_other_parameters_are_rehashed() -> None:
    for other in (PasswordHasher(), PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)):
        made = other.hash("old parameters!")
        assert verify_password(made, "old parameters!")
        assert needs_rehash(made)


def test_the_async_forms_agree_with_the_blocking_ones() -> None:
    async def run() -> tuple[bool, bool]:
        made = await hash_password_async("from a thread, please")
        return (
            await verify_password_async(made, "from a thread, please"),
            await verify_password_async(made, "not it at all"),
        )

    assert asyncio.run(run()) == (True, False)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10 characters"),
        (" " * 12, "must not be only spaces"),
        ("x" * 1025, "at most 1024 characters"),
        ("nul\x00inside-pw", "must not contain NUL characters"),
        ("Ada@Example.com", "must not be the email address"),
        (12345678901, "expected a string"),
    ],
)
def test_weak_or_odd_passwords_are_refused(password: object, problem: str) -> None:
    with pytest.raises(InvalidField) as refused:
        check_password(password, "password", "ada@example.com")
    assert refused.value.param == "password"
    assert refused.value.problem == problem


def test_a_good_password_is_kept_as_typed() -> None:
    assert check_password("  spaces kept  ", "password") == "  spaces kept  "
