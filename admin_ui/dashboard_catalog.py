"""The built-in dashboards, by the key a copy names them with (`copy_of`): the last part of
their page's path (`overview`, `usage`, `cost`, `performance`, `safety`, `providers`)."""

from __future__ import annotations

from collections.abc import Mapping

from admin_ui.dashboard_model import Dashboard
from admin_ui.dashboards_builtin import BUILTIN


def builtin_dashboards() -> Mapping[str, Dashboard]:
    return BUILTIN
