"""The built-in dashboards, by the key a copy names them with (`copy_of`)."""

from __future__ import annotations

from collections.abc import Mapping

from admin_ui.dashboard_model import Dashboard


def builtin_dashboards() -> Mapping[str, Dashboard]:
    """Key (`overview`, `cost`, ...) to dashboard; empty until the built-in pages are defined."""
    return {}
