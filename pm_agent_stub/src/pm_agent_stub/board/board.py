"""`Board`: one method per tool of docs/protocol.md, each one `BEGIN IMMEDIATE` transaction.

A method checks who is asking, applies the rules of lifecycle.py (and order.py), and answers
with a `pm_protocol.results` model built by rows.py; the tool router (tools.py) calls each
tool's method of the same name with its arguments and dumps the answer. Methods are
synchronous and never await: in the stub they all run on one thread that owns the
connection (board_thread.py), so the event loop never waits on SQLite; tests may call them
directly. Several processes on the same file stay consistent because every call takes the
write lock before it reads. A call that raises `BoardError` is rolled back whole (only its
`fenced` audit event is kept, see txn.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from pm_agent_stub.board import checks, context, loading, reruns, rows, signature, task_list
from pm_agent_stub.board.artifacts import Artifacts
from pm_agent_stub.board.history import History
from pm_agent_stub.board.lifecycle import Lifecycle
from pm_agent_stub.board.loading import LoadOutcome
from pm_agent_stub.board.order import AssignmentOrder
from pm_agent_stub.board.roster import Roster
from pm_agent_stub.board.sql import Connection
from pm_agent_stub.board.store import Row, Store
from pm_agent_stub.board.txn import Listener, Transactions, Txn
from pm_agent_stub.errors import BoardError
from pm_agent_stub.project_file import ProjectFileError, ProjectSpec
from pm_agent_stub.timefmt import iso
from pm_protocol import results as r
from pm_protocol.limits import PAGE_LIMIT, dumps
from pm_protocol.literals import TASK_STATUSES, ReportStatus, Severity

RETRY_AFTER_SECONDS: Final = 5
UNSET: Final[Any] = object()  # "checkpoint not given", unlike an explicit null
# Where a caller finds task ids, said when the id it sent is not on the board.
WORKER_IDS: Final = "use the task_id from your assignment (request_next_task) or check get_project_status."
OPERATOR_IDS: Final = (
    "ids are case-sensitive and shown whole by `python -m pm_agent_stub status` (list_tasks)."
)


@dataclass
class AssignmentCounters:
    """How often the board looked for work for an agent: the cost a long-poll wake-up policy
    is judged by (bench/crowd.py, tests/stub/test_stub_crowd.py; served on /healthz)."""

    transactions: int = 0
    """request_next_task transactions run (each a `BEGIN IMMEDIATE` ... `COMMIT`)."""
    assigned: int = 0
    """Of those, the ones that handed out a task (renewals of a held task not counted)."""


@dataclass(frozen=True, slots=True)
class Poll:
    """One look for work for an agent: the answer, and what the long-poll needs to wait well."""

    offer: r.TaskOffer
    skills: frozenset[str]
    """The agent's skills, lower-cased: the signatures it can take (empty if it has no task
    and is unknown: then the answer is an error and nobody waits)."""
    assigned: bool
    """A task was handed out by this very call (not a renewal of one it held)."""


class Board:
    """The task board on one SQLite connection."""

    def __init__(
        self,
        conn: Connection,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        offline_seconds: float = 90.0,
        forget_seconds: float = 86400.0,
        max_agents: int = 1000,
        max_artifacts_per_task: int = 100,
        max_artifact_bytes_per_task: int = 4 * 1024 * 1024,
        max_open_blockers_per_task: int = 10,
        max_progress_per_task: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        """The SQLite connection, for SQLite-only tools and tests; the rules use `store` alone."""
        self.offline_seconds = offline_seconds
        self.store = Store(conn)
        self.history = History(
            self.store, max_open_blockers=max_open_blockers_per_task, max_progress=max_progress_per_task
        )
        self.lifecycle = Lifecycle(
            self.store, self.history, lease_seconds=lease_seconds, max_attempts=max_attempts
        )
        self.txns = Transactions(self.store, clock, before_audit=self.lifecycle.sweep)
        self.order = AssignmentOrder(self.store)
        self.counters = AssignmentCounters()
        self.roster = Roster(
            self.store, offline_seconds=offline_seconds, forget_seconds=forget_seconds, max_agents=max_agents
        )
        self.artifacts = Artifacts(
            self.store, max_per_task=max_artifacts_per_task, max_bytes_per_task=max_artifact_bytes_per_task
        )

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(Commit)` after every transaction that wrote an event or raised a signal."""
        self.txns.add_listener(listener)

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def _call(self) -> Iterator[Txn]:
        """A tool call's transaction; due leases expire first, so every answer sees them expired,
        and agents long gone are forgotten (roster.py)."""
        with self.txns.begin() as txn:
            self.lifecycle.sweep(txn)
            self.roster.forget_stale(txn)
            yield txn

    # ------------------------------------------------------------------ who is asking

    def _task(self, task_id: str, ids_from: str = WORKER_IDS) -> Row:
        """The task's row; task_not_found if unknown, saying where the caller finds ids (`ids_from`)."""
        row = self.store.task(task_id)
        if row is None:
            raise BoardError("task_not_found", f"task '{task_id}' is not on the board; {ids_from}")
        return row

    def _agent(self, agent_id: str, now: float) -> Row:
        """The agent's row, with last_seen refreshed; agent_not_registered if unknown or deregistered."""
        row = self.store.touch_agent(agent_id, now)
        if row is None:
            raise BoardError(
                "agent_not_registered",
                f"agent '{agent_id}' is not registered; call register_agent with agent_id, name, role "
                "and skills first, then retry this call.",
            )
        if row["deregistered_at"] is not None:
            raise BoardError(
                "agent_not_registered",
                f"agent '{agent_id}' deregistered at {iso(row['deregistered_at'])} (its worker stopped); "
                "call register_agent again to come back, then retry this call.",
            )
        return row

    # ------------------------------------------------------------------ leases

    def sweep(self) -> int:
        """Expire due leases now; the number of tasks that expired."""
        with self.txns.begin() as txn:
            return self.lifecycle.sweep(txn)

    def ready_counts(self) -> dict[signature.Sig, int]:
        """Offerable tasks per skill signature now (a read, outside any board call)."""
        return {signature.from_column(k): n for k, n in self.store.ready_counts().items()}

    def next_lease_expiry(self) -> float | None:
        """Earliest live lease expiry (epoch seconds), for the sweep timer."""
        return self.store.next_lease_expiry()

    # ------------------------------------------------------------------ tools

    def register_agent(self, agent_id: str, name: str, role: str, skills: list[str]) -> r.RegisterResult:
        with self._call() as txn:
            existing = self.store.agent(agent_id)
            if existing is None:
                self.roster.make_room(txn, agent_id)
            registered_at = existing["registered_at"] if existing is not None else txn.now
            skills_lc = list(signature.of(skills))
            self.store.upsert_agent(agent_id, name, role, skills, skills_lc, registered_at, txn.now)
            # No wake-up needed for new skills: this call ends the agent's own pending
            # long-polls (tools.py supersedes them), and nobody else's skills changed.
            txn.event("registered", None, agent_id, None, {"again": existing is not None})
            verb = "Re-registered" if existing is not None else "Registered"
            return r.RegisterResult(
                success=True,
                message=f"{verb} agent '{agent_id}' ({name}, {role}) with {len(skills)} skills.",
                agent_data=r.AgentData(
                    agent_id=agent_id, name=name, role=role, skills=skills, registered_at=iso(registered_at)
                ),
            )

    def request_next_task(self, agent_id: str) -> r.TaskOffer:
        return self.poll_next_task(agent_id).offer

    def poll_next_task(self, agent_id: str) -> Poll:
        """`request_next_task`, plus the agent's skills and whether a task was handed out."""
        self.counters.transactions += 1
        with self._call() as txn:
            agent = self._agent(agent_id, txn.now)
            skills = frozenset(json.loads(agent["skills_lc"]))
            held = self.store.held_by(agent_id)
            if held is not None:
                expires = self.lifecycle.renew(txn, held)
                txn.event(
                    "renewed", held["task_id"], agent_id, held["attempt"], {"lease_id": held["lease_id"]}
                )
                return Poll(self._offer(held, expires), skills, assigned=False)
            picked = self.order.best_for(skills)
            if picked is None:
                return Poll(no_task(agent_id), skills, assigned=False)
            row, expires = self.lifecycle.assign(txn, agent_id, picked["task_id"])
            self.counters.assigned += 1
            return Poll(self._offer(row, expires), skills, assigned=True)

    def _offer(self, row: Row, expires: float) -> r.TaskOffer:
        """The assignment, with the first page of its dependencies' artifacts (as get_task_context's)."""
        task_id = row["task_id"]
        # A task without dependencies has no dependency artifacts to page (one query saved).
        at: dict[str, int | None] = {"d": None} if row["dependencies"] != "[]" else {}
        first = context.pages(self.store, self.artifacts, task_id, PAGE_LIMIT, at)
        assignment = rows.assignment(
            row,
            lease_seconds=self.lifecycle.lease_seconds,
            expires=expires,
            dependency_artifacts=first.dependency_artifacts,
            more=first.next_cursor(task_id),
        )
        return r.TaskOffer(success=True, has_task=True, assignment=assignment)

    def report_task_progress(
        self,
        agent_id: str,
        task_id: str,
        status: ReportStatus,
        progress: float,
        message: str,
        checkpoint: Any = UNSET,
    ) -> r.ProgressAck:
        with self._call() as txn:
            self._agent(agent_id, txn.now)
            row = self._task(task_id)
            if row["status"] == "done" and self.lifecycle.already_complete(agent_id, row):
                return self._ack(
                    "already_complete", f"Task '{task_id}' is already complete (by you); nothing changed."
                )
            self.lifecycle.require_holder(txn, agent_id, row, f"report {status}")
            pct = round(progress)
            self.history.progress(txn, row, agent_id, status, pct, message)
            if checkpoint is not UNSET:
                self.store.set_checkpoint(task_id, checkpoint)
            if status == "in_progress":
                self.store.set_progress(task_id, pct)
                expires = self.lifecycle.renew(txn, row)
                return self._ack(
                    "progress_recorded", f"Progress {pct}% recorded for task '{task_id}'.", iso(expires)
                )
            if status == "completed":
                self.lifecycle.complete(txn, agent_id, row)
                return self._ack(
                    "task_completed", f"Task '{task_id}' marked done. Call request_next_task for more work."
                )
            blocker_id, suggestion = self.lifecycle.block(
                txn, agent_id, row, message or "blocked (no description)", "medium"
            )
            return self._ack(
                "task_blocked",
                f"Task '{task_id}' is blocked until resolve_blocker; you are free for other work.",
                blocker_id=blocker_id,
                resolution_suggestion=suggestion,
            )

    @staticmethod
    def _ack(
        status: r.ProgressAckStatus, message: str, lease_expires_at: str | None = None, **blocker: Any
    ) -> r.ProgressAck:
        return r.ProgressAck(
            success=True,
            acknowledged=True,
            status=status,
            message=message,
            lease_expires_at=lease_expires_at,
            **blocker,
        )

    def report_blocker(
        self, agent_id: str, task_id: str, blocker_description: str, severity: Severity
    ) -> r.BlockerResult:
        with self._call() as txn:
            self._agent(agent_id, txn.now)
            row = self._task(task_id)
            if row["status"] == "done":
                self.lifecycle.already_complete(agent_id, row)
                raise BoardError(
                    "task_already_complete",
                    f"task '{task_id}' is already done (completed by you); a done task cannot be blocked. "
                    "Call request_next_task for new work.",
                )
            if row["status"] == "blocked" and self.store.open_blocker_author(task_id) == agent_id:
                # The agent that blocked it adds detail (e.g. status=blocked, then report_blocker),
                # up to the cap on open blockers (history.py).
                self.history.check_blocker_room(task_id)
                blocker_id, suggestion = self.lifecycle.add_blocker(
                    txn, task_id, agent_id, blocker_description, severity, row["attempt"]
                )
            else:
                self.lifecycle.require_holder(txn, agent_id, row, "report_blocker")
                blocker_id, suggestion = self.lifecycle.block(
                    txn, agent_id, row, blocker_description, severity
                )
            return r.BlockerResult(
                success=True,
                message=f"Blocker {blocker_id} recorded; task '{task_id}' waits for resolve_blocker "
                "and you are free for other work.",
                blocker_id=blocker_id,
                resolution_suggestion=suggestion,
            )

    def heartbeat(self, agent_id: str) -> r.HeartbeatResult:
        with self._call() as txn:
            self._agent(agent_id, txn.now)
            held = self.store.held_by(agent_id)
            if held is None:
                return r.HeartbeatResult(success=True, current_task=None, lease_expires_at=None)
            expires = self.lifecycle.renew(txn, held)
            return r.HeartbeatResult(
                success=True, current_task=held["task_id"], lease_expires_at=iso(expires)
            )

    def release_task(
        self, agent_id: str, task_id: str, reason: str, count_attempt: bool = False
    ) -> r.MessageResult:
        with self._call() as txn:
            self._agent(agent_id, txn.now)
            row = self._task(task_id)
            if row["status"] == "done" and self.lifecycle.already_complete(agent_id, row):
                return r.MessageResult(
                    success=True, message=f"Task '{task_id}' is already complete; nothing to release."
                )
            self.lifecycle.require_holder(txn, agent_id, row, "release_task")
            if self.lifecycle.release(txn, agent_id, row, reason, count_attempt=count_attempt):
                return r.MessageResult(
                    success=True, message=f"Task '{task_id}' released and blocked: PM_MAX_ATTEMPTS reached."
                )
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
        with self._call() as txn:
            self._agent(agent_id, txn.now)
            row = self._task(task_id)
            if not (row["status"] == "done" and row["completed_by"] == agent_id):
                if row["status"] == "done":
                    self.lifecycle.already_complete(agent_id, row)
                self.lifecycle.require_holder(txn, agent_id, row, "log_artifact")
                self.lifecycle.renew(txn, row)
            data_json = None if data is None else dumps(data)
            self.artifacts.check_room(task_id, description, location, data_json)
            artifact_id = self.store.insert_artifact(
                task_id, agent_id, artifact_type, description, location, data_json, txn.now
            )
            txn.log("artifact", task_id=task_id, agent_id=agent_id, artifact_id=artifact_id)
            return r.ArtifactResult(success=True, artifact_id=artifact_id)

    def get_task_context(
        self, task_id: str, limit: int = PAGE_LIMIT, cursor: str | None = None
    ) -> r.TaskContextResult:
        """The task and one page of each of its four lists (context.py); `next_cursor` goes on."""
        with self._call():
            row = self._task(task_id)
            found = context.pages(
                self.store, self.artifacts, task_id, limit, context.position(task_id, cursor)
            )
            pool = checks.takers(self.store.registered_roles())
            answer = r.TaskContextResult(
                success=True,
                task=rows.task_detail(row, warnings=checks.of_row(row, pool)),
                progress_log=found.progress_log,
                blockers=found.blockers,
                artifacts=found.artifacts,
                dependency_artifacts=found.dependency_artifacts,
                progress_dropped=row["progress_dropped"],
            )
            more = found.next_cursor(task_id)
            if more is not None:  # sent only when some list has more
                answer.next_cursor = more
            return answer

    def get_artifact(self, artifact_id: int) -> r.ArtifactContent:
        with self._call():
            return r.ArtifactContent(success=True, artifact=self.artifacts.one(artifact_id))

    def deregister_agent(self, agent_id: str) -> r.MessageResult:
        with self._call() as txn:
            self._agent(agent_id, txn.now)
            held = self.store.held_by(agent_id)
            if held is not None:
                self.lifecycle.release(txn, agent_id, held, "agent deregistered (its worker stopped)")
            self.store.deregister(agent_id, txn.now)
            txn.event(
                "deregistered", None, agent_id, None, {"released": None if held is None else held["task_id"]}
            )
            tail = f"; task '{held['task_id']}' is back in the queue" if held is not None else ""
            return r.MessageResult(
                success=True,
                message=f"Agent '{agent_id}' deregistered and shown offline{tail}. Register again to come back.",
            )

    # ------------------------------------------------------------------ operator tools

    def resolve_blocker(self, task_id: str, resolution: str) -> r.ResolveResult:
        with self._call() as txn:
            row = self._task(task_id, OPERATOR_IDS)
            resolved = self.lifecycle.resolve(txn, row, resolution)
            after = "is back in the queue" if row["status"] == "blocked" else f"stays {row['status']}"
            return r.ResolveResult(
                success=True,
                message=f"Resolved {resolved} blocker(s); task '{task_id}' {after}.",
                resolved=resolved,
            )

    def get_project_status(self) -> r.ProjectStatus:
        with self._call() as txn:
            counts = dict.fromkeys(TASK_STATUSES, 0) | self.store.status_counts()
            total = sum(counts.values())
            return r.ProjectStatus(
                success=True,
                project_status=r.ProjectCounts(
                    total_tasks=total,
                    **counts,
                    completion_percentage=round(100.0 * counts["done"] / total, 1) if total else 0.0,
                ),
                workers=self.roster.counts(txn.now),
            )

    def get_agent_status(self, agent_id: str) -> r.AgentStatus:
        with self._call() as txn:
            row = self.store.agent(agent_id)
            if row is None:
                return r.AgentStatus(
                    success=True,
                    found=False,
                    message=f"No agent '{agent_id}' is registered; register_agent creates it.",
                )
            held = self.store.held_by(agent_id)
            info = self.roster.info(row, None if held is None else held["task_id"], txn.now)
            return r.AgentStatus(success=True, found=True, agent_info=info)

    def list_registered_agents(self, limit: int = PAGE_LIMIT, cursor: str | None = None) -> r.AgentList:
        with self._call() as txn:
            return self.roster.page(txn.now, limit, cursor)

    def rerun_task(self, task_id: str, reason: str, dependents: bool) -> r.RerunResult:
        """A done or blocked task (and with `dependents` its done or blocked dependents) back to the queue."""
        with self._call() as txn:
            return reruns.rerun(
                self.store, self.lifecycle, txn, self._task(task_id, OPERATOR_IDS), reason, dependents
            )

    def list_tasks(self, limit: int = PAGE_LIMIT, cursor: str | None = None) -> r.TaskList:
        """One page of the tasks in board order, each with its warnings (task_list.py)."""
        with self._call():
            return task_list.page(self.store, limit, cursor)

    # ------------------------------------------------------------------ loading

    def load_project(self, spec: ProjectSpec, label: str) -> LoadOutcome:
        """Add the file's tasks that are not on the board yet; all or nothing.

        The rows are encoded before the transaction, so the write lock is held only for the
        inserts (loading.py)."""
        prepared = loading.prepare(spec, checks.takers(self.store.registered_roles()))  # a read: no lock yet
        with self.txns.begin() as txn:
            return loading.apply(self.store, txn, prepared, label)

    def load_spec(self, spec: ProjectSpec, source: str) -> r.LoadResult:
        """The `load_project` tool, of a file already parsed (`loading.parsed_project`; the server
        parses off the board thread); a file the board refuses is `invalid_argument`."""
        try:
            return loading.result(self.load_project(spec, source), source)
        except ProjectFileError as exc:
            raise BoardError("invalid_argument", str(exc)) from None


def no_task(agent_id: str) -> r.TaskOffer:
    """The answer when nothing is offerable to the agent now."""
    return r.TaskOffer(
        success=True,
        has_task=False,
        message=f"No task is available for agent '{agent_id}' right now "
        "(none ready whose required skills you have); ask again later.",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )
