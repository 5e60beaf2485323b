"""The protocol's closed vocabularies, each once: a `Literal` type and the tuple derived from it.

Code that needs the values (a metric's label set, a CLI's choices, a zero for every status)
takes the tuple; code that holds one value is typed with the Literal, so mypy catches a
misspelt status anywhere. Nothing outside this package spells these lists again.
(Error codes are the same kind of thing and live with the error shape: `errors.ERROR_CODES`.)
"""

from __future__ import annotations

from typing import Final, Literal, get_args

TaskStatus = Literal["todo", "in_progress", "blocked", "done"]
TASK_STATUSES: Final[tuple[TaskStatus, ...]] = get_args(TaskStatus)
BOARD_ORDER: Final[tuple[TaskStatus, ...]] = ("in_progress", "blocked", "todo", "done")
"""The operator's order of a board (`list_tasks`, `status`, the dashboard's columns): what needs
a look first."""

AgentState = Literal["working", "idle", "offline"]
AGENT_STATES: Final[tuple[AgentState, ...]] = get_args(AgentState)

Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
PRIORITY_RANK: Final[dict[str, int]] = {p: rank for rank, p in enumerate(PRIORITIES)}
"""Higher is offered first; stored with each task (`tasks.priority_rank`)."""

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)

ReportStatus = Literal["in_progress", "completed", "blocked"]
"""What `report_task_progress` reports."""
REPORT_STATUSES: Final[tuple[ReportStatus, ...]] = get_args(ReportStatus)

ProgressAckStatus = Literal["progress_recorded", "task_completed", "task_blocked", "already_complete"]
