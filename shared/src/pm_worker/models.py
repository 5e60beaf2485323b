"""Typed results of the PM Agent tools (docs/protocol.md).

Extra fields are kept, not refused: a newer stub may add fields and an older worker
must keep working.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow")


class AgentData(_Result):
    agent_id: str
    name: str = ""
    role: str = ""
    skills: list[str] = Field(default_factory=list)
    registered_at: str | None = None


class RegisterResult(_Result):
    success: bool
    message: str = ""
    agent_data: AgentData


class Lease(_Result):
    lease_id: str
    ttl_seconds: float
    expires_at: str


class Artifact(_Result):
    artifact_id: int | None = None
    task_id: str | None = None
    agent_id: str | None = None
    artifact_type: str
    description: str = ""
    location: str | None = None
    data: Any = None
    created_at: str | None = None


class Assignment(_Result):
    task_id: str
    task_name: str
    description: str = ""
    instructions: str = ""
    priority: str = "medium"
    required_skills: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list)
    estimated_hours: float | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 1
    lease: Lease | None = None
    checkpoint: Any = None
    dependency_artifacts: list[Artifact] = Field(default_factory=list)


class TaskOffer(_Result):
    has_task: bool
    assignment: Assignment | None = None
    message: str = ""
    retry_after_seconds: float | None = None


class ProgressAck(_Result):
    acknowledged: bool = True
    status: str = "progress_recorded"
    message: str = ""
    lease_expires_at: str | None = None
    blocker_id: int | None = None
    resolution_suggestion: str | None = None


class BlockerResult(_Result):
    success: bool = True
    message: str = ""
    blocker_id: int | None = None
    resolution_suggestion: str = ""


class HeartbeatResult(_Result):
    success: bool = True
    current_task: str | None = None
    lease_expires_at: str | None = None


class ArtifactResult(_Result):
    success: bool = True
    artifact_id: int


class SimpleResult(_Result):
    success: bool = True
    message: str = ""


class ProjectCounts(_Result):
    total_tasks: int
    todo: int
    in_progress: int
    blocked: int
    done: int
    completion_percentage: float


class WorkerCounts(_Result):
    total: int
    working: int
    idle: int
    offline: int


class ProjectStatus(_Result):
    success: bool = True
    project_status: ProjectCounts
    workers: WorkerCounts


class AgentInfo(_Result):
    agent_id: str
    name: str = ""
    role: str = ""
    skills: list[str] = Field(default_factory=list)
    status: str = ""
    current_task: str | None = None
    last_seen: str | None = None


class AgentStatus(_Result):
    found: bool
    agent_info: AgentInfo | None = None
    message: str = ""


class AgentList(_Result):
    success: bool = True
    agent_count: int
    agents: list[AgentInfo]


class Pong(_Result):
    success: bool = True
    pong: bool = True
    status: str = "online"
    uptime_seconds: float = 0.0
    echo: Any = None


class TaskContextResult(_Result):
    success: bool = True
    task: dict[str, Any]
    progress_log: list[dict[str, Any]] = Field(default_factory=list)
    blockers: list[dict[str, Any]] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    dependency_artifacts: list[Artifact] = Field(default_factory=list)
