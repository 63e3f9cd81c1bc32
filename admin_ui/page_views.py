"""Keys and workspaces as the console's templates show them: plain values, already written out
(times in UTC with their ISO form for the browser, money with its unit, limits with theirs).
Never a key's hash or plaintext: a `KeyInfo` holds neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection

from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from gateway.keys.limits import BudgetLimit, WorkspaceLimits
from gateway.keys.store import KeyCounts, KeyInfo, Workspace

AnyConnection = ASGIConnection[Any, Any, Any, Any]

STATUS_TONES = {"active": "ok", "expired": "warning", "revoked": "neutral"}
"""The console's badge colour for each state of a key."""


@dataclass(frozen=True, slots=True)
class TimeView:
    iso: str
    """ISO 8601 in UTC, for `<time datetime>`."""
    text: str
    """`2026-12-01 14:05 UTC`."""


@dataclass(frozen=True, slots=True)
class WorkspaceLabel:
    workspace_id: str
    slug: str
    name: str


def time_view(value: datetime | None) -> TimeView | None:
    if value is None:
        return None
    iso = iso_time(value)
    return TimeView(iso=iso, text=f"{iso[:10]} {iso[11:16]} UTC")


def served_models(connection: AnyConnection) -> list[str]:
    """The public model names of the running config, in its order."""
    config = gateway_of(connection).config
    return [] if config is None else config.model_names()


def guardrail_choices(connection: AnyConnection) -> list[tuple[str, str, str]]:
    """The running config's guardrails as checkbox choices: (name, name, what it does)."""
    config = gateway_of(connection).config
    if config is None:
        return []
    return [
        (name, name, f"{spec.kind}, {spec.direction}, {spec.action}")
        for name, spec in config.guardrails.definitions.items()
    ]


def budget_timezone(connection: AnyConnection) -> str:
    """Where calendar budget windows begin (`budgets.timezone` of the running config)."""
    config = gateway_of(connection).config
    return "UTC" if config is None else config.budgets.timezone


def workspace_labels(workspaces: Iterable[Workspace]) -> dict[str, WorkspaceLabel]:
    return {
        w.workspace_id: WorkspaceLabel(workspace_id=w.workspace_id, slug=w.slug, name=w.name)
        for w in workspaces
    }


def workspace_choices(workspaces: Iterable[Workspace]) -> list[tuple[str, str]]:
    """(slug, label) pairs for a workspace select."""
    return [(w.slug, w.name if w.name == w.slug else f"{w.name} ({w.slug})") for w in workspaces]


def limit_texts(
    rpm_limit: int | None, tpm_limit: int | None, max_parallel: int | None
) -> list[str]:
    texts = []
    if rpm_limit is not None:
        texts.append(f"{rpm_limit:,} requests/min")
    if tpm_limit is not None:
        texts.append(f"{tpm_limit:,} tokens/min")
    if max_parallel is not None:
        texts.append(f"{max_parallel:,} parallel")
    return texts


def budget_texts(budgets: Iterable[BudgetLimit]) -> list[str]:
    return [budget.describe() for budget in budgets]


def key_row(
    key: KeyInfo, workspaces: Mapping[str, WorkspaceLabel], now: datetime
) -> dict[str, Any]:
    label = workspaces.get(key.workspace_id)
    return {
        "id": key.key_id,
        "name": key.name,
        "prefix": key.display_prefix,
        "workspace_id": key.workspace_id,
        "workspace": label.slug if label else key.workspace_id,
        "workspace_name": label.name if label else "",
        "role": key.role,
        "status": key.status(now),
        "tone": STATUS_TONES[key.status(now)],
        "models": None if key.allowed_models is None else list(key.allowed_models),
        "limits": limit_texts(key.rpm_limit, key.tpm_limit, key.max_parallel),
        "budgets": budget_texts(key.budgets),
        "guardrails": list(key.guardrails),
        "tags": list(key.default_tags),
        "metadata": key.metadata,
        "created": time_view(key.created_at),
        "expires": time_view(key.expires_at),
        "revoked": time_view(key.revoked_at),
    }


def workspace_row(workspace: Workspace, counts: KeyCounts | None) -> dict[str, Any]:
    limits: WorkspaceLimits = workspace.limits
    return {
        "id": workspace.workspace_id,
        "slug": workspace.slug,
        "name": workspace.name,
        "limits": limit_texts(limits.rpm_limit, limits.tpm_limit, limits.max_parallel),
        "budgets": budget_texts(limits.budgets),
        "guardrails": list(limits.guardrails),
        "created": time_view(workspace.created_at),
        "key_counts": counts or KeyCounts(),
    }
