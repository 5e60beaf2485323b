"""Row → `pm_protocol` model: the one place a database row becomes a wire shape.

Each table's `Columns` says how its columns become wire fields: a field reads the column of
the same name unless `renamed`, JSON columns are parsed, epoch-second columns become
ISO-8601. `model_from` builds any model from a row by reading every field the model
declares, so a column is named and decoded one way wherever it shows. A task row becomes an
`Assignment` (request_next_task), a `TaskDetail` (get_task_context) or the operator's
`TaskSummary` (list_tasks, the `status` view), all through `TASKS`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pm_agent_stub.board.sql import Row
from pm_agent_stub.timefmt import iso
from pm_protocol import results as r

M = TypeVar("M", bound=r.WireModel)


@dataclass(frozen=True)
class Columns:
    """How one table's columns read as wire fields."""

    json: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()
    renamed: Mapping[str, str] = field(default_factory=dict)  # wire field -> column

    def read(self, row: Row, name: str) -> Any:
        value = row[self.renamed.get(name, name)]
        if name in self.json:
            return None if value is None else json.loads(value)
        if name in self.times:
            return iso(value)
        return value


TASKS = Columns(
    json=frozenset({"required_skills", "labels", "dependencies", "payload", "checkpoint"}),
    times=frozenset({"lease_expires_at", "completed_at", "created_at"}),
    renamed={"task_name": "name", "pending_dependencies": "pending_deps"},
)
AGENTS = Columns(json=frozenset({"skills"}), times=frozenset({"registered_at", "last_seen"}))
ARTIFACTS = Columns(times=frozenset({"created_at"}))  # `data` lives in its own table, given
PROGRESS = Columns(times=frozenset({"at"}))
BLOCKERS = Columns(times=frozenset({"created_at", "resolved_at"}))


def model_from(
    model: type[M], row: Row, columns: Columns, *, unset: frozenset[str] = frozenset(), **given: Any
) -> M:
    """`model` from a row: every field it declares that is not `given` (nor left `unset`, at its
    default and so not sent) is read through `columns`."""
    fields = {
        name: columns.read(row, name)
        for name in model.model_fields
        if name not in given and name not in unset
    }
    return model(**fields, **given)


def seconds(value: float) -> int | float:
    """A duration as the wire shows it: 60, not 60.0."""
    return int(value) if float(value).is_integer() else value


def assignment(
    row: Row,
    *,
    lease_seconds: float,
    expires: float,
    dependency_artifacts: list[r.Artifact],
    more: str | None,
) -> r.Assignment:
    lease = r.Lease(lease_id=row["lease_id"], ttl_seconds=seconds(lease_seconds), expires_at=iso(expires))
    # `dependency_artifacts_next` is sent only when there is more: left unset otherwise.
    paging: dict[str, Any] = (
        {"unset": frozenset({"dependency_artifacts_next"})}
        if more is None
        else {"dependency_artifacts_next": more}
    )
    return model_from(
        r.Assignment, row, TASKS, lease=lease, dependency_artifacts=dependency_artifacts, **paging
    )


def task_detail(row: Row, *, warnings: list[str]) -> r.TaskDetail:
    return model_from(r.TaskDetail, row, TASKS, warnings=warnings)


def task_summary(row: Row, *, warnings: list[str], waiting_on: list[str]) -> r.TaskSummary:
    return model_from(r.TaskSummary, row, TASKS, warnings=warnings, waiting_on=waiting_on)


def artifact(row: Row, data_json: str | None, *, included: bool) -> r.Artifact:
    """An artifact's metadata, with its data (JSON text, None for none) when `included`."""
    data = json.loads(data_json) if included and data_json is not None else None
    return model_from(r.Artifact, row, ARTIFACTS, data=data, data_included=included)


def progress_entry(row: Row) -> r.ProgressEntry:
    return model_from(r.ProgressEntry, row, PROGRESS)


def blocker_info(row: Row) -> r.BlockerInfo:
    return model_from(r.BlockerInfo, row, BLOCKERS, resolved=row["resolved_at"] is not None)


def agent_info(row: Row, *, status: r.AgentState, current_task: str | None) -> r.AgentInfo:
    return model_from(r.AgentInfo, row, AGENTS, status=status, current_task=current_task)
