"""Read a board file the way an auditor would: read-only, from the stub's own tables.

- `open_ro(db)`: a read-only connection (safe next to a running stub, WAL).
- `dump(db)`: every row of every table, for "nothing changed" comparisons.
- `invariant_problems(db)`: what must hold on any board at any commit (empty list = fine).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from pm_protocol.literals import TASK_STATUSES


def open_ro(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=15)
    conn.row_factory = sqlite3.Row
    return conn


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """All rows of all tables, in a stable order."""
    conn = open_ro(db)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        for table in tables:
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
        return out
    finally:
        conn.close()


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = open_ro(db)
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def status_counts(db: Path) -> dict[str, int]:
    counts = dict.fromkeys(TASK_STATUSES, 0)
    for r in rows(db, "SELECT status, count(*) AS n FROM tasks GROUP BY status"):
        counts[r["status"]] = r["n"]
    return counts


def invariant_problems(db: Path) -> list[str]:
    """Board invariants; each broken one is a line naming the task or agent."""
    conn = open_ro(db)
    try:
        problems: list[str] = []
        tasks = [dict(r) for r in conn.execute("SELECT * FROM tasks")]
        agents = {r["agent_id"] for r in conn.execute("SELECT agent_id FROM agents")}
        by_id = {t["task_id"]: t for t in tasks}
        total = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        counted = Counter(t["status"] for t in tasks)
        if sum(counted.values()) != total or set(counted) - set(TASK_STATUSES):
            problems.append(f"status counts {dict(counted)} do not add up to {total} tasks")
        holders = Counter(t["holder"] for t in tasks if t["status"] == "in_progress")
        for agent, n in holders.items():
            if n > 1:
                problems.append(f"agent {agent!r} holds {n} tasks at once")
        for t in tasks:
            tid, status = t["task_id"], t["status"]
            lease = (t["holder"], t["lease_id"], t["lease_expires_at"])
            if status == "in_progress":
                if None in lease:
                    problems.append(f"task {tid!r} in progress with holder/lease {lease}")
                elif t["holder"] not in agents:
                    problems.append(f"task {tid!r} held by unregistered agent {t['holder']!r}")
            elif lease != (None, None, None):
                problems.append(f"task {tid!r} is {status} but has holder/lease {lease}")
            if status == "done":
                if t["completed_by"] is None or t["completed_at"] is None:
                    problems.append(f"task {tid!r} done without completed_by/completed_at")
                if t["progress"] != 100:
                    problems.append(f"task {tid!r} done with progress {t['progress']}")
            elif t["completed_by"] is not None:
                problems.append(f"task {tid!r} is {status} but completed_by={t['completed_by']!r}")
            if not 0 <= t["progress"] <= 100:
                problems.append(f"task {tid!r} progress {t['progress']} outside 0-100")
            deps = json.loads(t["dependencies"])
            pending = sum(1 for d in deps if d in by_id and by_id[d]["status"] != "done")
            if pending != t["pending_deps"]:
                problems.append(f"task {tid!r} pending_deps={t['pending_deps']} but {pending} deps not done")
            if status != "todo" and pending:
                problems.append(f"task {tid!r} was assigned ({status}) with {pending} dependencies not done")
        return problems
    finally:
        conn.close()
