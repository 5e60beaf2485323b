"""Row → `pm_protocol` model: the one place a database row becomes a wire shape.

A task row shows in three shapes: an `Assignment` (request_next_task), a `TaskDetail`
(get_task_context) and the operator's `TaskSummary` (status). All three are built by
`task_as`, which reads each field the model declares through `TASK_FIELDS`, so a column is
named and decoded one way wherever it appears (`name` → `task_name`, JSON columns parsed,
epoch seconds → ISO-8601).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, Final, TypeVar

from pm_agent_stub.timefmt import iso
from pm_protocol import results as r

Row = sqlite3.Row
M = TypeVar("M", bound=r.WireModel)


def _column(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name]


def _json(name: str) -> Callable[[Row], Any]:
    return lambda row: None if row[name] is None else json.loads(row[name])


def _time(name: str) -> Callable[[Row], str | None]:
    return lambda row: iso(row[name])


# wire field -> how to read it from a `tasks` row
TASK_FIELDS: Final[dict[str, Callable[[Row], Any]]] = {
    "task_id": _column("task_id"),
    "task_name": _column("name"),
    "description": _column("description"),
    "instructions": _column("instructions"),
    "priority": _column("priority"),
    "required_skills": _json("required_skills"),
    "labels": _json("labels"),
    "dependencies": _json("dependencies"),
    "pending_dependencies": _column("pending_deps"),
    "estimated_hours": _column("estimated_hours"),
    "payload": _json("payload"),
    "status": _column("status"),
    "holder": _column("holder"),
    "attempt": _column("attempt"),
    "expiries": _column("expiries"),
    "progress": _column("progress"),
    "checkpoint": _json("checkpoint"),
    "lease_expires_at": _time("lease_expires_at"),
    "completed_by": _column("completed_by"),
    "completed_at": _time("completed_at"),
    "created_at": _time("created_at"),
}


def task_as(model: type[M], row: Row, **given: Any) -> M:
    """`model` from a task row: every field it declares that is not `given` is read from the row."""
    fields = {name: TASK_FIELDS[name](row) for name in model.model_fields if name not in given}
    return model(**fields, **given)


def seconds(value: float) -> int | float:
    """A duration as the wire shows it: 60, not 60.0."""
    return int(value) if float(value).is_integer() else value


def assignment(
    row: Row, *, lease_seconds: float, expires: float, dependency_artifacts: list[Row]
) -> r.Assignment:
    return task_as(
        r.Assignment,
        row,
        lease=r.Lease(lease_id=row["lease_id"], ttl_seconds=seconds(lease_seconds), expires_at=iso(expires)),
        dependency_artifacts=[artifact(a) for a in dependency_artifacts],
    )


def task_detail(row: Row) -> r.TaskDetail:
    return task_as(r.TaskDetail, row)


def artifact(row: Row) -> r.Artifact:
    return r.Artifact(
        artifact_id=row["artifact_id"],
        task_id=row["task_id"],
        agent_id=row["agent_id"],
        artifact_type=row["artifact_type"],
        description=row["description"],
        location=row["location"],
        data=None if row["data"] is None else json.loads(row["data"]),
        created_at=iso(row["created_at"]),
    )


def progress_entry(row: Row) -> r.ProgressEntry:
    return r.ProgressEntry(
        agent_id=row["agent_id"],
        attempt=row["attempt"],
        status=row["status"],
        progress=row["progress"],
        message=row["message"],
        at=iso(row["at"]),
    )


def blocker_info(row: Row) -> r.BlockerInfo:
    return r.BlockerInfo(
        blocker_id=row["blocker_id"],
        agent_id=row["agent_id"],
        description=row["description"],
        severity=row["severity"],
        resolution_suggestion=row["resolution_suggestion"],
        created_at=iso(row["created_at"]),
        resolved=row["resolved_at"] is not None,
        resolved_at=iso(row["resolved_at"]),
        resolution=row["resolution"],
    )


# wire field -> how to read it from an `agents` row
AGENT_FIELDS: Final[dict[str, Callable[[Row], Any]]] = {
    "agent_id": _column("agent_id"),
    "name": _column("name"),
    "role": _column("role"),
    "skills": _json("skills"),
    "registered_at": _time("registered_at"),
    "last_seen": _time("last_seen"),
    "tasks_completed": _column("tasks_completed"),
}


def agent_info(row: Row, *, status: r.AgentState, current_task: str | None) -> r.AgentInfo:
    fields = {name: read(row) for name, read in AGENT_FIELDS.items()}
    return r.AgentInfo(**fields, status=status, current_task=current_task)
