"""The operator's reads (the dashboard and /metrics): each through an index, none loading a JSON
payload, checkpoint or artifact `data`, so their cost follows what is shown, not the board's size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pm_agent_stub.board.sql import Row, Sql, in_chunks
from pm_protocol.literals import SEVERITIES

# A blocker's severity as a number (low 0 ... critical 3), for "worst first".
SEVERITY_RANK: Final = (
    "(CASE b.severity " + " ".join(f"WHEN '{s}' THEN {rank}" for rank, s in enumerate(SEVERITIES)) + " END)"
)


class OperatorReads(Sql):
    """Reads for people and Prometheus; the rules never call them."""

    def ready_counts(self) -> dict[str, int]:
        """Offerable tasks per skill signature: a walk of the partial index `tasks_ready` (ready rows only)."""
        rows = self._all(
            "SELECT skill_sig, count(*) AS n FROM tasks INDEXED BY tasks_ready "
            "WHERE status = 'todo' AND pending_deps = 0 GROUP BY skill_sig"
        )
        return {r["skill_sig"]: r["n"] for r in rows}

    def in_progress_counts(self) -> dict[str, int]:
        """Held tasks per skill signature: a walk of the partial index `tasks_lease` (held rows only)."""
        rows = self._all(
            "SELECT skill_sig, count(*) AS n FROM tasks INDEXED BY tasks_lease "
            "WHERE status = 'in_progress' GROUP BY skill_sig"
        )
        return {r["skill_sig"]: r["n"] for r in rows}

    def tasks_with_status(self, status: str, limit: int) -> list[Row]:
        """Up to `limit` tasks of one status (via `tasks_status`): done ones newest first, others in offer order."""
        order = "completed_at DESC" if status == "done" else "priority_rank DESC, created_seq"
        return self._all(
            "SELECT task_id, name, status, priority, required_skills, holder, attempt, progress, pending_deps, "
            "lease_expires_at, completed_by, completed_at, updated_at FROM tasks INDEXED BY tasks_status "
            f"WHERE status = ? ORDER BY {order} LIMIT ?",
            (status, limit),
        )

    def open_blockers(self, tasks: int, per_task: int) -> list[Row]:
        """Up to `per_task` open blockers of each of up to `tasks` blocked tasks (the worst, then
        the newest), each with its task's open count (`open_count`); descriptions cut to 4000
        characters.

        Tasks come worst severity first, then the one with the newest blocker, so the blockers of
        one task can never push another task off the list (it was one list, newest first).
        """
        chosen = self._all(
            f"SELECT b.task_id, max({SEVERITY_RANK}) AS worst, max(b.blocker_id) AS newest "
            "FROM tasks AS t INDEXED BY tasks_status JOIN blockers AS b ON b.task_id = t.task_id "
            "WHERE t.status = 'blocked' AND b.resolved_at IS NULL GROUP BY b.task_id "
            "ORDER BY worst DESC, newest DESC LIMIT ?",
            (tasks,),
        )
        place = {r["task_id"]: i for i, r in enumerate(chosen)}
        found: list[Row] = []
        for chunk, marks in in_chunks(list(place)):
            found += self._all(
                "SELECT b.blocker_id, b.task_id, t.name AS task_name, b.agent_id, substr(b.description, 1, 4000) "
                "AS description, length(b.description) AS description_length, b.severity, "
                "b.resolution_suggestion, b.created_at, r.open_count, r.rank FROM (SELECT b.blocker_id, "
                f"row_number() OVER (PARTITION BY b.task_id ORDER BY {SEVERITY_RANK} DESC, b.blocker_id DESC) "
                "AS rank, count(*) OVER (PARTITION BY b.task_id) AS open_count FROM blockers AS b "
                f"WHERE b.task_id IN ({marks}) AND b.resolved_at IS NULL) AS r "
                "JOIN blockers AS b USING (blocker_id) JOIN tasks AS t ON t.task_id = b.task_id WHERE r.rank <= ?",
                (*chunk, per_task),
            )
        found.sort(key=lambda r: (place[r["task_id"]], r["rank"]))
        return found

    def unfinished_dependencies(self, task_ids: Sequence[str]) -> list[Row]:
        """(task_id, depends_on) for each dependency of these tasks that is not done yet."""
        found: list[Row] = []
        for chunk, marks in in_chunks(task_ids):
            found += self._all(
                "SELECT d.task_id, d.depends_on FROM task_deps AS d JOIN tasks AS t ON t.task_id = d.depends_on "
                f"WHERE d.task_id IN ({marks}) AND t.status != 'done' ORDER BY d.task_id, d.depends_on",
                chunk,
            )
        return found

    def latest_artifacts(self, task_ids: Sequence[str], per_task: int) -> list[Row]:
        """The newest `per_task` artifacts of each task (no `data`), with each task's artifact count."""
        found: list[Row] = []
        for chunk, marks in in_chunks(task_ids):
            found += self._all(
                "SELECT * FROM (SELECT artifact_id, task_id, agent_id, artifact_type, substr(description, 1, 500) "
                "AS description, substr(location, 1, 500) AS location, created_at, row_number() OVER "
                "(PARTITION BY task_id ORDER BY artifact_id DESC) AS rank, count(*) OVER (PARTITION BY task_id) "
                f"AS count FROM artifacts WHERE task_id IN ({marks})) WHERE rank <= ? ORDER BY task_id, artifact_id",
                (*chunk, per_task),
            )
        return found

    def recent_events(self, limit: int, skip_kinds: Sequence[str] = ()) -> list[Row]:
        """The newest events, newest first (a backwards walk of the primary key)."""
        where = f"WHERE kind NOT IN ({','.join('?' * len(skip_kinds))}) " if skip_kinds else ""
        return self._all(
            f"SELECT id, kind, task_id, agent_id, attempt, at, detail FROM events {where}ORDER BY id DESC LIMIT ?",
            (*skip_kinds, limit),
        )

    def offerable_since(self, task_id: str, before: float) -> float | None:
        """When the task last became offerable before `before`: loaded, requeued (also by a rerun), or its
        last dependency done."""
        row = self._one(
            "SELECT max(t.created_at, "
            "coalesce((SELECT max(e.at) FROM events AS e WHERE e.task_id = t.task_id "
            "AND e.kind IN ('expired', 'released', 'resolved', 'rerun') AND e.at <= ?), 0), "
            "coalesce((SELECT max(d2.completed_at) FROM task_deps AS d JOIN tasks AS d2 ON d2.task_id = d.depends_on "
            "WHERE d.task_id = t.task_id), 0)) AS since FROM tasks AS t WHERE t.task_id = ?",
            (before, task_id),
        )
        return None if row is None or row["since"] is None else float(row["since"])
