"""CPU readings for the `ingest` scenario, from /proc: the Postgres processes serving the run and
the whole machine (which other people's work on a shared machine shows up in)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * _TICK_S


class ServerCpu:
    """CPU seconds used by the backends serving the database, summed per process so a backend
    that comes later counts from zero. The WAL writer, checkpointer and background writer are
    left out: they serve every database on the server, and on a shared machine other people's
    work would be counted. Nothing on SQLite, or when the server runs elsewhere."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._seen: dict[int, float] | None = None
        self.seconds = 0.0

    async def read(self) -> float:
        if self._engine.dialect.name != "postgresql":
            return 0.0
        async with self._engine.connect() as connection:
            found = await connection.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
            pids = [int(pid) for (pid,) in found]
        first = self._seen is None
        seen = self._seen = self._seen or {}
        for pid in pids:
            now = _process_cpu_s(pid)
            if now is None:
                continue
            if not first:
                self.seconds += now - seen.get(pid, 0.0)
            seen[pid] = now
        return self.seconds


@dataclass(frozen=True, slots=True)
class MachineCpu:
    """Busy and total CPU time of every core so far (/proc/stat, in ticks)."""

    busy: int
    total: int

    @classmethod
    def read(cls) -> MachineCpu:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return cls(0, 0)
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return cls(sum(fields) - idle, sum(fields))

    def busy_share_since(self, earlier: MachineCpu) -> float:
        """How busy the cores were between the two readings, 0..1 of all of them."""
        total = self.total - earlier.total
        return (self.busy - earlier.busy) / total if total > 0 else 0.0
