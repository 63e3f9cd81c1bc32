"""The first start of a fresh install: `steerway serve` (two workers, SQLite and Postgres) prints
one line with a one-time link, and the link creates the first owner once."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from admin_ui.console_auth import SESSION_COOKIE
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config, mock_provider

__all__ = ["mock_provider"]

LINK = re.compile(
    r"^Open (http://127\.0\.0\.1:\d+/admin/setup\?token=([A-Za-z0-9_-]{43})) to create the first "
    r"owner \(the link works once, within 24 hours\)\.$"
)


def startup_lines(gateway: GatewayProcess) -> list[str]:
    """What `steerway serve` printed before it began listening."""
    assert gateway.process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Steerway listening"):
        line = gateway.process.stdout.readline().decode()
        assert line, f"the output ended early: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def test_a_fresh_install_prints_one_link_that_works_once(
    migrated_database_url: str, mock_provider: MockProcess, tmp_path: Path
) -> None:
    database = Database(migrated_database_url)
    gateway = GatewayProcess(
        database, mock_config(mock_provider), tmp_path, master_key="sk-master-first", workers=2
    )
    try:
        lines = startup_lines(gateway)
        links = [LINK.match(line) for line in lines if "/admin/setup" in line]
        assert len(links) == 1 and links[0] is not None, lines
        url, token = links[0].group(1), links[0].group(2)
        assert url.startswith(gateway.url)
        stored = database.rows("SELECT token_hash, purpose, used_at FROM signin_links")
        assert len(stored) == 1 and stored[0]["purpose"] == "first_owner"
        assert stored[0]["token_hash"] != token and token not in str(stored)

        form = httpx.get(url)
        assert form.status_code == 200
        assert f'<input type="hidden" name="token" value="{token}">' in form.text
        fields = {
            "token": token,
            "email": "owner@example.com",
            "name": "The Owner",
            "password": "the owner's password",
            "password_confirm": "the owner's password",
        }
        made = httpx.post(f"{gateway.url}/admin/setup", data=fields)
        assert (made.status_code, made.headers["location"]) == (303, "/admin/")
        cookies = {SESSION_COOKIE: made.cookies[SESSION_COOKIE]}
        for _ in range(4):  # whichever worker answers knows the session
            me = httpx.get(f"{gateway.url}/admin/api/session", cookies=cookies).json()
            assert (me["name"], me["operator"]) == ("owner@example.com", True)

        again = httpx.post(f"{gateway.url}/admin/setup", data={**fields, "email": "b@example.com"})
        assert again.status_code == 410
        assert httpx.get(url).status_code == 410
        (used,) = database.rows("SELECT used_at FROM signin_links")
        assert used["used_at"] is not None
        owners = database.rows("SELECT email, is_operator FROM users")
        assert [(row["email"], bool(row["is_operator"])) for row in owners] == [
            ("owner@example.com", True)
        ]
    finally:
        rest = gateway.stop()
    assert token not in rest  # shown in that one line only
