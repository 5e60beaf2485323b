"""`status` output for people: rich tables of the board's `StatusReport`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pm_agent_stub.board.views import StatusReport

_STATUS_STYLE = {"todo": "white", "in_progress": "cyan", "blocked": "red", "done": "green"}


def render(report: StatusReport, console: Console) -> None:
    ps = report.project_status
    workers = report.workers
    console.print(
        f"[bold]{ps.total_tasks} tasks[/]: {ps.todo} todo, {ps.in_progress} in progress, "
        f"{ps.blocked} blocked, {ps.done} done ({ps.completion_percentage}%)  |  "
        f"[bold]{workers.total} workers[/]: {workers.working} working, {workers.idle} idle, "
        f"{workers.offline} offline"
    )
    tasks = Table(title="Tasks", show_lines=False)
    for col in ("task", "status", "priority", "holder", "attempt", "progress", "waiting on"):
        tasks.add_column(col)
    for t in report.tasks:
        style = _STATUS_STYLE.get(t.status, "white")
        tasks.add_row(
            t.task_id,
            f"[{style}]{t.status}[/]",
            t.priority,
            t.holder or t.completed_by or "",
            str(t.attempt),
            f"{t.progress}%",
            str(t.pending_dependencies or ""),
        )
    if report.tasks_truncated:
        tasks.caption = f"first {len(report.tasks)} of {ps.total_tasks} (use --json --all for every task)"
    console.print(tasks)
    agents = Table(title="Workers")
    for col in ("agent", "role", "status", "current task", "done", "last seen"):
        agents.add_column(col)
    for ag in report.agents:
        agents.add_row(ag.agent_id, ag.role, ag.status, ag.current_task or "", str(ag.tasks_completed), ag.last_seen)
    console.print(agents)
