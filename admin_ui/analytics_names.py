"""How an analytics page names the values it groups by: keys by name, workspaces by slug, the
rest as stored. Only what the viewer may see is looked up (the keys of their workspaces), read
once per page whatever the number of panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from admin_ui.formatting import short_id
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.keys.store import KeyInfo, KeyStore, Workspace
from telemetry.analytics import OTHER

NONE_LABEL: Final = "(none)"
"""A group whose value is empty: requests without a key, attempts without an error type."""
DIMENSION_TITLES: Final = {
    "workspace": "Workspace",
    "key": "Key",
    "source": "Source",
    "provider": "Provider",
    "model": "Model",
    "served_model": "Served model",
    "deployment": "Deployment",
    "status": "Status",
    "error_type": "Error type",
    "cache_hit": "Cache",
    "tag": "Tag",
    "end_user": "End user",
    "rule": "Rule",
    "guardrail": "Guardrail",
    "action": "Action",
    "entity_type": "Entity type",
}


@dataclass(frozen=True)
class Names:
    """Labels of workspaces and keys the viewer may see; `several_workspaces`: keys carry their
    workspace's slug, since two workspaces may both have a `web-app` key."""

    workspaces: Mapping[str, Workspace] = field(default_factory=dict)
    keys: Mapping[str, KeyInfo] = field(default_factory=dict)
    several_workspaces: bool = False

    def label(self, dimension: str, value: str) -> str:
        if value == OTHER:
            return OTHER
        if dimension == "key":
            return self.key_label(value)
        if dimension == "workspace":
            found = self.workspaces.get(value)
            return found.slug if found is not None else short_id(value)
        if dimension == "cache_hit":
            return "cache hit" if value == "true" else "no cache hit"
        return value if value != "" else NONE_LABEL

    def key_label(self, key_id: str) -> str:
        if key_id == "":
            return "(no key)"
        if key_id == MASTER_KEY_INFO.key_id:
            return MASTER_KEY_INFO.name
        key = self.keys.get(key_id)
        if key is None:
            return f"key …{key_id[-8:]}"
        if self.several_workspaces:
            workspace = self.workspaces.get(key.workspace_id)
            if workspace is not None:
                return f"{key.name} · {workspace.slug}"
        return key.name

    def group_label(self, group: Mapping[str, str], order: Sequence[str]) -> str:
        """A group of one or two dimensions as one name: `gpt-4o · web-app`."""
        if not order:
            return "All"
        return " · ".join(self.label(name, group.get(name, "")) for name in order)

    def workspace_slug(self, workspace_id: str) -> str:
        found = self.workspaces.get(workspace_id)
        return found.slug if found is not None else workspace_id


async def read_names(store: KeyStore, visible: Sequence[Workspace], scope: str | None) -> Names:
    """The names of the `visible` workspaces and of their keys (`scope`: the one workspace the
    page shows, or None for all of them)."""
    keys = await store.list(workspace_id=scope, include_revoked=True)
    visible_ids = {workspace.workspace_id for workspace in visible}
    return Names(
        workspaces={w.workspace_id: w for w in visible},
        keys={key.key_id: key for key in keys if key.workspace_id in visible_ids},
        several_workspaces=scope is None and len(visible) > 1,
    )
