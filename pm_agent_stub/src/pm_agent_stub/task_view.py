"""`show TASK` for people: one task's state, why it is blocked and what to do, what it produced.

Rendered from `get_task_context` (any board answers it), in the order an operator reads a
blocked task: what and where it is, warnings, the open blocker with the stub's suggestion,
the artifacts of each run, then the progress log. Every stored text goes through
`status_view.inert` (shown, never obeyed).
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pm_agent_stub.status_view import STATUS_STYLE, inert
from pm_protocol import results as r


def _line(*parts: tuple[str, str]) -> Text:
    text = Text()
    for value, style in parts:
        text.append_text(inert(value, style))
    return text


def render_task(ctx: r.TaskContextResult, console: Console, *, log_lines: int = 20) -> None:
    t = ctx.task
    console.print(
        _line(
            (t.task_id, "bold"),
            ("  ", ""),
            (t.status, STATUS_STYLE.get(t.status, "")),
            (f"  {t.task_name}", ""),
        )
    )
    facts = [
        f"priority {t.priority}",
        f"run {t.run}",
        f"attempt {t.attempt}",
        f"progress {t.progress}%",
    ]
    if t.holder:
        facts.append(f"held by {t.holder} until {t.lease_expires_at}")
    if t.completed_by:
        facts.append(f"done by {t.completed_by} at {t.completed_at}")
    console.print(inert("  " + " · ".join(facts)))
    console.print(inert(f"  skills: {', '.join(t.required_skills) or '(none)'}"))
    if t.dependencies:
        waiting = f" ({t.pending_dependencies} not done yet)" if t.pending_dependencies else " (all done)"
        console.print(inert(f"  depends on: {', '.join(t.dependencies)}{waiting}"))
    if t.payload:
        console.print(inert(f"  payload: {json.dumps(t.payload, ensure_ascii=False)}"))
    for warning in t.warnings:
        console.print(inert(f"  ! {warning}", "yellow"))

    open_blockers = [b for b in ctx.blockers if not b.resolved]
    closed = [b for b in ctx.blockers if b.resolved]
    if open_blockers:
        console.print(Text("\nBlocked", style="bold red"))
        for b in open_blockers:
            who = f" by {b.agent_id}" if b.agent_id else ""
            console.print(inert(f"  #{b.blocker_id} {b.severity}{who} at {b.created_at}"))
            for line in b.description.strip().splitlines()[:60]:
                console.print(inert("    " + line))
            console.print(inert(f"    suggestion: {b.resolution_suggestion}", "cyan"))
        console.print(
            inert(
                f"  next: fix the cause, then `rerun {t.task_id}` (a fresh run) or "
                f"`resolve {t.task_id} --resolution TEXT` (resume from its checkpoint)"
            )
        )
    if closed:
        console.print(Text(f"\nEarlier blockers ({len(closed)})", style="bold"))
        for b in closed:
            first = b.description.strip().splitlines()[0] if b.description.strip() else ""
            console.print(inert(f"  #{b.blocker_id} {b.severity}: {first[:160]}"))
            console.print(inert(f"    resolved at {b.resolved_at}: {b.resolution or ''}"))

    if ctx.artifacts:
        table = Table(title="Artifacts", title_justify="left")
        for header in ("run", "type", "location", "description"):
            table.add_column(header, overflow="fold")
        for a in ctx.artifacts:
            table.add_row(
                Text(str(a.run)), inert(a.artifact_type), inert(a.location or ""), inert(a.description)
            )
        console.print(table)

    log = ctx.progress_log[-log_lines:] if log_lines > 0 else []
    if log:
        shown = f"last {len(log)} of {len(ctx.progress_log)}" if len(ctx.progress_log) > len(log) else "all"
        if ctx.progress_dropped:  # a task keeps its newest PM_MAX_PROGRESS_PER_TASK entries
            shown += f"; {ctx.progress_dropped:,} older entries were dropped"
        table = Table(title=f"Progress log ({shown})", title_justify="left")
        for header in ("at", "agent", "attempt", "status", "%", "message"):
            table.add_column(header, overflow="fold")
        for p in log:
            table.add_row(
                inert(p.at),
                inert(p.agent_id),
                Text(str(p.attempt)),
                inert(p.status),
                Text(str(p.progress)),
                inert(p.message[:500]),
            )
        console.print(table)
