"""Result models: what each tool answers on success (failures are `ErrorResult`).

One rule makes a model the exact wire shape: a field without a default is always sent;
a field with a default is sent only when the server set it (`WireModel.wire()` dumps with
`exclude_unset`). So `TaskOffer` carries `assignment` only when there is a task, and
`message`/`retry_after_seconds` only when there is none, exactly as docs/protocol.md shows.

Unknown fields are kept, not refused (`extra="allow"`): a newer stub may add a field and an
older worker must keep working. `pm_protocol.conformance` checks the other direction, that
the stub sends nothing the package does not declare.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from pm_protocol.literals import AgentState, Priority, ProgressAckStatus, ReportStatus, Severity, TaskStatus

# Seconds the stub may send as a whole number: `int | float` keeps 60 as 60 on the wire (a bare
# `float` would turn it into 60.0, which a client decoding into an integer refuses).
Seconds = int | float


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    def wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire: every required field, optional ones only if set."""
        return self.model_dump(mode="json", exclude_unset=True)


# -- pieces ------------------------------------------------------------------------


class AgentData(WireModel):
    agent_id: str
    name: str
    role: str
    skills: list[str]
    registered_at: str


class Lease(WireModel):
    lease_id: str
    ttl_seconds: Seconds
    expires_at: str


class Artifact(WireModel):
    """An artifact as lists show it: always its metadata, its `data` only when small.

    `size` is the bytes of `data` as compact JSON (0: no data). In lists (assignments,
    `get_task_context`) `data` is inline only within `limits.INLINE_DATA_BYTES` and the
    list's `limits.INLINE_BUDGET_BYTES`; otherwise `data` is null, `data_included` false,
    and `get_artifact(artifact_id)` returns the whole artifact. The defaults read an older
    server's answer, which had neither field and always sent the data.
    """

    artifact_id: int
    task_id: str
    agent_id: str
    artifact_type: str
    description: str
    location: str | None
    data: JsonValue
    created_at: str
    size: int | None = None
    data_included: bool = True
    run: int = 1
    """Which run of its task logged it (1, then one more per `rerun_task`)."""


class Assignment(WireModel):
    """The task a worker was given; `lease` is None only where the server has no leases."""

    task_id: str
    task_name: str
    description: str = ""
    instructions: str = ""
    priority: str = "medium"
    required_skills: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list)
    estimated_hours: float | None = None
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    attempt: int = 1
    lease: Lease | None = None
    checkpoint: JsonValue = None
    dependency_artifacts: list[Artifact] = Field(default_factory=list)
    dependency_artifacts_next: str | None = None
    """Sent only when `dependency_artifacts` is one page of more: `get_task_context(task_id,
    cursor=this)` continues it."""


class AgentInfo(WireModel):
    agent_id: str
    name: str
    role: str
    skills: list[str]
    registered_at: str
    status: AgentState
    current_task: str | None
    last_seen: str
    tasks_completed: int


class ProjectCounts(WireModel):
    total_tasks: int
    todo: int
    in_progress: int
    blocked: int
    done: int
    completion_percentage: float


class WorkerCounts(WireModel):
    total: int
    working: int
    idle: int
    offline: int


class TaskDetail(WireModel):
    """A task as `get_task_context` shows it: the assignment's fields plus its state."""

    task_id: str
    task_name: str
    description: str
    instructions: str
    priority: str
    required_skills: list[str]
    labels: list[str]
    dependencies: list[str]
    pending_dependencies: int
    estimated_hours: float | None
    payload: dict[str, JsonValue]
    status: TaskStatus
    holder: str | None
    attempt: int
    expiries: int
    progress: int
    checkpoint: JsonValue
    lease_expires_at: str | None
    completed_by: str | None
    completed_at: str | None
    created_at: str
    run: int = 1
    """1, then one more each time `rerun_task` put the task back in the queue."""
    warnings: list[str] = Field(default_factory=list)
    """Why no worker may ever take it, or why the wrong one might (docs/protocol.md, "Load-time checks")."""


class TaskSummary(WireModel):
    """One task in a `list_tasks` answer: what the operator's `status` table shows."""

    task_id: str
    task_name: str
    status: TaskStatus
    priority: str
    holder: str | None
    attempt: int
    progress: int
    pending_dependencies: int
    lease_expires_at: str | None
    completed_by: str | None
    run: int = 1
    warnings: list[str] = Field(default_factory=list)
    waiting_on: list[str] = Field(default_factory=list)
    """A todo task's dependencies that are not done yet, by id (what `pending_dependencies` counts)."""


class ProgressEntry(WireModel):
    agent_id: str
    attempt: int
    status: str  # a ReportStatus, or "released"
    progress: int
    message: str
    at: str


