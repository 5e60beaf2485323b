"""The board as the dashboard shows it: one `BoardSnapshot`, for the web page and `status --watch`.

Built from the operator views `status` uses (`get_project_status`, `Roster.by_status`) plus
bounded reads of store.py, all through indexes, so its cost follows what is shown, not the
size of the board: at most `PER_COLUMN` tasks per status (with each column's total), the
worst (then newest) `BLOCKERS_PER_TASK` open blockers of each of up to `BLOCKED_TASKS` blocked
tasks (worst severity first, each saying how many its task has open: one task's blockers can
never push another task's off the page), the newest artifacts of each shown task (never their data),
`MAX_AGENTS` workers (working first; the counts cover all), and the newest events (without
`renewed`, which only says a worker asked again).
Texts are shown as they are stored; the page inserts every one as text, never as HTML.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any, Final

from pm_agent_stub.board import Board, rows
from pm_agent_stub.db import read_transaction
from pm_agent_stub.timefmt import iso
from pm_protocol import results as r
from pm_protocol.literals import BOARD_ORDER

PER_COLUMN: Final = 50
BLOCKED_TASKS: Final = 100
BLOCKERS_PER_TASK: Final = 3
MAX_EVENTS: Final = 60
MAX_AGENTS: Final = 200
ARTIFACTS_PER_TASK: Final = 5
FEED_SKIPS: Final = ("renewed",)
COLUMN_ORDER: Final = BOARD_ORDER


class ArtifactLine(r.WireModel):
    artifact_id: int
    agent_id: str
    artifact_type: str
    description: str
    location: str | None
    created_at: str


class TaskCard(r.WireModel):
    task_id: str
    task_name: str
    status: r.TaskStatus
    priority: str
    required_skills: list[str]
    holder: str | None
    attempt: int
    progress: int
    pending_dependencies: int
    waiting_on: list[str]
    lease_expires_at: str | None
    completed_by: str | None
    completed_at: str | None
    artifact_count: int
    artifacts: list[ArtifactLine]
    no_worker_can_take: bool = False
    """A todo task that waits on nothing, but no worker online (working or idle) has every skill it
    requires: it is not "ready" in any sense a person watching means (it waits for such a worker)."""


class Column(r.WireModel):
    status: r.TaskStatus
    total: int
    tasks: list[TaskCard]


class BlockerCard(r.WireModel):
    blocker_id: int
    task_id: str
    task_name: str
    agent_id: str | None
    severity: str
    description: str
    description_length: int
    resolution_suggestion: str
    created_at: str
    task_open_blockers: int
    """Open blockers of its task in all (the page shows the newest `BLOCKERS_PER_TASK`)."""


class FeedEvent(r.WireModel):
    id: int
    kind: str
    task_id: str | None
    agent_id: str | None
    attempt: int | None
    at: str
    text: str


class BoardSnapshot(r.WireModel):
    now: str
    lease_seconds: float
    offline_seconds: float
    project_status: r.ProjectCounts
    workers: r.WorkerCounts
    columns: list[Column]
    blockers: list[BlockerCard]
    agents: list[r.AgentInfo]
    events: list[FeedEvent]


def take_snapshot(board: Board, *, per_column: int = PER_COLUMN, now: float | None = None) -> BoardSnapshot:
    """The board now; the reads after the counts share one read transaction."""
    status = board.get_project_status()
    now = time.time() if now is None else now
    store = board.store
    with read_transaction(board.conn):
        agents = board.roster.by_status(now, MAX_AGENTS)
        task_rows = {s: store.tasks_with_status(s, per_column) for s in COLUMN_ORDER}
        shown = [row["task_id"] for rs in task_rows.values() for row in rs]
        waiting: dict[str, list[str]] = defaultdict(list)
        waiting_ids = [row["task_id"] for row in task_rows["todo"] if row["pending_deps"]]
        for dep in store.unfinished_dependencies(waiting_ids):
            waiting[dep["task_id"]].append(dep["depends_on"])
        artifacts: dict[str, list[ArtifactLine]] = defaultdict(list)
        artifact_counts: dict[str, int] = {}
        for a in store.latest_artifacts(shown, ARTIFACTS_PER_TASK):
            artifacts[a["task_id"]].append(rows.model_from(ArtifactLine, a, rows.ARTIFACTS))
            artifact_counts[a["task_id"]] = a["count"]
        blockers = [
            rows.model_from(BlockerCard, b, rows.BLOCKERS, task_open_blockers=b["open_count"])
            for b in store.open_blockers(BLOCKED_TASKS, BLOCKERS_PER_TASK)
        ]
        events = [_feed_event(e) for e in store.recent_events(MAX_EVENTS, FEED_SKIPS)]
    counts = status.project_status
    takers = _online_skill_sets(agents)
    columns = [
        Column(
            status=s,
            total=getattr(counts, s),
            tasks=[
                rows.model_from(
                    TaskCard,
                    row,
                    rows.TASKS,
                    waiting_on=waiting.get(row["task_id"], []),
                    artifact_count=artifact_counts.get(row["task_id"], 0),
                    artifacts=artifacts.get(row["task_id"], []),
                    no_worker_can_take=_nobody_can_take(row, takers),
                )
                for row in task_rows[s]
            ],
        )
        for s in COLUMN_ORDER
    ]
    return BoardSnapshot(
        now=iso(now),
        lease_seconds=board.lifecycle.lease_seconds,
        offline_seconds=board.offline_seconds,
        project_status=counts,
        workers=status.workers,
        columns=columns,
        blockers=blockers,
        agents=agents,
        events=events,
    )


def _online_skill_sets(agents: list[r.AgentInfo]) -> list[frozenset[str]] | None:
    """Each online agent's skills (lower-cased), or None when more agents are online than shown
    (the list is working first, then idle, then offline: a full list ending online may go on)."""
    if len(agents) >= MAX_AGENTS and agents[-1].status != "offline":
        return None
    return [frozenset(s.lower() for s in a.skills) for a in agents if a.status != "offline"]


def _nobody_can_take(row: Any, takers: list[frozenset[str]] | None) -> bool:
    if takers is None or row["status"] != "todo" or row["pending_deps"]:
        return False
    need = {s.lower() for s in json.loads(row["required_skills"] or "[]")}
    return not any(need <= skills for skills in takers)


def _feed_event(row: Any) -> FeedEvent:
    detail = json.loads(row["detail"] or "{}")
    return FeedEvent(
        id=row["id"],
        kind=row["kind"],
        task_id=row["task_id"],
        agent_id=row["agent_id"],
        attempt=row["attempt"],
        at=iso(row["at"]),
        text=describe(row["kind"], detail, row["attempt"]),
    )


def describe(kind: str, detail: dict[str, Any], attempt: int | None = None) -> str:
    """One line saying what an event means, from its detail (the feed's text column)."""
    if kind in ("assigned", "completed"):
        return f"attempt {attempt}" if attempt else ""
    if kind == "expired":
        return f"lease expired ({detail.get('expiries', '?')} expiries so far)"
    if kind == "blocked":
        return f"blocked, severity {detail.get('severity', '?')} (blocker {detail.get('blocker_id', '?')})"
    if kind == "released":
        return f"released: {detail.get('reason', '')}"
    if kind == "resolved":
        return f"resolved {detail.get('resolved', 0)} blocker(s): {detail.get('resolution', '')}"
    if kind == "fenced":
        return f"refused ({detail.get('doing', '?')}): the task was {detail.get('task_status', '?')}"
    if kind == "loaded":
        return (
            f"loaded {detail.get('added', 0)} task(s) from {detail.get('file', '?')} "
            f"({detail.get('skipped', 0)} already on the board)"
        )
    if kind == "forgotten":
        return f"forgotten: {detail.get('why', '?')} (last seen {detail.get('last_seen', '?')})"
    if kind == "rerun":
        reason = f": {detail['reason']}" if detail.get("reason") else ""
        return f"rerun as run {detail.get('run', '?')} (it was {detail.get('was', '?')}){reason}"
    if kind == "deregistered":
        held = detail.get("released")
        return f"deregistered (stopped), task {held} back in the queue" if held else "deregistered (stopped)"
    if kind == "registered":
        return "registered again" if detail.get("again") else "registered"
    return kind
