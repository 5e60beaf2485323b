"""The board as the operator sees it (`python -m pm_agent_stub status`); read-only.

Not part of the wire contract: `status --json` prints `StatusReport` for scripts and
status_view.py renders it for people. A task row becomes a `TaskSummary` through the same
mapping as every other task shape (rows.TASKS).
"""

from __future__ import annotations

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
    tasks: list[TaskSummary]
    tasks_truncated: bool


def list_tasks(board: Board, limit: int | None = None) -> list[TaskSummary]:
    """Tasks in board order: in progress, blocked, todo, done; each by priority, then load order."""
    return [rows.model_from(TaskSummary, row, rows.TASKS) for row in board.store.tasks_in_board_order(limit)]


def status_report(board: Board, *, db: str, limit: int | None) -> StatusReport:
    status = board.get_project_status()
    tasks = list_tasks(board, limit)
    return StatusReport(
        db=db,
        project_status=status.project_status,
        workers=status.workers,
        agents=board.list_registered_agents().agents,
        tasks=tasks,
        tasks_truncated=limit is not None and status.project_status.total_tasks > len(tasks),
    )
