"""`status` output for people: rich tables of the board's `StatusReport`.

Two rules for a terminal:

- Ids stay whole. A task or agent id is what the operator types next (`resolve TASK`,
  `docker compose logs`), so id columns never shrink; when the table is too wide for the
  terminal, free text (role, last seen) wraps and then columns are dropped, least useful
  first, and the caption says which. Only if the ids alone do not fit do they fold onto
  more lines, still never cut.
- What the board stores is shown, never obeyed. Names, roles and ids come from workers and
  project files; every cell is a `Text` (rich markup like `[red]` is not parsed) with
  control characters shown as escapes (`\\x1b`), so a registered name cannot move the
  cursor, clear the screen or set the clipboard (`ESC ] 52`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pm_agent_stub.status_report import StatusReport
from pm_protocol.results import AgentInfo, ProjectCounts, TaskSummary, WorkerCounts

STATUS_STYLE = {"todo": "white", "in_progress": "cyan", "blocked": "red", "done": "green"}


def inert(value: str, style: str = "") -> Text:
    """`value` as plain text: no markup, control characters (and other unprintables) escaped."""
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value)
    return Text(shown, style=style)


def counts_line(ps: ProjectCounts, workers: WorkerCounts) -> str:
    """The board in one line of rich markup, heading `status` and `status --watch`."""
    return (
        f"[bold]{ps.total_tasks} tasks[/]: {ps.todo} todo, {ps.in_progress} in progress, "
        f"{ps.blocked} blocked, {ps.done} done ({ps.completion_percentage}%)  |  "
        f"[bold]{workers.total} workers[/]: {workers.working} working, {workers.idle} idle, "
        f"{workers.offline} offline"
    )


@dataclass(frozen=True)
class TableColumn:
    """A column and its cells. `is_id`: never dropped, never cut. `wraps`: free text that may
    fold onto more lines; any other column keeps each value on one line or is dropped."""

    header: str
    cells: list[Text]
    is_id: bool = False
    wraps: bool = False


def fitted_table(
    console: Console, title: str, columns: Sequence[TableColumn], drop_order: Sequence[str]
) -> tuple[Table, list[str]]:
    """The table with as many columns as fit `console.width` with every id whole; (table, dropped)."""
    dropped: list[str] = []
    unbounded = console.options.update_width(1_000_000)
    while True:
        kept = [c for c in columns if c.header not in dropped]
        table = _table(title, kept, ids_fold=False)
        if Measurement.get(console, unbounded, table).minimum <= console.width:
            return table, dropped
        left = [h for h in drop_order if h not in dropped]
        if not left:  # the ids alone are wider than the terminal: fold them, never cut them
            return _table(title, kept, ids_fold=True), dropped
        dropped.append(left[0])


def _table(title: str, columns: Sequence[TableColumn], *, ids_fold: bool) -> Table:
    table = Table(title=title)
    for c in columns:
        if c.wraps or (c.is_id and ids_fold):
            table.add_column(c.header, overflow="fold")
        else:
            widest = max([len(c.header), *(cell.cell_len for cell in c.cells)])
            table.add_column(c.header, no_wrap=True, min_width=widest)
    for row in zip(*(c.cells for c in columns), strict=True):
        table.add_row(*row)
    return table


def worker_table(
    console: Console, agents: Sequence[AgentInfo], last_seen: Sequence[str]
) -> tuple[Table, list[str]]:
    """The workers table of `status` and `status --watch` (which shows `last_seen` as "3 s ago")."""
    return fitted_table(
        console,
        "Workers",
        [
            TableColumn("agent", [inert(a.agent_id) for a in agents], is_id=True),
            TableColumn("role", [inert(a.role) for a in agents], wraps=True),
            TableColumn("status", [inert(a.status) for a in agents]),
            TableColumn("current task", [inert(a.current_task or "") for a in agents], is_id=True),
            TableColumn("done", [Text(str(a.tasks_completed)) for a in agents]),
            TableColumn("last seen", [inert(seen) for seen in last_seen], wraps=True),
        ],
        drop_order=("last seen", "done", "role", "status"),
    )


def _caption(parts: list[str], dropped: list[str]) -> str | None:
    if dropped:
        parts = [*parts, f"{', '.join(dropped)} hidden to keep ids whole (widen the terminal or use --json)"]
    return "; ".join(parts) or None


def _note(task: TaskSummary) -> Text:
    """The head of the task's first warning (`show TASK` has them whole)."""
    if not task.warnings:
        return Text("")
    more = f" (+{len(task.warnings) - 1})" if len(task.warnings) > 1 else ""
    return inert("! " + task.warnings[0].split(": ", 1)[0] + more, "yellow")


WAITING_SHOWN = 3


def _waiting_on(task: TaskSummary) -> Text:
    """The dependencies a todo task waits on, by id as the dashboard names them (the first few;
    `show TASK` lists them all); a board that sends no names gets the count."""
    names = task.waiting_on
    if not names:
        return Text(str(task.pending_dependencies or ""))
    more = len(names) - WAITING_SHOWN
    return inert(", ".join(names[:WAITING_SHOWN]) + (f" (+{more} more)" if more > 0 else ""))


def render(report: StatusReport, console: Console) -> None:
    ps = report.project_status
    workers = report.workers
    console.print(f"{counts_line(ps, workers)}  |  {report.source}")
    tasks = report.tasks
    notes = (
        [TableColumn("note", [_note(t) for t in tasks], wraps=True)] if any(t.warnings for t in tasks) else []
    )
    task_table, dropped = fitted_table(
        console,
        "Tasks",
        [
            TableColumn("task", [inert(t.task_id) for t in tasks], is_id=True),
            TableColumn("status", [inert(t.status, STATUS_STYLE.get(t.status, "white")) for t in tasks]),
            TableColumn("priority", [inert(t.priority) for t in tasks]),
            TableColumn("holder", [inert(t.holder or t.completed_by or "") for t in tasks], is_id=True),
            TableColumn("attempt", [Text(str(t.attempt)) for t in tasks]),
            TableColumn("progress", [Text(f"{t.progress}%") for t in tasks]),
            TableColumn("waiting on", [_waiting_on(t) for t in tasks], wraps=True),
            *notes,
        ],
        drop_order=("note", "attempt", "waiting on", "priority", "progress", "status"),
    )
    truncated = [f"first {len(tasks)} of {ps.total_tasks} (use --json --all for every task)"]
    task_table.caption = _caption(truncated if report.tasks_truncated else [], dropped)
    console.print(task_table)
    agents = report.agents
    agent_table, dropped = worker_table(console, agents, [a.last_seen for a in agents])
    shown = [
        f"first {len(agents)} of {workers.total} registered, shown working, then idle, then offline "
        "(use --json --all for every agent)"
    ]
    agent_table.caption = _caption(shown if report.agents_truncated else [], dropped)
    console.print(agent_table)
