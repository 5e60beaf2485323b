"""The board's SQL: every statement the board runs, and no rule.

Reads return `sqlite3.Row` (rows.py turns them into wire models); writes take plain values.
Who may change what, and when, lives in lifecycle.py and board.py; the tables and their
indexes are in schema.py. Every method runs inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pm_protocol.limits import dumps

Row = sqlite3.Row

# The head of the offer order among ready tasks of one skill signature: one probe of the
# partial index `tasks_ready` (see schema.py).
READY_PROBE_SQL: Final = """
SELECT task_id, priority_rank, skill_count, created_seq FROM tasks INDEXED BY tasks_ready
WHERE skill_sig = ? AND status = 'todo' AND pending_deps = 0
ORDER BY priority_rank DESC, created_seq
LIMIT 1
"""

_CHUNK: Final = 500  # ids per `IN (...)`, well under SQLite's variable limit


class Store:
    """SQL over one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ tasks

    def task(self, task_id: str) -> Row | None:
        return self._one("SELECT * FROM tasks WHERE task_id = ?", (task_id,))

    def held_by(self, agent_id: str) -> Row | None:
        return self._one(
            "SELECT * FROM tasks INDEXED BY tasks_holder WHERE holder = ? AND status = 'in_progress' "
            "ORDER BY updated_at LIMIT 1",
            (agent_id,),
        )

    def due_leases(self, now: float) -> list[Row]:
        # INDEXED BY: the planner prefers tasks_status (equality) and would visit every
        # in-progress task on every call; the partial lease index visits only the due ones.
        return self._all(
            "SELECT * FROM tasks INDEXED BY tasks_lease WHERE status = 'in_progress' AND lease_expires_at <= ?",
            (now,),
        )

    def next_lease_expiry(self) -> float | None:
        row = self._one(
            "SELECT min(lease_expires_at) FROM tasks INDEXED BY tasks_lease WHERE status = 'in_progress'"
        )
        return None if row is None or row[0] is None else float(row[0])

    def assign(self, task_id: str, agent_id: str, lease_id: str, expires: float, now: float) -> Row | None:
        """Hand a `todo` task to the agent (next attempt); the task's row as it is now, or None."""
        rows = self._all(
            "UPDATE tasks SET status = 'in_progress', holder = ?, lease_id = ?, lease_expires_at = ?, "
            "attempt = attempt + 1, updated_at = ? WHERE task_id = ? AND status = 'todo' RETURNING *",
            (agent_id, lease_id, expires, now, task_id),
        )
        return rows[0] if rows else None

    def set_lease_expiry(self, task_id: str, expires: float, now: float) -> None:
        self.conn.execute(
            "UPDATE tasks SET lease_expires_at = ?, updated_at = ? WHERE task_id = ?", (expires, now, task_id)
        )

    def unassign(self, task_id: str, status: str, now: float, expiries: int | None = None) -> None:
        """Drop holder and lease and move the task to `status` (and set its expiry count if given)."""
        self.conn.execute(
            "UPDATE tasks SET status = ?, holder = NULL, lease_id = NULL, lease_expires_at = NULL, "
            "expiries = coalesce(?, expiries), updated_at = ? WHERE task_id = ?",
            (status, expiries, now, task_id),
        )

    def complete(self, task_id: str, agent_id: str, now: float) -> list[str]:
        """Mark done, drop one pending dependency from each dependent, count it for the agent.

        Returns the skill signature of each dependent this made offerable (its last dependency).
        """
        self.conn.execute(
            "UPDATE tasks SET status = 'done', progress = 100, holder = NULL, lease_id = NULL, "
            "lease_expires_at = NULL, completed_by = ?, completed_at = ?, updated_at = ? WHERE task_id = ?",
            (agent_id, now, now, task_id),
        )
        freed = self.conn.execute(
            "UPDATE tasks SET pending_deps = pending_deps - 1 "
            "WHERE task_id IN (SELECT task_id FROM task_deps WHERE depends_on = ?) "
            "RETURNING skill_sig, pending_deps, status",
            (task_id,),
        ).fetchall()
        self.conn.execute(
            "UPDATE agents SET tasks_completed = tasks_completed + 1 WHERE agent_id = ?", (agent_id,)
        )
        return [r["skill_sig"] for r in freed if r["pending_deps"] == 0 and r["status"] == "todo"]

    def requeue_fresh(self, task_id: str, now: float) -> None:
        """Back to `todo` with attempts and expiries reset (a resolved blocker)."""
        self.conn.execute(
            "UPDATE tasks SET status = 'todo', attempt = 0, expiries = 0, updated_at = ? WHERE task_id = ?",
            (now, task_id),
        )

    def set_progress(self, task_id: str, progress: int) -> None:
        self.conn.execute("UPDATE tasks SET progress = ? WHERE task_id = ?", (progress, task_id))

    def set_checkpoint(self, task_id: str, checkpoint: Any) -> None:
        self.conn.execute(
            "UPDATE tasks SET checkpoint = ? WHERE task_id = ?",
            (None if checkpoint is None else dumps(checkpoint), task_id),
        )

    def status_counts(self) -> dict[str, int]:
        return {
            r["status"]: r["n"] for r in self._all("SELECT status, count(*) AS n FROM tasks GROUP BY status")
        }

    def skill_sigs(self) -> list[Row]:
        return self._all("SELECT sig, skill_count FROM skill_sigs")

    def ready_head(self, sig: str) -> Row | None:
        return self._one(READY_PROBE_SQL, (sig,))

    def ready_counts(self) -> dict[str, int]:
        """Offerable tasks per skill signature: a walk of the partial index `tasks_ready` (only
        offerable tasks are in it), ~7 ms per 65k offerable tasks here."""
        return {
            r[0]: r[1]
            for r in self._all(
                "SELECT skill_sig, count(*) FROM tasks INDEXED BY tasks_ready "
                "WHERE status = 'todo' AND pending_deps = 0 GROUP BY skill_sig"
            )
        }

    def tasks_in_board_order(self, limit: int | None) -> list[Row]:
        """In progress, blocked, todo, done; each by priority then load order (the `status` view)."""
        sql = (
            "SELECT task_id, name, status, priority, holder, attempt, progress, pending_deps, lease_expires_at, "
            "completed_by FROM tasks ORDER BY CASE status WHEN 'in_progress' THEN 0 WHEN 'blocked' THEN 1 "
            "WHEN 'todo' THEN 2 ELSE 3 END, priority_rank DESC, created_seq"
        )
        return self._all(sql + " LIMIT ?", (limit,)) if limit is not None else self._all(sql)

    # ------------------------------------------------------------------ agents

    def agent(self, agent_id: str) -> Row | None:
        return self._one("SELECT * FROM agents WHERE agent_id = ?", (agent_id,))

    def touch_agent(self, agent_id: str, now: float) -> Row | None:
        """Refresh last_seen; the agent's row, or None if it is not registered (one statement)."""
        rows = self._all("UPDATE agents SET last_seen = ? WHERE agent_id = ? RETURNING *", (now, agent_id))
        return rows[0] if rows else None

    def upsert_agent(
        self,
        agent_id: str,
        name: str,
        role: str,
        skills: list[str],
        skills_lc: list[str],
        registered_at: float,
        now: float,
    ) -> None:
        self.conn.execute(
            "INSERT INTO agents (agent_id, name, role, skills, skills_lc, registered_at, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET name = excluded.name, "
            "role = excluded.role, skills = excluded.skills, skills_lc = excluded.skills_lc, "
            "last_seen = excluded.last_seen",
            (agent_id, name, role, dumps(skills), dumps(skills_lc), registered_at, now),
        )

    def agents_with_current_task(self) -> list[Row]:
        return self._all(
            "SELECT a.*, (SELECT t.task_id FROM tasks AS t WHERE t.holder = a.agent_id "
            "AND t.status = 'in_progress' LIMIT 1) AS current_task FROM agents AS a ORDER BY a.registered_at, a.agent_id"
        )

    # ------------------------------------------------------------------ progress, blockers, artifacts

    def insert_progress(
        self, task_id: str, agent_id: str, attempt: int, status: str, progress: int, message: str, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO progress_log (task_id, agent_id, attempt, status, progress, message, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (task_id, agent_id, attempt, status, progress, message, now),
        )

    def progress_log(self, task_id: str, limit: int) -> list[Row]:
        """The last `limit` entries, oldest first."""
        return self._all(
            "SELECT * FROM (SELECT * FROM progress_log WHERE task_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            (task_id, limit),
        )

    def insert_blocker(
        self, task_id: str, agent_id: str | None, description: str, severity: str, suggestion: str, now: float
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO blockers (task_id, agent_id, description, severity, resolution_suggestion, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, agent_id, description, severity, suggestion, now),
        )
        return int(cur.lastrowid or 0)

    def blockers(self, task_id: str) -> list[Row]:
        return self._all("SELECT * FROM blockers WHERE task_id = ? ORDER BY blocker_id", (task_id,))

    def open_blocker_author(self, task_id: str) -> str | None:
        row = self._one(
            "SELECT agent_id FROM blockers WHERE task_id = ? AND resolved_at IS NULL ORDER BY blocker_id DESC LIMIT 1",
            (task_id,),
        )
        return None if row is None else row["agent_id"]

    def resolve_blockers(self, task_id: str, resolution: str, now: float) -> int:
        cur = self.conn.execute(
            "UPDATE blockers SET resolved_at = ?, resolution = ? WHERE task_id = ? AND resolved_at IS NULL",
            (now, resolution, task_id),
        )
        return cur.rowcount

    def insert_artifact(
        self,
        task_id: str,
        agent_id: str,
        artifact_type: str,
        description: str,
        location: str | None,
        data: Any,
        now: float,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO artifacts (task_id, agent_id, artifact_type, description, location, data, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                task_id,
                agent_id,
                artifact_type,
                description,
                location,
                None if data is None else dumps(data),
                now,
            ),
        )
        return int(cur.lastrowid or 0)

    def artifacts(self, task_id: str) -> list[Row]:
        return self._all("SELECT * FROM artifacts WHERE task_id = ? ORDER BY artifact_id", (task_id,))

    def dependency_artifacts(self, task_id: str) -> list[Row]:
        return self._all(
            "SELECT a.* FROM task_deps AS d JOIN artifacts AS a ON a.task_id = d.depends_on "
            "WHERE d.task_id = ? ORDER BY a.artifact_id",
            (task_id,),
        )

    # ------------------------------------------------------------------ events

    def insert_event(
        self,
        kind: str,
        task_id: str | None,
        agent_id: str | None,
        attempt: int | None,
        at: float,
        detail: Mapping[str, Any],
    ) -> None:
        self.conn.execute(
            "INSERT INTO events (kind, task_id, agent_id, attempt, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, task_id, agent_id, attempt, at, dumps(detail)),
        )

    def agent_history(self, task_id: str, agent_id: str, kinds: Iterable[str], limit: int) -> list[Row]:
        """The agent's latest events of these kinds on this task, newest first (via events_task)."""
        wanted = list(kinds)
        marks = ",".join("?" * len(wanted))
        return self._all(
            f"SELECT kind, attempt, at FROM events WHERE task_id = ? AND agent_id = ? AND kind IN ({marks}) "
            "ORDER BY id DESC LIMIT ?",
            (task_id, agent_id, *wanted, limit),
        )

    # ------------------------------------------------------------------ loading

    def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        """Status of each of these ids that is on the board."""
        ids = sorted(set(task_ids))
        found: dict[str, str] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT task_id, status FROM tasks WHERE task_id IN ({marks})", chunk
            ):
                found[r["task_id"]] = r["status"]
        return found

    def max_created_seq(self) -> int:
        row = self._one("SELECT coalesce(max(created_seq), 0) FROM tasks")
        return 0 if row is None else int(row[0])

    def insert_tasks(
        self,
        tasks: Sequence[tuple[Any, ...]],
        sigs: Iterable[tuple[str, int]],
        deps: Sequence[tuple[str, str]],
    ) -> None:
        """New `todo` tasks (one tuple each, in the column order below), their skill signatures and dependencies."""
        self.conn.executemany(
            "INSERT INTO tasks (task_id, project, name, description, instructions, priority, priority_rank, "
            "required_skills, skill_count, skill_sig, labels, dependencies, pending_deps, estimated_hours, payload, "
            "status, created_seq, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'todo', ?, ?, ?)",
            tasks,
        )
        self.conn.executemany(
            "INSERT OR IGNORE INTO skill_sigs (sig, skill_count) VALUES (?, ?)", sorted(sigs)
        )
        self.conn.executemany("INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)", deps)