class BlockerInfo(WireModel):
    blocker_id: int
    agent_id: str | None
    description: str
    severity: Severity
    resolution_suggestion: str
    created_at: str
    resolved: bool
    resolved_at: str | None
    resolution: str | None


# -- one result per tool --------------------------------------------------------------


class RegisterResult(WireModel):
    success: Literal[True]
    message: str
    agent_data: AgentData


class TaskOffer(WireModel):
    """`has_task` with an `assignment`, or no task with a `message` and when to ask again."""

    success: Literal[True]
    has_task: bool
    assignment: Assignment | None = None
    message: str = ""
    retry_after_seconds: Seconds | None = None


class ProgressAck(WireModel):
    success: Literal[True]
    acknowledged: bool
    status: ProgressAckStatus
    message: str
    lease_expires_at: str | None
    blocker_id: int | None = None
    resolution_suggestion: str | None = None


class BlockerResult(WireModel):
    success: Literal[True]
    message: str
    blocker_id: int | None
    resolution_suggestion: str


class HeartbeatResult(WireModel):
    success: Literal[True]
    current_task: str | None
    lease_expires_at: str | None


class ArtifactResult(WireModel):
    success: Literal[True]
    artifact_id: int


class MessageResult(WireModel):
    """`release_task` (and other acknowledgements that only say what happened)."""

    success: Literal[True]
    message: str


class ResolveResult(WireModel):
    success: Literal[True]
    message: str
    resolved: int


class ProjectStatus(WireModel):
    success: Literal[True]
    project_status: ProjectCounts
    workers: WorkerCounts


class AgentStatus(WireModel):
    success: Literal[True]
    found: bool
    agent_info: AgentInfo | None = None
    message: str = ""


class AgentList(WireModel):
    """One page of the registered agents (registration order); `agent_count` counts them all."""

    success: Literal[True]
    agent_count: int
    agents: list[AgentInfo]
    next_cursor: str | None = None


class Pong(WireModel):
    success: Literal[True]
    pong: Literal[True]
    status: Literal["online"]
    uptime_seconds: float
    echo: str | None


class LoadWarning(WireModel):
    task_id: str
    warning: str


class LoadResult(WireModel):
    """`load_project` (operator): what the file added; tasks already on the board are left alone."""

    success: Literal[True]
    message: str
    project: str | None
    added: int
    skipped: int
    warnings: list[LoadWarning]


class TaskList(WireModel):
    """`list_tasks` (operator): one page of the tasks in board order (in progress, blocked, todo,
    done; each by priority, then load order); `total` counts them all."""

    success: Literal[True]
    total: int
    tasks: list[TaskSummary]
    next_cursor: str | None = None


class RerunResult(WireModel):
    """`rerun_task` (operator): which tasks went back to the queue, and which dependents did not."""

    success: Literal[True]
    message: str
    requeued: list[str]
    waiting: list[str]
    """Dependents in the queue that now wait for the rerun task(s) to be done again."""
    not_rerun: list[str]
    """Dependents that are done or running on the previous run's results (rerun them too with dependents)."""


class TaskContextResult(WireModel):
    """A task with one page of each of its lists; `next_cursor` (sent only when some list has
    more) asks for the next page of every list that has more (the others come back empty).

    `progress_log` and `blockers` page back in time (the first page holds the newest
    entries); `artifacts` and `dependency_artifacts` page forward from the oldest. Within a
    page every list is oldest first.
    """

    success: Literal[True]
    task: TaskDetail
    progress_log: list[ProgressEntry]
    blockers: list[BlockerInfo]
    artifacts: list[Artifact]
    dependency_artifacts: list[Artifact]
    progress_dropped: int = 0
    """How many of the task's oldest progress entries are gone: a task keeps its newest
    `PM_MAX_PROGRESS_PER_TASK` (the stub always sends it; absent from older servers)."""
    next_cursor: str | None = None


class ArtifactContent(WireModel):
    """`get_artifact`: one artifact with its data, whatever its size (at most 256 KiB)."""

    success: Literal[True]
    artifact: Artifact


__all__ = [
    "AgentData",
    "AgentInfo",
    "AgentList",
    "AgentState",
    "AgentStatus",
    "Artifact",
    "ArtifactContent",
    "ArtifactResult",
    "Assignment",
    "BlockerInfo",
    "BlockerResult",
    "HeartbeatResult",
    "Lease",
    "LoadResult",
    "LoadWarning",
    "MessageResult",
    "Pong",
    "Priority",
    "ProgressAck",
    "ProgressAckStatus",
    "ProgressEntry",
    "ProjectCounts",
    "ProjectStatus",
    "RegisterResult",
    "ReportStatus",
    "RerunResult",
    "ResolveResult",
    "Seconds",
    "TaskContextResult",
    "TaskDetail",
    "TaskList",
    "TaskOffer",
    "TaskStatus",
    "TaskSummary",
    "WireModel",
    "WorkerCounts",
]
