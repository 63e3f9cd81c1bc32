"""Resident memory of a process and all of its descendants, read from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class MemoryUsage:
    processes: int
    rss_bytes: int
    pss_bytes: int
    """Proportional set size: shared pages of forked workers are counted once in total."""

    @property
    def rss_mib(self) -> float:
        return self.rss_bytes / 2**20

    @property
    def pss_mib(self) -> float:
        return self.pss_bytes / 2**20


def parse_stat_parent(stat_line: str) -> int:
    """The parent pid from a /proc/<pid>/stat line (the command name may hold spaces and ')')."""
    after_name = stat_line[stat_line.rindex(")") + 2 :]
    fields = after_name.split()
    return int(fields[1])


def parse_kib_field(text: str, name: str) -> int:
    """A `Name:   1234 kB` field of /proc status-like text, in bytes (0 when absent)."""
    prefix = f"{name}:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix) :].split()[0]) * 1024
    return 0


def descendants(root: int) -> list[int]:
    """`root` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = parse_stat_parent((entry / "stat").read_text())
        except (OSError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def parse_stat_cpu_ticks(stat_line: str) -> int:
    """utime + stime, in clock ticks, from a /proc/<pid>/stat line."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by `root` and its live descendants."""
    ticks = 0
    for pid in descendants(root):
        try:
            ticks += parse_stat_cpu_ticks((PROC / str(pid) / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_memory(root: int) -> MemoryUsage:
    rss = pss = count = 0
    for pid in descendants(root):
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        count += 1
        rss += parse_kib_field(status, "VmRSS")
        try:
            pss += parse_kib_field((PROC / str(pid) / "smaps_rollup").read_text(), "Pss")
        except OSError:
            pss += parse_kib_field(status, "VmRSS")
    return MemoryUsage(processes=count, rss_bytes=rss, pss_bytes=pss)
