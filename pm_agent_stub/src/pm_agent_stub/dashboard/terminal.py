"""`python -m pm_agent_stub status --watch`: the dashboard's board as a live terminal view (rich Live).

The same `BoardSnapshot` the web page draws, read from the board file directly (like every
`status`), so it works next to any running stub or on a copy of its file. It redraws when
the file changes (`PRAGMA data_version`, read every 0.2 s: any process's commit) and at
least every `--interval` seconds (lease countdowns, "last seen"). Cells follow status_view's
rules: ids whole, board text shown as inert text (no markup, control characters escaped).
"""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from pm_agent_stub.board import Board
from pm_agent_stub.dashboard.snapshot import BlockerCard, BoardSnapshot, TaskCard, take_snapshot
from pm_agent_stub.db import data_version
from pm_agent_stub.status_view import (
    STATUS_STYLE,
    TableColumn,
    counts_line,
    fitted_table,
    inert,
    worker_table,
)

POLL_SECONDS = 0.2
TERMINAL_PER_COLUMN = 25
FEED_LINES = 8
_SEVERITY_STYLE = {"low": "white", "medium": "yellow", "high": "dark_orange", "critical": "bold red"}


def _seconds_until(iso: str | None, now: float) -> str:
    if iso is None:
        return ""
    left = datetime.fromisoformat(iso).timestamp() - now
    return f"{left:.0f} s" if left >= 0 else f"overdue {-left:.0f} s"


def _ago(iso: str, now: float) -> str:
    seconds = max(0, round(now - datetime.fromisoformat(iso).timestamp()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _bar(progress: int, width: int = 10) -> Text:
    filled = round(progress * width / 100)
    return Text("█" * filled + "░" * (width - filled) + f" {progress:>3}%", style="cyan")


def _state(t: TaskCard, now: float) -> Text:
    if t.status == "in_progress":
        return inert(f"lease {_seconds_until(t.lease_expires_at, now)}")
    if t.status == "todo":
        if t.waiting_on:
            return inert("waiting on " + ", ".join(t.waiting_on))
        if t.no_worker_can_take:
            needs = f" (needs {', '.join(t.required_skills)})" if t.required_skills else ""
            return inert(f"no worker online can take it{needs}", "yellow")
        return Text("ready", style="green")
    if t.status == "done" and t.completed_at is not None:
        return inert(_ago(t.completed_at, now))
    return Text("")


def render(snapshot: BoardSnapshot, console: Console, now: float | None = None) -> RenderableType:
    """The whole board as one renderable: summary, tasks, blockers, workers, recent events."""
    now = time.time() if now is None else now
    summary = Text.from_markup(
        f"{counts_line(snapshot.project_status, snapshot.workers)}   "
        f"[dim]{datetime.now().strftime('%H:%M:%S')} · Ctrl-C to quit[/]"
    )
    tasks = [t for column in snapshot.columns for t in column.tasks[:TERMINAL_PER_COLUMN]]
    hidden = sum(c.total for c in snapshot.columns) - len(tasks)
    task_table, dropped = fitted_table(
        console,
        "Tasks",
        [
            TableColumn("task", [inert(t.task_id) for t in tasks], is_id=True),
            TableColumn("status", [inert(t.status, STATUS_STYLE.get(t.status, "white")) for t in tasks]),
            TableColumn("progress", [_bar(t.progress) for t in tasks]),
            TableColumn("holder", [inert(t.holder or t.completed_by or "") for t in tasks], is_id=True),
            TableColumn("attempt", [Text(str(t.attempt)) for t in tasks]),
            TableColumn("lease / waiting", [_state(t, now) for t in tasks], wraps=True),
            TableColumn("artifacts", [Text(str(t.artifact_count or "")) for t in tasks]),
        ],
        drop_order=("artifacts", "attempt", "lease / waiting", "progress", "status"),
    )
    notes = [f"{hidden} more tasks not shown (status --json --all)"] if hidden > 0 else []
    if dropped:
        notes.append(f"{', '.join(dropped)} hidden to keep ids whole")
    task_table.caption = "; ".join(notes) or None
    parts: list[RenderableType] = [summary, task_table]
    if snapshot.blockers:
        # One row per blocked task: its newest open blocker (the list holds up to a few per task).
        newest: dict[str, BlockerCard] = {}
        for b in snapshot.blockers:
            newest.setdefault(b.task_id, b)
        blockers = list(newest.values())
        blocker_table, _ = fitted_table(
            console,
            "Open blockers",
            [
                TableColumn("task", [inert(b.task_id) for b in blockers], is_id=True),
                TableColumn(
                    "severity", [inert(b.severity, _SEVERITY_STYLE.get(b.severity, "")) for b in blockers]
                ),
                TableColumn(
                    "description",
                    [
                        inert(
                            (b.description.strip().splitlines()[0][:300] if b.description.strip() else "")
                            + (
                                f" (+{b.task_open_blockers - 1} more open: show TASK)"
                                if b.task_open_blockers > 1
                                else ""
                            )
                        )
                        for b in blockers
                    ],
                    wraps=True,
                ),
                TableColumn("suggestion", [inert(b.resolution_suggestion) for b in blockers], wraps=True),
            ],
            drop_order=("severity",),
        )
        blocker_table.caption = (
            "resolve: python -m pm_agent_stub resolve TASK --resolution TEXT (or on the dashboard)"
        )
        parts.append(blocker_table)
    agents = snapshot.agents
    agent_table, _ = worker_table(console, agents, [_ago(a.last_seen, now) for a in agents])
    parts.append(agent_table)
    events = snapshot.events[:FEED_LINES]
    if events:
        feed, _ = fitted_table(
            console,
            "Recent events",
            [
                TableColumn(
                    "at",
                    [inert(datetime.fromisoformat(e.at).astimezone().strftime("%H:%M:%S")) for e in events],
                ),
                TableColumn("event", [inert(e.kind) for e in events]),
                TableColumn("task", [inert(e.task_id or "") for e in events], is_id=True),
                TableColumn("agent", [inert(e.agent_id or "") for e in events], is_id=True),
                TableColumn("what", [inert(e.text) for e in events], wraps=True),
            ],
            drop_order=("what", "agent"),
        )
        parts.append(feed)
    return Group(*parts)


def watch(board: Board, console: Console, interval: float = 1.0) -> int:
    """Redraw the board on every change (and every `interval` s) until Ctrl-C; exit status 0."""
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            version: int | None = None
            drawn = 0.0
            while True:
                current = data_version(board.conn)
                if current != version or time.monotonic() - drawn >= interval:
                    version = current
                    live.update(
                        render(take_snapshot(board, per_column=TERMINAL_PER_COLUMN), console), refresh=True
                    )
                    drawn = time.monotonic()
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        return 0
