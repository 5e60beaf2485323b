"""The board's SQL: every statement the board's rules run, and no rule.

Reads return `Row`s (rows.py turns them into wire models); writes take plain values. Who
may change what, and when, lives in lifecycle.py and board.py; the tables and their indexes
are in schema.py; the connection, its transactions and the file's state in sql.py; the
operator's reads (dashboard, /metrics) in store_reads.py. Every method runs inside the
caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pm_agent_stub.board.sql import Row as Row
from pm_agent_stub.board.sql import in_chunks
from pm_agent_stub.board.store_reads import OperatorReads
from pm_agent_stub.schema import BOARD_RANK
from pm_protocol.limits import dumps

# The head of the offer order among ready tasks of one skill signature: one probe of the
# partial index `tasks_ready` (see schema.py).
READY_PROBE_SQL: Final = """
SELECT task_id, priority_rank, skill_count, created_seq FROM tasks INDEXED BY tasks_ready
WHERE skill_sig = ? AND status = 'todo' AND pending_deps = 0
ORDER BY priority_rank DESC, created_seq
LIMIT 1
"""

_NO_END: Final = 2**63 - 1  # above every rowid: "from the newest"
# Correlated subqueries on `agents AS a`, through the partial index on holders (without
# INDEXED BY the planner takes tasks_status and visits every in-progress task per agent).
_HOLDS: Final = "SELECT 1 FROM tasks AS t INDEXED BY tasks_holder WHERE t.holder = a.agent_id AND t.status = 'in_progress'"
_CURRENT_TASK: Final = (
    "SELECT t.task_id FROM tasks AS t INDEXED BY tasks_holder "
    "WHERE t.holder = a.agent_id AND t.status = 'in_progress' LIMIT 1"
)


class Store(OperatorReads):
    """Every statement the board's rules run, over one connection (the transaction is the caller's)."""

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
            "SELECT min(lease_expires_at) AS at FROM tasks INDEXED BY tasks_lease WHERE status = 'in_progress'"
        )
        return None if row is None or row["at"] is None else float(row["at"])

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

    def start_new_run(self, task_id: str, now: float) -> int:
        """Back to `todo` as a fresh run: result, checkpoint and progress cleared, `run` + 1, attempts kept.

        Returns its pending dependencies now (0: offerable at once).
        """
        rows = self._all(
            "UPDATE tasks SET status = 'todo', holder = NULL, lease_id = NULL, lease_expires_at = NULL, "
            "progress = 0, checkpoint = NULL, completed_by = NULL, completed_at = NULL, expiries = 0, "
            "run = run + 1, updated_at = ? WHERE task_id = ? RETURNING pending_deps",
            (now, task_id),
        )
        return int(rows[0]["pending_deps"])

    def undo_completion(self, task_id: str) -> list[str]:
        """A done task is not done any more: each dependent waits for it again (the inverse of `complete`).

        Returns the skill signature of each dependent this took out of the offerable set.
        """
        held = self.conn.execute(
            "UPDATE tasks SET pending_deps = pending_deps + 1 "
            "WHERE task_id IN (SELECT task_id FROM task_deps WHERE depends_on = ?) "
            "RETURNING skill_sig, pending_deps, status",
            (task_id,),
        ).fetchall()
        return [r["skill_sig"] for r in held if r["pending_deps"] == 1 and r["status"] == "todo"]

    def dependents(self, task_id: str) -> list[Row]:
        """Every task that depends on this one, directly or not (task_id, status), in load order."""
        return self._all(
            "WITH RECURSIVE down(task_id) AS (SELECT task_id FROM task_deps WHERE depends_on = ? "
            "UNION SELECT d.task_id FROM task_deps AS d JOIN down ON d.depends_on = down.task_id) "
            "SELECT t.task_id, t.status, t.attempt FROM tasks AS t JOIN down USING (task_id) ORDER BY t.created_seq",
            (task_id,),
        )

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
        """Every skill signature on the board, first seen first (rowid order: a plain scan)."""
        return self._all("SELECT sig, skill_count FROM skill_sigs ORDER BY rowid")

    def ready_head(self, sig: str) -> Row | None:
        return self._one(READY_PROBE_SQL, (sig,))

    def tasks_page(self, after: tuple[int, int, int] | None, limit: int) -> list[Row]:
        """Tasks in board order (the `status` view) after the key `(board rank, priority_rank, created_seq)`:
        in progress, blocked, todo, done; each by priority, then load order.

        Each part below is one seek into the expression index `tasks_board_order` (the rest of
        the key's rank and priority, the rest of its rank, the ranks after it), so a page costs
        its own rows however deep into the board it is; only those few rows are sorted.
        """
        columns = (
            f"{BOARD_RANK} AS board_rank, priority_rank, created_seq, task_id, name, status, priority, holder, "
            "attempt, progress, pending_deps, lease_expires_at, completed_by, run, required_skills, payload"
        )
        source = "FROM tasks INDEXED BY tasks_board_order"
        order = f"ORDER BY {BOARD_RANK}, priority_rank DESC, created_seq LIMIT ?"
        if after is None:
            return self._all(f"SELECT {columns} {source} {order}", (limit,))
        rank, priority, seq = after
        parts = (
            f"SELECT * FROM (SELECT {columns} {source} WHERE {BOARD_RANK} = ? AND priority_rank = ? "
            "AND created_seq > ? ORDER BY created_seq LIMIT ?)",
            f"SELECT * FROM (SELECT {columns} {source} WHERE {BOARD_RANK} = ? AND priority_rank < ? "
            "ORDER BY priority_rank DESC, created_seq LIMIT ?)",
            f"SELECT * FROM (SELECT {columns} {source} WHERE {BOARD_RANK} > ? {order})",
        )
        return self._all(
            " UNION ALL ".join(parts) + " ORDER BY board_rank, priority_rank DESC, created_seq LIMIT ?",
            (rank, priority, seq, limit, rank, priority, limit, rank, limit, limit),
        )

    # ------------------------------------------------------------------ agents

    def registered_roles(self) -> list[tuple[str, list[str]]]:
        """Each distinct (role, lower-cased skills) of the agents this board has seen."""
        return [
            (r["role"], json.loads(r["skills_lc"]))
            for r in self._all("SELECT DISTINCT role, skills_lc FROM agents")
        ]

    def deregister(self, agent_id: str, now: float) -> None:
        self.conn.execute(
            "UPDATE agents SET deregistered_at = ?, last_seen = ? WHERE agent_id = ?", (now, now, agent_id)
        )

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
            "last_seen = excluded.last_seen, deregistered_at = NULL",
            (agent_id, name, role, dumps(skills), dumps(skills_lc), registered_at, now),
        )

    def agent_count(self) -> int:
        row = self._one("SELECT count(*) AS n FROM agents")
        return 0 if row is None else int(row["n"])

    def worker_counts(self, offline_before: float) -> Row:
        """total, working (holding a task), offline (not holding, and deregistered or last seen before the cutoff)."""
        row = self._one(
            "SELECT count(*) AS total, coalesce(sum(working), 0) AS working, "
            "coalesce(sum(working = 0 AND (last_seen < ? OR deregistered_at IS NOT NULL)), 0) AS offline "
            f"FROM (SELECT a.last_seen, a.deregistered_at, EXISTS ({_HOLDS}) AS working FROM agents AS a)",
            (offline_before,),
        )
        assert row is not None
        return row

    def agents_page(self, after: tuple[float, str] | None, limit: int) -> list[Row]:
        """Agents in registration order after `(registered_at, agent_id)`, with their current task."""
        where, params = ("WHERE (a.registered_at, a.agent_id) > (?, ?) ", after) if after else ("", ())
        return self._all(
            f"SELECT a.*, ({_CURRENT_TASK}) AS current_task FROM agents AS a INDEXED BY agents_registered "
            f"{where}ORDER BY a.registered_at, a.agent_id LIMIT ?",
            (*params, limit),
        )

    def agents_for_status(self, offline_before: float, limit: int | None) -> list[Row]:
        """Working agents first, then idle, then offline (deregistered or not seen since the cutoff);
        each in registration order (the dashboard's workers)."""
        sql = (
            f"SELECT * FROM (SELECT a.*, ({_CURRENT_TASK}) AS current_task FROM agents AS a) "
            "ORDER BY current_task IS NULL, (last_seen < ? OR deregistered_at IS NOT NULL), registered_at, agent_id"
        )
        if limit is None:
            return self._all(sql, (offline_before,))
        return self._all(sql + " LIMIT ?", (offline_before, limit))

    def stale_agents(self, seen_before: float, limit: int) -> list[Row]:
        """Agents last seen before the cutoff that hold no task, least recently seen first."""
        return self._all(
            "SELECT agent_id, last_seen FROM agents AS a INDEXED BY agents_last_seen "
            f"WHERE a.last_seen < ? AND NOT EXISTS ({_HOLDS}) ORDER BY a.last_seen LIMIT ?",
            (seen_before, limit),
        )

    def delete_agent(self, agent_id: str) -> None:
        self.conn.execute("DELETE FROM agents WHERE agent_id = ?", (agent_id,))

    # ------------------------------------------------------------------ progress, blockers, artifacts

    def insert_progress(
        self, task_id: str, agent_id: str, attempt: int, status: str, progress: int, message: str, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO progress_log (task_id, agent_id, attempt, status, progress, message, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (task_id, agent_id, attempt, status, progress, message, now),
        )

    def drop_old_progress(self, task_id: str, keep: int) -> int:
        """Delete the task's progress entries older than its newest `keep`, counted on the task
        (`progress_dropped`); how many went. One walk of `progress_log_task` of `keep` entries."""
        dropped = self.conn.execute(
            "DELETE FROM progress_log WHERE task_id = ? AND id <= "
            "(SELECT id FROM progress_log WHERE task_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (task_id, task_id, keep),
        ).rowcount
        if dropped:
            self.conn.execute(
                "UPDATE tasks SET progress_dropped = progress_dropped + ? WHERE task_id = ?",
                (dropped, task_id),
            )
        return dropped

    def progress_before(self, task_id: str, before: int | None, limit: int) -> list[Row]:
        """The task's progress entries with ids below `before` (None: all), newest first."""
        return self._all(
            "SELECT * FROM progress_log WHERE task_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (task_id, _NO_END if before is None else before, limit),
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

    def blockers_before(self, task_id: str, before: int | None, limit: int) -> list[Row]:
        """The task's blockers with ids below `before` (None: all), newest first."""
        return self._all(
            "SELECT * FROM blockers WHERE task_id = ? AND blocker_id < ? ORDER BY blocker_id DESC LIMIT ?",
            (task_id, _NO_END if before is None else before, limit),
        )

    def open_blocker_count(self, task_id: str) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM blockers WHERE task_id = ? AND resolved_at IS NULL", (task_id,)
        )
        return 0 if row is None else int(row["n"])

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
        data: str | None,
        now: float,
    ) -> int:
        """Metadata in `artifacts` (with the data's size), the data (JSON text) in `artifact_data`."""
        cur = self.conn.execute(
            "INSERT INTO artifacts (task_id, agent_id, artifact_type, description, location, created_at, size, run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT run FROM tasks WHERE task_id = ?))",
            (
                task_id,
                agent_id,
                artifact_type,
                description,
                location,
                now,
                0 if data is None else len(data.encode()),
                task_id,
            ),
        )
        artifact_id = int(cur.lastrowid or 0)
        if data is not None:
            self.conn.execute(
                "INSERT INTO artifact_data (artifact_id, data) VALUES (?, ?)", (artifact_id, data)
            )
        return artifact_id

    def artifact_totals(self, task_id: str) -> tuple[int, int]:
        """(count, bytes) of the task's artifacts: data, description and location (never reads the data)."""
        row = self._one(
            "SELECT count(*) AS n, coalesce(sum(size + length(CAST(description AS BLOB)) "
            "+ coalesce(length(CAST(location AS BLOB)), 0)), 0) AS bytes FROM artifacts WHERE task_id = ?",
            (task_id,),
        )
        return (0, 0) if row is None else (int(row["n"]), int(row["bytes"]))

    def artifact(self, artifact_id: int) -> Row | None:
        """One artifact's metadata and data (`data` NULL when it has none)."""
        return self._one(
            "SELECT a.*, d.data FROM artifacts AS a LEFT JOIN artifact_data AS d USING (artifact_id) "
            "WHERE a.artifact_id = ?",
            (artifact_id,),
        )

    def artifact_data(self, artifact_ids: Sequence[int]) -> dict[int, str]:
        """The data (JSON text) of these artifacts, by id; those without data are left out."""
        found: dict[int, str] = {}
        for chunk, marks in in_chunks(artifact_ids):
            for r in self.conn.execute(
                f"SELECT artifact_id, data FROM artifact_data WHERE artifact_id IN ({marks})", chunk
            ):
                found[int(r["artifact_id"])] = r["data"]
        return found

    def artifacts_after(self, task_id: str, after: int, limit: int) -> list[Row]:
        """The task's artifacts (metadata) with ids above `after`, oldest first."""
        return self._all(
            "SELECT * FROM artifacts WHERE task_id = ? AND artifact_id > ? ORDER BY artifact_id LIMIT ?",
            (task_id, after, limit),
        )

    def dependency_artifacts_after(self, task_id: str, after: int, limit: int) -> list[Row]:
        """The artifacts (metadata) of the task's dependencies with ids above `after`, oldest first;
        each dependency's from its current run only (a rerun's results replace the earlier run's)."""
        return self._all(
            "SELECT a.* FROM task_deps AS d JOIN tasks AS t ON t.task_id = d.depends_on "
            "JOIN artifacts AS a ON a.task_id = d.depends_on AND a.run = t.run "
            "WHERE d.task_id = ? AND a.artifact_id > ? ORDER BY a.artifact_id LIMIT ?",
            (task_id, after, limit),
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
        for chunk, marks in in_chunks(ids):
            for r in self.conn.execute(
                f"SELECT task_id, status FROM tasks WHERE task_id IN ({marks})", chunk
            ):
                found[r["task_id"]] = r["status"]
        return found

    def max_created_seq(self) -> int:
        row = self._one("SELECT coalesce(max(created_seq), 0) AS seq FROM tasks")
        return 0 if row is None else int(row["seq"])

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
