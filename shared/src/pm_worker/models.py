"""The typed answers a worker sees, under the names workers import (`from pm_worker import Assignment`).

Defined once, in `pm_protocol.results`, the package the stub answers with: nothing here may
re-declare a field, or the two ends drift apart again. Whatever the PM server's dialect
(`pm_worker.dialect`), `PMClient` hands the worker these models.
"""

from __future__ import annotations

from pm_protocol.results import (
    AgentData,
    AgentInfo,
    AgentList,
    AgentStatus,
    Artifact,
    ArtifactContent,
    ArtifactResult,
    Assignment,
    BlockerInfo,
    BlockerResult,
    HeartbeatResult,
    Lease,
    MessageResult,
    Pong,
    ProgressAck,
    ProgressEntry,
    ProjectCounts,
    ProjectStatus,
    RegisterResult,
    ResolveResult,
    TaskContextResult,
    TaskDetail,
    TaskOffer,
    WorkerCounts,
)

__all__ = [
    "AgentData",
    "AgentInfo",
    "AgentList",
    "AgentStatus",
    "Artifact",
    "ArtifactContent",
    "ArtifactResult",
    "Assignment",
    "BlockerInfo",
    "BlockerResult",
    "HeartbeatResult",
    "Lease",
    "MessageResult",
    "Pong",
    "ProgressAck",
    "ProgressEntry",
    "ProjectCounts",
    "ProjectStatus",
    "RegisterResult",
    "ResolveResult",
    "TaskContextResult",
    "TaskDetail",
    "TaskOffer",
    "WorkerCounts",
]
