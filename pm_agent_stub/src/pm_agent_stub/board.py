"""The coordinator: every rule of docs/protocol.md, one `BEGIN IMMEDIATE` transaction per call.

Methods are synchronous and never await, so one connection used from the event-loop thread
is enough; several processes on the same file stay consistent because every call takes the
write lock before it reads. A call that raises `BoardError` is rolled back whole (the
only thing kept is the `fenced` audit event, written after the rollback).

After each commit the board tells its listeners what changed: `work` (a task may have become
offerable: long-pollers should look again) and `lease` (the set of lease expiries moved: the
sweep timer should re-aim).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pm_agent_stub.db import transaction
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import get_logger
from pm_agent_stub.project_file import ProjectFileError, ProjectSpec
from pm_agent_stub.suggestions import suggest_resolution
from pm_agent_stub.timefmt import iso
from pm_protocol import results as r
from pm_protocol.limits import PRIORITY_RANK, dumps

log = get_logger("pm_agent_stub.board")

Signal = Literal["work", "lease"]
Listener = Callable[[frozenset[Signal]], None]
ReportStatus = Literal["in_progress", "completed", "blocked"]

RETRY_AFTER_SECONDS: Final = 5
PROGRESS_LOG_LIMIT: Final = 200
UNSET: Final[Any] = object()

_PROBE_SQL: Final = """
SELECT task_id, priority_rank, skill_count, created_seq FROM tasks INDEXED BY tasks_ready
WHERE skill_sig = ? AND status = 'todo' AND pending_deps = 0
ORDER BY priority_rank DESC, created_seq
LIMIT 1
"""


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass
class _TxnState:
    now: float
    signals: set[Signal] = field(default_factory=set)
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    audit: list[tuple[str, str | None, str | None, int | None, dict[str, Any]]] = field(default_factory=list)


class Board:
    """The task board on one SQLite connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        offline_seconds: float = 90.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.offline_seconds = offline_seconds
        self._clock = clock
        self._listeners: list[Listener] = []
        self._state: _TxnState | None = None
        self._sig_sets: dict[str, frozenset[str]] = {}

    # ------------------------------------------------------------------ plumbing

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @contextmanager
    def _txn(self) -> Iterator[_TxnState]:
        state = _TxnState(now=self._clock())
        self._state = state
        try:
            with transaction(self.conn):
                yield state
        except BoardError:
            self._state = None
            if state.audit:
                self._write_audit(state)
            raise
        finally:
            self._state = None
        for event, fields in state.logs:
            log.info(event, **fields)
        if state.signals:
            frozen = frozenset(state.signals)
            for listener in self._listeners:
                listener(frozen)

    def _write_audit(self, rejected: _TxnState) -> None:
        """Record audit events of a rejected call (and any due sweep) in a fresh transaction."""
        state = _TxnState(now=rejected.now)
        self._state = state
        try:
            with transaction(self.conn):
                self._sweep(state)
                for kind, task_id, agent_id, attempt, detail in rejected.audit:
                    self._event(state, kind, task_id, agent_id, attempt, detail)
        finally:
            self._state = None
        for event, fields in state.logs:
            log.info(event, **fields)
        if state.signals:
            for listener in self._listeners:
                listener(frozenset(state.signals))

    def _event(
        self,
        state: _TxnState,
        kind: str,
        task_id: str | None,
        agent_id: str | None,
        attempt: int | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO events (kind, task_id, agent_id, attempt, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, task_id, agent_id, attempt, state.now, dumps(detail or {})),
        )
        state.logs.append(
            (kind, {"task_id": task_id, "agent_id": agent_id, "attempt": attempt, **(detail or {})})
        )

    def _task(self, task_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
        if row is None:
            raise BoardError(
                "task_not_found",
                f"task '{task_id}' is not on the board; use the task_id from your assignment "
                "(request_next_task) or check get_project_status.",
            )
        return row

    def _agent(self, agent_id: str, now: float) -> sqlite3.Row:
        """The agent's row, with last_seen refreshed; agent_not_registered if unknown."""
        cur = self.conn.execute("UPDATE agents SET last_seen = ? WHERE agent_id = ?", (now, agent_id))
        if cur.rowcount == 0:
            raise BoardError(
                "agent_not_registered",
                f"agent '{agent_id}' is not registered; call register_agent with agent_id, name, role "
                "and skills first, then retry this call.",
            )
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM agents WHERE agent_id = ?", (agent_id,)
        ).fetchone()
        assert row is not None
        return row

    def _held_by(self, agent_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM tasks INDEXED BY tasks_holder WHERE holder = ? AND status = 'in_progress' "
            "ORDER BY updated_at LIMIT 1",
            (agent_id,),
        ).fetchone()
        return row

    def _renew(self, state: _TxnState, row: sqlite3.Row) -> float:
        expires = state.now + self.lease_seconds
        self.conn.execute(
            "UPDATE tasks SET lease_expires_at = ?, updated_at = ? WHERE task_id = ?",
            (expires, state.now, row["task_id"]),
        )
        state.signals.add("lease")
        return expires

    def _require_holder(self, state: _TxnState, agent_id: str, row: sqlite3.Row, doing: str) -> None:
        """Fencing: only the agent holding a live lease may act on the task."""
        if row["status"] == "in_progress" and row["holder"] == agent_id:
            return
        state.audit.append(
            (
                "fenced",
                row["task_id"],
                agent_id,
                row["attempt"],
                {"doing": doing, "task_status": row["status"]},
            )
        )
        if row["status"] == "in_progress":
            why = "it is assigned to another agent (your lease expired or you never held it)"
        elif row["status"] == "blocked":
            why = "it is blocked and waits for resolve_blocker"
        else:
            why = "it is back in the queue (your lease expired or the task was released)"
        raise BoardError(
            "not_task_holder",
            f"agent '{agent_id}' does not hold task '{row['task_id']}': {why}. "
            "Stop working on it and call request_next_task for your current assignment.",
        )

    def _already_complete(self, agent_id: str, row: sqlite3.Row) -> bool:
        """True if the completer repeats itself; task_already_complete for anyone else."""
        if row["completed_by"] == agent_id:
            return True
        raise BoardError(
            "task_already_complete",
            f"task '{row['task_id']}' was already completed by agent '{row['completed_by']}' at "
            f"{iso(row['completed_at'])}; nothing to report, call request_next_task for new work.",
        )

    # ------------------------------------------------------------------ leases

    def _sweep(self, state: _TxnState) -> int:
        """Return expired leases to the queue (or block after too many expiries)."""
        rows = self.conn.execute(
            # INDEXED BY: the planner prefers tasks_status (equality) and would visit every
            # in-progress task on every call; the partial lease index visits only the due ones.
            "SELECT * FROM tasks INDEXED BY tasks_lease WHERE status = 'in_progress' AND lease_expires_at <= ?",
            (state.now,),
        ).fetchall()
        for row in rows:
            expiries = row["expiries"] + 1
            blocked = expiries >= self.max_attempts
            self.conn.execute(
                "UPDATE tasks SET status = ?, holder = NULL, lease_id = NULL, lease_expires_at = NULL, "
                "expiries = ?, updated_at = ? WHERE task_id = ?",
                ("blocked" if blocked else "todo", expiries, state.now, row["task_id"]),
            )
            self._event(
                state,
                "expired",
                row["task_id"],
                row["holder"],
                row["attempt"],
                {"lease_id": row["lease_id"], "expiries": expiries},
            )
            if blocked:
                description = (
                    f"Lease expired {expiries} times (PM_MAX_ATTEMPTS={self.max_attempts}); last holder "
                    f"'{row['holder']}'. The task is blocked instead of being offered again."
                )
                self._insert_blocker(
                    state, row["task_id"], row["holder"], description, "high", row["attempt"]
                )
            else:
                state.signals.add("work")
            state.signals.add("lease")
        return len(rows)

    def sweep(self) -> int:
        """Expire due leases now; the number of tasks that expired."""
        with self._txn() as state:
            return self._sweep(state)

    def next_lease_expiry(self) -> float | None:
        """Earliest live lease expiry (epoch seconds), for the sweep timer."""
        row = self.conn.execute(
            "SELECT min(lease_expires_at) FROM tasks INDEXED BY tasks_lease WHERE status = 'in_progress'"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # ------------------------------------------------------------------ shapes

    def _dependency_artifacts(self, task_id: str) -> list[r.Artifact]:
        rows = self.conn.execute(
            "SELECT a.* FROM task_deps AS d JOIN artifacts AS a ON a.task_id = d.depends_on "
            "WHERE d.task_id = ? ORDER BY a.artifact_id",
            (task_id,),
        ).fetchall()
        return [self._artifact(r) for r in rows]

    @staticmethod
    def _artifact(row: sqlite3.Row) -> r.Artifact:
        return r.Artifact(
            artifact_id=row["artifact_id"],
            task_id=row["task_id"],
            agent_id=row["agent_id"],
            artifact_type=row["artifact_type"],
            description=row["description"],
            location=row["location"],
            data=_loads(row["data"]),
            created_at=iso(row["created_at"]),
        )

    def _assignment(self, row: sqlite3.Row, expires: float) -> r.Assignment:
        return r.Assignment(
            task_id=row["task_id"],
            task_name=row["name"],
            description=row["description"],
            instructions=row["instructions"],
            priority=row["priority"],
            required_skills=_loads(row["required_skills"]),
            labels=_loads(row["labels"]),
            dependencies=_loads(row["dependencies"]),
            estimated_hours=row["estimated_hours"],
            payload=_loads(row["payload"]),
            attempt=row["attempt"],
            lease=r.Lease(
                lease_id=row["lease_id"],
                ttl_seconds=_number(self.lease_seconds),
                expires_at=iso(expires),
            ),
            checkpoint=_loads(row["checkpoint"]),
            dependency_artifacts=self._dependency_artifacts(row["task_id"]),
        )

    def _agent_info(self, row: sqlite3.Row, current_task: str | None, now: float) -> r.AgentInfo:
        status: r.AgentState
        if current_task is not None:
            status = "working"
        elif now - row["last_seen"] > self.offline_seconds:
            status = "offline"
        else:
            status = "idle"
        return r.AgentInfo(
            agent_id=row["agent_id"],
            name=row["name"],
            role=row["role"],
            skills=_loads(row["skills"]),
            registered_at=iso(row["registered_at"]),
            status=status,
            current_task=current_task,
            last_seen=iso(row["last_seen"]),
            tasks_completed=row["tasks_completed"],
        )

    # ------------------------------------------------------------------ tools

    def register_agent(self, agent_id: str, name: str, role: str, skills: list[str]) -> r.RegisterResult:
        skills_lc = sorted({s.lower() for s in skills})
        with self._txn() as state:
            self._sweep(state)
            existing = self.conn.execute("SELECT * FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
            registered_at = existing["registered_at"] if existing is not None else state.now
            self.conn.execute(
                "INSERT INTO agents (agent_id, name, role, skills, skills_lc, registered_at, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET name = excluded.name, "
                "role = excluded.role, skills = excluded.skills, skills_lc = excluded.skills_lc, "
                "last_seen = excluded.last_seen",
                (agent_id, name, role, dumps(skills), dumps(skills_lc), registered_at, state.now),
            )
            self._event(state, "registered", None, agent_id, None, {"again": existing is not None})
            # New skills may make waiting tasks offerable to this agent's own long-poll.
            state.signals.add("work")
            verb = "Re-registered" if existing is not None else "Registered"
            return r.RegisterResult(
                success=True,
                message=f"{verb} agent '{agent_id}' ({name}, {role}) with {len(skills)} skills.",
                agent_data=r.AgentData(
                    agent_id=agent_id, name=name, role=role, skills=skills, registered_at=iso(registered_at)
                ),
            )

    def request_next_task(self, agent_id: str) -> r.TaskOffer:
        with self._txn() as state:
            self._sweep(state)
            agent = self._agent(agent_id, state.now)
            held = self._held_by(agent_id)
            if held is not None:
                expires = self._renew(state, held)
                self._event(
                    state,
                    "renewed",
                    held["task_id"],
                    agent_id,
                    held["attempt"],
                    {"lease_id": held["lease_id"]},
                )
                return r.TaskOffer(success=True, has_task=True, assignment=self._assignment(held, expires))
            picked = self._pick(frozenset(json.loads(agent["skills_lc"])))
            if picked is None:
                return r.TaskOffer(
                    success=True,
                    has_task=False,
                    message=f"No task is available for agent '{agent_id}' right now "
                    "(none ready whose required skills you have); ask again later.",
                    retry_after_seconds=RETRY_AFTER_SECONDS,
                )
            row = self._task(picked["task_id"])
            lease_id = uuid.uuid4().hex
            attempt = row["attempt"] + 1
            expires = state.now + self.lease_seconds
            self.conn.execute(
                "UPDATE tasks SET status = 'in_progress', holder = ?, lease_id = ?, lease_expires_at = ?, "
                "attempt = ?, updated_at = ? WHERE task_id = ? AND status = 'todo'",
                (agent_id, lease_id, expires, attempt, state.now, row["task_id"]),
            )
            self._event(state, "assigned", row["task_id"], agent_id, attempt, {"lease_id": lease_id})
            state.signals.add("lease")
            fresh = self._task(row["task_id"])
            return r.TaskOffer(success=True, has_task=True, assignment=self._assignment(fresh, expires))

    def _pick(self, skills: frozenset[str]) -> sqlite3.Row | None:
        """Best offerable task for these skills: one index probe per satisfiable skill signature."""
        best: sqlite3.Row | None = None
        for sig_row in self.conn.execute("SELECT sig, skill_count FROM skill_sigs").fetchall():
            sig, count = sig_row["sig"], sig_row["skill_count"]
            if count > len(skills):
                continue
            required = self._sig_sets.get(sig)
            if required is None:
                required = self._sig_sets[sig] = frozenset(json.loads(sig))
            if not required <= skills:
                continue
            row: sqlite3.Row | None = self.conn.execute(_PROBE_SQL, (sig,)).fetchone()
            if row is not None and (
                best is None
                or (row["priority_rank"], row["skill_count"], -row["created_seq"])
                > (best["priority_rank"], best["skill_count"], -best["created_seq"])
            ):
                best = row
        return best

    def report_task_progress(
        self,
        agent_id: str,
        task_id: str,
        status: ReportStatus,
        progress: float,
        message: str,
        checkpoint: Any = UNSET,
    ) -> r.ProgressAck:
        with self._txn() as state:
            self._sweep(state)
            self._agent(agent_id, state.now)
            row = self._task(task_id)
            if row["status"] == "done" and self._already_complete(agent_id, row):
                return r.ProgressAck(
                    success=True,
                    acknowledged=True,
                    status="already_complete",
                    message=f"Task '{task_id}' is already complete (by you); nothing changed.",
                    lease_expires_at=None,
                )
            self._require_holder(state, agent_id, row, f"report {status}")
            pct = round(progress)
            self.conn.execute(
                "INSERT INTO progress_log (task_id, agent_id, attempt, status, progress, message, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (task_id, agent_id, row["attempt"], status, pct, message, state.now),
            )
            if checkpoint is not UNSET:
                self.conn.execute(
                    "UPDATE tasks SET checkpoint = ? WHERE task_id = ?",
                    (None if checkpoint is None else dumps(checkpoint), task_id),
                )
            if status == "in_progress":
                self.conn.execute("UPDATE tasks SET progress = ? WHERE task_id = ?", (pct, task_id))
                expires = self._renew(state, row)
                return r.ProgressAck(
                    success=True,
                    acknowledged=True,
                    status="progress_recorded",
                    message=f"Progress {pct}% recorded for task '{task_id}'.",
                    lease_expires_at=iso(expires),
                )
            if status == "completed":
                self._complete(state, agent_id, row)
                return r.ProgressAck(
                    success=True,
                    acknowledged=True,
                    status="task_completed",
                    message=f"Task '{task_id}' marked done. Call request_next_task for more work.",
                    lease_expires_at=None,
                )
            blocker_id, suggestion = self._block(
                state, agent_id, row, message or "blocked (no description)", "medium"
            )
            return r.ProgressAck(
                success=True,
                acknowledged=True,
                status="task_blocked",
                message=f"Task '{task_id}' is blocked until resolve_blocker; you are free for other work.",
                lease_expires_at=None,
                blocker_id=blocker_id,
                resolution_suggestion=suggestion,
            )

    def _complete(self, state: _TxnState, agent_id: str, row: sqlite3.Row) -> None:
        task_id = row["task_id"]
        self.conn.execute(
            "UPDATE tasks SET status = 'done', progress = 100, holder = NULL, lease_id = NULL, "
            "lease_expires_at = NULL, completed_by = ?, completed_at = ?, updated_at = ? WHERE task_id = ?",
            (agent_id, state.now, state.now, task_id),
        )
        # Exactly once per task (done is terminal), so each dependent's counter drops exactly once.
        self.conn.execute(
            "UPDATE tasks SET pending_deps = pending_deps - 1 "
            "WHERE task_id IN (SELECT task_id FROM task_deps WHERE depends_on = ?)",
            (task_id,),
        )
        self.conn.execute(
            "UPDATE agents SET tasks_completed = tasks_completed + 1 WHERE agent_id = ?", (agent_id,)
        )
        self._event(state, "completed", task_id, agent_id, row["attempt"], {"lease_id": row["lease_id"]})
        state.signals.update(("work", "lease"))

    def _insert_blocker(
        self,
        state: _TxnState,
        task_id: str,
        agent_id: str | None,
        description: str,
        severity: str,
        attempt: int | None,
    ) -> tuple[int, str]:
        suggestion = suggest_resolution(description)
        cur = self.conn.execute(
            "INSERT INTO blockers (task_id, agent_id, description, severity, resolution_suggestion, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, agent_id, description, severity, suggestion, state.now),
        )
        blocker_id = int(cur.lastrowid or 0)
        self._event(
            state, "blocked", task_id, agent_id, attempt, {"blocker_id": blocker_id, "severity": severity}
        )
        return blocker_id, suggestion

    def _block(
        self, state: _TxnState, agent_id: str, row: sqlite3.Row, description: str, severity: str
    ) -> tuple[int, str]:
        self.conn.execute(
            "UPDATE tasks SET status = 'blocked', holder = NULL, lease_id = NULL, lease_expires_at = NULL, "
            "updated_at = ? WHERE task_id = ?",
            (state.now, row["task_id"]),
        )
        state.signals.add("lease")
        return self._insert_blocker(state, row["task_id"], agent_id, description, severity, row["attempt"])

    def report_blocker(self, agent_id: str, task_id: str, description: str, severity: str) -> r.BlockerResult:
        with self._txn() as state:
            self._sweep(state)
            self._agent(agent_id, state.now)
            row = self._task(task_id)
            if row["status"] == "done":
                self._already_complete(agent_id, row)
                raise BoardError(
                    "task_already_complete",
                    f"task '{task_id}' is already done (completed by you); a done task cannot be blocked. "
                    "Call request_next_task for new work.",
                )
            if row["status"] == "blocked" and self._blocked_by(task_id) == agent_id:
                # The agent that blocked it adds detail (e.g. status=blocked, then report_blocker).
                blocker_id, suggestion = self._insert_blocker(
                    state, task_id, agent_id, description, severity, row["attempt"]
                )
            else:
                self._require_holder(state, agent_id, row, "report_blocker")
                blocker_id, suggestion = self._block(state, agent_id, row, description, severity)
            return r.BlockerResult(
                success=True,
                message=f"Blocker {blocker_id} recorded; task '{task_id}' waits for resolve_blocker "
                "and you are free for other work.",
                blocker_id=blocker_id,
                resolution_suggestion=suggestion,
            )

    def _blocked_by(self, task_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT agent_id FROM blockers WHERE task_id = ? AND resolved_at IS NULL ORDER BY blocker_id DESC LIMIT 1",
            (task_id,),
        ).fetchone()
        return None if row is None else row["agent_id"]

    def heartbeat(self, agent_id: str) -> r.HeartbeatResult:
        with self._txn() as state:
            self._sweep(state)
            self._agent(agent_id, state.now)
            held = self._held_by(agent_id)
            if held is None:
                return r.HeartbeatResult(success=True, current_task=None, lease_expires_at=None)
            expires = self._renew(state, held)
            return r.HeartbeatResult(success=True, current_task=held["task_id"], lease_expires_at=iso(expires))

    def release_task(self, agent_id: str, task_id: str, reason: str) -> r.MessageResult:
        with self._txn() as state:
            self._sweep(state)
            self._agent(agent_id, state.now)
            row = self._task(task_id)
            if row["status"] == "done" and self._already_complete(agent_id, row):
                return r.MessageResult(
                    success=True, message=f"Task '{task_id}' is already complete; nothing to release."
                )
            self._require_holder(state, agent_id, row, "release_task")
            self.conn.execute(
                "UPDATE tasks SET status = 'todo', holder = NULL, lease_id = NULL, lease_expires_at = NULL, "
                "updated_at = ? WHERE task_id = ?",
                (state.now, task_id),
            )
            self.conn.execute(
                "INSERT INTO progress_log (task_id, agent_id, attempt, status, progress, message, at) "
                "VALUES (?, ?, ?, 'released', ?, ?, ?)",
                (task_id, agent_id, row["attempt"], row["progress"], reason, state.now),
            )
            self._event(state, "released", task_id, agent_id, row["attempt"], {"reason": reason})
            state.signals.update(("work", "lease"))
            return r.MessageResult(
                success=True, message=f"Task '{task_id}' released and back in the queue with its checkpoint."
            )

    def log_artifact(
        self,
        agent_id: str,
        task_id: str,
        artifact_type: str,
        description: str,
        location: str | None,
        data: Any,
    ) -> r.ArtifactResult:
        with self._txn() as state:
            self._sweep(state)
            self._agent(agent_id, state.now)
            row = self._task(task_id)
            if not (row["status"] == "done" and row["completed_by"] == agent_id):
                if row["status"] == "done":
                    self._already_complete(agent_id, row)
                self._require_holder(state, agent_id, row, "log_artifact")
                self._renew(state, row)
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
                    state.now,
                ),
            )
            artifact_id = int(cur.lastrowid or 0)
            state.logs.append(
                ("artifact", {"task_id": task_id, "agent_id": agent_id, "artifact_id": artifact_id})
            )
            return r.ArtifactResult(success=True, artifact_id=artifact_id)

    def get_task_context(self, task_id: str) -> r.TaskContextResult:
        with self._txn() as state:
            self._sweep(state)
            row = self._task(task_id)
            log_rows = self.conn.execute(
                "SELECT * FROM (SELECT * FROM progress_log WHERE task_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (task_id, PROGRESS_LOG_LIMIT),
            ).fetchall()
            blocker_rows = self.conn.execute(
                "SELECT * FROM blockers WHERE task_id = ? ORDER BY blocker_id", (task_id,)
            ).fetchall()
            artifact_rows = self.conn.execute(
                "SELECT * FROM artifacts WHERE task_id = ? ORDER BY artifact_id", (task_id,)
            ).fetchall()
            return r.TaskContextResult(
                success=True,
                task=r.TaskDetail(
                    task_id=row["task_id"],
                    task_name=row["name"],
                    description=row["description"],
                    instructions=row["instructions"],
                    priority=row["priority"],
                    required_skills=_loads(row["required_skills"]),
                    labels=_loads(row["labels"]),
                    dependencies=_loads(row["dependencies"]),
                    pending_dependencies=row["pending_deps"],
                    estimated_hours=row["estimated_hours"],
                    payload=_loads(row["payload"]),
                    status=row["status"],
                    holder=row["holder"],
                    attempt=row["attempt"],
                    expiries=row["expiries"],
                    progress=row["progress"],
                    checkpoint=_loads(row["checkpoint"]),
                    lease_expires_at=iso(row["lease_expires_at"]),
                    completed_by=row["completed_by"],
                    completed_at=iso(row["completed_at"]),
                    created_at=iso(row["created_at"]),
                ),
                progress_log=[
                    r.ProgressEntry(
                        agent_id=p["agent_id"],
                        attempt=p["attempt"],
                        status=p["status"],
                        progress=p["progress"],
                        message=p["message"],
                        at=iso(p["at"]),
                    )
                    for p in log_rows
                ],
                blockers=[
                    r.BlockerInfo(
                        blocker_id=b["blocker_id"],
                        agent_id=b["agent_id"],
                        description=b["description"],
                        severity=b["severity"],
                        resolution_suggestion=b["resolution_suggestion"],
                        created_at=iso(b["created_at"]),
                        resolved=b["resolved_at"] is not None,
                        resolved_at=iso(b["resolved_at"]),
                        resolution=b["resolution"],
                    )
                    for b in blocker_rows
                ],
                artifacts=[self._artifact(a) for a in artifact_rows],
                dependency_artifacts=self._dependency_artifacts(task_id),
            )

    def resolve_blocker(self, task_id: str, resolution: str) -> r.ResolveResult:
        with self._txn() as state:
            self._sweep(state)
            row = self._task(task_id)
            cur = self.conn.execute(
                "UPDATE blockers SET resolved_at = ?, resolution = ? WHERE task_id = ? AND resolved_at IS NULL",
                (state.now, resolution, task_id),
            )
            resolved = cur.rowcount
            if row["status"] == "blocked":
                self.conn.execute(
                    "UPDATE tasks SET status = 'todo', attempt = 0, expiries = 0, updated_at = ? WHERE task_id = ?",
                    (state.now, task_id),
                )
                state.signals.add("work")
                message = f"Resolved {resolved} blocker(s); task '{task_id}' is back in the queue."
            else:
                message = f"Resolved {resolved} blocker(s); task '{task_id}' stays {row['status']}."
            self._event(
                state,
                "resolved",
                task_id,
                None,
                row["attempt"],
                {"resolved": resolved, "resolution": resolution},
            )
            return r.ResolveResult(success=True, message=message, resolved=resolved)

    def get_project_status(self) -> r.ProjectStatus:
        with self._txn() as state:
            self._sweep(state)
            counts = dict.fromkeys(("todo", "in_progress", "blocked", "done"), 0)
            for c in self.conn.execute("SELECT status, count(*) AS n FROM tasks GROUP BY status"):
                counts[c["status"]] = c["n"]
            total = sum(counts.values())
            agents = self._all_agents(state.now)
            workers = dict.fromkeys(("working", "idle", "offline"), 0)
            for a in agents:
                workers[a.status] += 1
            return r.ProjectStatus(
                success=True,
                project_status=r.ProjectCounts(
                    total_tasks=total,
                    **counts,
                    completion_percentage=round(100.0 * counts["done"] / total, 1) if total else 0.0,
                ),
                workers=r.WorkerCounts(total=len(agents), **workers),
            )

    def _all_agents(self, now: float) -> list[r.AgentInfo]:
        rows = self.conn.execute(
            "SELECT a.*, (SELECT t.task_id FROM tasks AS t WHERE t.holder = a.agent_id "
            "AND t.status = 'in_progress' LIMIT 1) AS current_task FROM agents AS a ORDER BY a.registered_at, a.agent_id"
        ).fetchall()
        return [self._agent_info(r, r["current_task"], now) for r in rows]

    def get_agent_status(self, agent_id: str) -> r.AgentStatus:
        with self._txn() as state:
            self._sweep(state)
            row = self.conn.execute("SELECT * FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
            if row is None:
                return r.AgentStatus(
                    success=True,
                    found=False,
                    message=f"No agent '{agent_id}' is registered; register_agent creates it.",
                )
            held = self._held_by(agent_id)
            info = self._agent_info(row, None if held is None else held["task_id"], state.now)
            return r.AgentStatus(success=True, found=True, agent_info=info)

    def list_registered_agents(self) -> r.AgentList:
        with self._txn() as state:
            self._sweep(state)
            agents = self._all_agents(state.now)
            return r.AgentList(success=True, agent_count=len(agents), agents=agents)

    # ------------------------------------------------------------------ loading

    def load_project(self, spec: ProjectSpec, label: str) -> dict[str, Any]:
        """Add the file's tasks that are not on the board yet; all or nothing."""
        with self._txn() as state:
            file_ids = {t.id for t in spec.tasks}
            on_board: dict[str, str] = {}
            wanted = file_ids | {d for t in spec.tasks for d in t.dependencies}
            ids = sorted(wanted)
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for r in self.conn.execute(
                    f"SELECT task_id, status FROM tasks WHERE task_id IN ({marks})", chunk
                ):
                    on_board[r["task_id"]] = r["status"]
            for task in spec.tasks:
                for dep in task.dependencies:
                    if dep not in file_ids and dep not in on_board:
                        raise ProjectFileError(
                            f"{label}: task '{task.id}' field 'dependencies': unknown dependency '{dep}' "
                            "(not in this file and not on the board)"
                        )
            seq_row = self.conn.execute("SELECT coalesce(max(created_seq), 0) FROM tasks").fetchone()
            seq = int(seq_row[0])
            new = [t for t in spec.tasks if t.id not in on_board]
            task_rows: list[tuple[Any, ...]] = []
            sig_rows: set[tuple[str, int]] = set()
            dep_rows: list[tuple[str, str]] = []
            for task in new:
                seq += 1
                skills_lc = sorted({s.lower() for s in task.required_skills})
                pending = sum(1 for d in task.dependencies if on_board.get(d) != "done")
                task_rows.append(
                    (
                        task.id,
                        spec.project,
                        task.name,
                        task.description,
                        task.instructions,
                        task.priority,
                        PRIORITY_RANK[task.priority],
                        dumps(task.required_skills),
                        len(skills_lc),
                        dumps(skills_lc),
                        dumps(task.labels),
                        dumps(task.dependencies),
                        pending,
                        task.estimated_hours,
                        dumps(task.payload),
                        seq,
                        state.now,
                        state.now,
                    )
                )
                sig_rows.add((dumps(skills_lc), len(skills_lc)))
                dep_rows.extend((task.id, d) for d in task.dependencies)
            self.conn.executemany(
                "INSERT INTO tasks (task_id, project, name, description, instructions, priority, priority_rank, "
                "required_skills, skill_count, skill_sig, labels, dependencies, pending_deps, estimated_hours, payload, "
                "status, created_seq, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'todo', ?, ?, ?)",
                task_rows,
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO skill_sigs (sig, skill_count) VALUES (?, ?)", sorted(sig_rows)
            )
            self.conn.executemany("INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)", dep_rows)
            self._event(
                state,
                "loaded",
                None,
                None,
                None,
                {
                    "file": label,
                    "project": spec.project,
                    "added": len(new),
                    "skipped": len(spec.tasks) - len(new),
                },
            )
            if new:
                state.signals.add("work")
            return {"added": len(new), "skipped": len(spec.tasks) - len(new), "project": spec.project}

    # ------------------------------------------------------------------ operator views

    def list_tasks(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Tasks in offer order (for `status`); read-only."""
        sql = (
            "SELECT task_id, name, status, priority, holder, attempt, progress, pending_deps, lease_expires_at, "
            "completed_by FROM tasks ORDER BY CASE status WHEN 'in_progress' THEN 0 WHEN 'blocked' THEN 1 "
            "WHEN 'todo' THEN 2 ELSE 3 END, priority_rank DESC, created_seq"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [
            {
                "task_id": r["task_id"],
                "task_name": r["name"],
                "status": r["status"],
                "priority": r["priority"],
                "holder": r["holder"],
                "attempt": r["attempt"],
                "progress": r["progress"],
                "pending_dependencies": r["pending_deps"],
                "lease_expires_at": iso(r["lease_expires_at"]),
                "completed_by": r["completed_by"],
            }
            for r in self.conn.execute(sql, params)
        ]
