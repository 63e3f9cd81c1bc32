"""`console.allowed_origins`: only bare http(s) origins are taken; each other value is reported
with its path."""

from __future__ import annotations

from gateway.config.console import parse_console
from gateway.config.file import _Reader


def test_only_bare_origins_are_allowed() -> None:
    problems = _Reader()
    values = [
        "https://console.example.com",
        "http://127.0.0.1:8443",
        "https://host:99999",
        "https://host:port",
        "ftp://host",
        "https://host/path",
    ]
    config = parse_console({"allowed_origins": values}, "console", problems)
    assert config.allowed_origins == ("https://console.example.com", "http://127.0.0.1:8443")
    assert [problem.partition(":")[0] for problem in problems.problems] == [
        "console.allowed_origins[2]",
        "console.allowed_origins[3]",
        "console.allowed_origins[4]",
        "console.allowed_origins[5]",
    ]
