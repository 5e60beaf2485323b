"""The board as the operator sees it (`python -m pm_agent_stub status`); read-only.

Not part of the wire contract: `status --json` prints `StatusReport` for scripts and
status_view.py renders it for people. It is assembled from three answers every board gives
(`get_project_status`, `list_registered_agents`, `list_tasks`), so the report reads the same
from the running stub over HTTP as from a board file opened offline.
"""

from __future__ import annotations

from pm_agent_stub.board.board import Board
from pm_protocol import results as r


class StatusReport(r.WireModel):
    source: str
    """Where the board was read: the stub's URL, or the board file."""
    project_status: r.ProjectCounts
    workers: r.WorkerCounts
    agents: list[r.AgentInfo]
    tasks: list[r.TaskSummary]
    tasks_truncated: bool


def assemble(source: str, status: r.ProjectStatus, agents: r.AgentList, tasks: r.TaskList) -> StatusReport:
    return StatusReport(
        source=source,
        project_status=status.project_status,
        workers=status.workers,
        agents=agents.agents,
        tasks=tasks.tasks,
        tasks_truncated=tasks.truncated,
    )


def list_tasks(board: Board, limit: int | None = None) -> list[r.TaskSummary]:
    """Tasks in board order: in progress, blocked, todo, done; each by priority, then load order."""
    return board.list_tasks(limit).tasks


def status_report(board: Board, *, source: str, limit: int | None) -> StatusReport:
    return assemble(source, board.get_project_status(), board.list_registered_agents(), board.list_tasks(limit))
