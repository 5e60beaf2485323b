"""The board as the operator sees it (`python -m pm_agent_stub status`); read-only.

Not part of the wire contract: `status --json` prints `StatusReport` for scripts and
status_view.py renders it for people. A task row becomes a `TaskSummary` through the same
mapping as every other task shape (rows.TASKS). Tasks and agents are both limited (the CLI
shows 200 of each unless `--all`), so `status` stays quick on a board of any size.
"""

from __future__ import annotations

import time

from pm_agent_stub.board import rows
from pm_agent_stub.board.board import Board
from pm_protocol import results as r


class TaskSummary(r.WireModel):
    task_id: str
    task_name: str
    status: r.TaskStatus
    priority: str
    holder: str | None
    attempt: int
    progress: int
    pending_dependencies: int
    lease_expires_at: str | None
    completed_by: str | None


class StatusReport(r.WireModel):
    db: str
    project_status: r.ProjectCounts
    workers: r.WorkerCounts
    agents: list[r.AgentInfo]
    agents_truncated: bool
    tasks: list[TaskSummary]
    tasks_truncated: bool


def list_tasks(board: Board, limit: int | None = None) -> list[TaskSummary]:
    """Tasks in board order: in progress, blocked, todo, done; each by priority, then load order."""
    return [rows.model_from(TaskSummary, row, rows.TASKS) for row in board.store.tasks_in_board_order(limit)]


def list_agents(board: Board, now: float, limit: int | None = None) -> list[r.AgentInfo]:
    """Agents working first, then idle, then offline; each in registration order."""
    rows_ = board.store.agents_for_status(now - board.offline_seconds, limit)
    return [board.roster.info(row, row["current_task"], now) for row in rows_]


def status_report(board: Board, *, db: str, limit: int | None, now: float | None = None) -> StatusReport:
    """The board with at most `limit` tasks and `limit` agents (None: all of them)."""
    status = board.get_project_status()
    tasks = list_tasks(board, limit)
    agents = list_agents(board, time.time() if now is None else now, limit)
    return StatusReport(
        db=db,
        project_status=status.project_status,
        workers=status.workers,
        agents=agents,
        agents_truncated=limit is not None and status.workers.total > len(agents),
        tasks=tasks,
        tasks_truncated=limit is not None and status.project_status.total_tasks > len(tasks),
    )
