"""What demo-data reads from and writes to the database besides the history's rows: whether
it holds real traffic, the demo workspaces and keys an earlier run left, and the workspaces and
keys of this run."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.demo.cast import DEMO_MARKER, WORKSPACE_SLUGS, Cast
from gateway.keys.limits import WorkspaceLimits
from telemetry.schema import api_keys, budget_spend, traces, workspaces


async def real_traffic(connection: AsyncConnection) -> tuple[str, datetime] | None:
    """A trace demo-data did not write (its id and start), if the database holds one."""
    if connection.dialect.name == "postgresql":
        marker = sa.text(f"(features ->> '{DEMO_MARKER}') IS NULL")
    else:
        marker = sa.text(f"json_extract(features, '$.{DEMO_MARKER}') IS NULL")
    query = sa.select(traces.c.trace_id, traces.c.started_at).where(marker).limit(1)
    found = (await connection.execute(query)).first()
    return None if found is None else (found.trace_id, found.started_at)


async def stored_demo_rows(connection: AsyncConnection) -> tuple[dict[str, str], dict[str, str]]:
    """Ids of demo workspaces and keys already stored (by slug, and by `slug/name`), and the
    slugs already taken by workspaces demo-data did not create."""
    rows = (await connection.execute(sa.select(workspaces))).all()
    known: dict[str, str] = {}
    taken: dict[str, str] = {}
    for row in rows:
        if isinstance(row.settings, dict) and row.settings.get(DEMO_MARKER) is True:
            known[row.slug] = row.workspace_id
        else:
            taken[row.slug] = row.workspace_id
    slug_of = {workspace_id: slug for slug, workspace_id in known.items()}
    keys = await connection.execute(
        sa.select(api_keys.c.key_id, api_keys.c.workspace_id, api_keys.c.name, api_keys.c.metadata)
    )
    for key in keys:
        slug = slug_of.get(key.workspace_id)
        if slug is not None and isinstance(key.metadata, dict) and key.metadata.get(DEMO_MARKER):
            known[f"{slug}/{key.name}"] = key.key_id
    return known, taken


def free_slugs(known: dict[str, str], taken: dict[str, str]) -> dict[str, str]:
    """A slug for each demo workspace whose own is taken by a workspace somebody else created:
    `acme-demo` (or `acme-demo-2`...), the one an earlier run chose when it is there."""
    renamed: dict[str, str] = {}
    for slug in WORKSPACE_SLUGS:
        if slug not in taken:
            continue
        candidate, number = f"{slug}-demo", 2
        while candidate in taken:
            candidate, number = f"{slug}-demo-{number}", number + 1
        renamed[slug] = candidate
    return renamed


async def store_cast(connection: AsyncConnection, cast: Cast, created_at: datetime) -> None:
    """Insert the workspaces and keys the database does not hold yet. Keys get a random hash of
    nothing anyone holds: no working key exists for them."""
    stored_workspaces = set(
        (await connection.execute(sa.select(workspaces.c.workspace_id))).scalars()
    )
    stored_keys = set((await connection.execute(sa.select(api_keys.c.key_id))).scalars())
    new_workspaces = [
        {
            "workspace_id": w.workspace_id,
            "name": w.name,
            "slug": w.slug,
            "settings": {
                **WorkspaceLimits(budgets=w.budgets, guardrails=w.guardrails).to_settings(),
                DEMO_MARKER: True,
            },
            "created_at": created_at,
        }
        for w in cast.workspaces
        if w.workspace_id not in stored_workspaces
    ]
    if new_workspaces:
        await connection.execute(workspaces.insert(), new_workspaces)
    new_keys = [
        {
            "key_id": k.key_id,
            "workspace_id": k.workspace.workspace_id,
            "name": k.name,
            "key_hash": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            "display_prefix": k.display_prefix,
            "role": "user",
            "metadata": {DEMO_MARKER: True},
            "created_at": created_at + timedelta(minutes=5),
            "revoked_at": None,
            "expires_at": None,
            "allowed_models": sa.null(),
            "rpm_limit": k.rpm_limit,
            "tpm_limit": None,
            "max_parallel": None,
            "budgets": [b.to_json() for b in k.budgets],
            "default_tags": list(k.tags),
            "guardrails": list(k.guardrails),
        }
        for k in cast.keys
        if k.key_id not in stored_keys
    ]
    if new_keys:
        await connection.execute(api_keys.insert(), new_keys)


async def store_spend(
    connection: AsyncConnection,
    spend: list[tuple[tuple[str, str, str, int], str, int]],
    updated_at: datetime,
) -> None:
    """Add the history's budget spend to `budget_spend`, as the gateway's write-behind does, so
    a gateway started on the database sees the budgets as the history left them."""
    if not spend:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(budget_spend)
    upsert = statement.on_conflict_do_update(
        index_elements=["scope", "subject", "window", "window_start"],
        set_={
            "spent_micros": budget_spend.c.spent_micros + statement.excluded.spent_micros,
            "updated_at": statement.excluded.updated_at,
        },
    )
    rows = [
        {
            "scope": scope,
            "subject": subject,
            "window": window,
            "window_start": datetime.fromtimestamp(start, UTC),
            "workspace_id": workspace_id,
            "spent_micros": micros,
            "updated_at": updated_at,
        }
        for (scope, subject, window, start), workspace_id, micros in spend
    ]
    await connection.execute(upsert, rows)
