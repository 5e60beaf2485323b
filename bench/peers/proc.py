"""CPU and memory of whole process trees, from /proc.

A coordinator is often more than one process (PostgreSQL forks a backend per connection,
and autovacuum workers come and go), so CPU is counted per tree: a process's own utime +
stime, plus cutime + cstime (what its children that already exited used), plus the same of
every live descendant. The difference between two snapshots is then exactly what the tree
used in between, even when children are born or exit in the window.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench._harness import CLK_TCK, rss_mib


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (index 0 = state), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def _children_by_parent() -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields is not None:
            out[int(fields[1])].append(int(entry))
    return out


def tree_pids(roots: Iterable[int]) -> list[int]:
    """The roots and every live descendant."""
    kids = _children_by_parent()
    seen: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(kids.get(pid, ()))
    return seen


def tree_cpu_seconds(roots: Sequence[int]) -> float:
    """CPU seconds of the trees under `roots`, including their children that already exited."""
    total = 0
    for pid in tree_pids(roots):
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def tree_rss_mib(root: int) -> float:
    """Resident memory of a process and its live descendants (MiB; shared pages counted in each)."""
    return sum(rss_mib(pid) for pid in tree_pids([root]))


class TreeCpu:
    """`with TreeCpu(pids) as m: ...; m.seconds`: CPU the trees used inside the block."""

    def __init__(self, roots: Sequence[int]) -> None:
        self.roots = list(roots)
        self.seconds = 0.0
        self._c0 = 0.0

    def __enter__(self) -> TreeCpu:
        self._c0 = tree_cpu_seconds(self.roots)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = tree_cpu_seconds(self.roots) - self._c0


def loadavg3() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
