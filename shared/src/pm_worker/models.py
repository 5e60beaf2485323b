"""The typed answers a worker sees, under the names workers import (`from pm_worker import Assignment`).

Defined once, in `pm_protocol.results`, the package the stub answers with: nothing here may
re-declare a field, or the two ends drift apart again. Whatever the PM server's dialect
(`pm_worker.dialects.base`), `PMClient` hands the worker these models. Each `X as X` is an explicit
re-export (PEP 484), so this one list is also the module's public names.
"""

from __future__ import annotations

from pm_protocol.results import AgentData as AgentData
from pm_protocol.results import AgentInfo as AgentInfo
from pm_protocol.results import AgentList as AgentList
from pm_protocol.results import AgentStatus as AgentStatus
from pm_protocol.results import Artifact as Artifact
from pm_protocol.results import ArtifactContent as ArtifactContent
from pm_protocol.results import ArtifactResult as ArtifactResult
from pm_protocol.results import Assignment as Assignment
from pm_protocol.results import BlockerInfo as BlockerInfo
from pm_protocol.results import BlockerResult as BlockerResult
from pm_protocol.results import HeartbeatResult as HeartbeatResult
from pm_protocol.results import Lease as Lease
from pm_protocol.results import MessageResult as MessageResult
from pm_protocol.results import Pong as Pong
from pm_protocol.results import ProgressAck as ProgressAck
from pm_protocol.results import ProgressEntry as ProgressEntry
from pm_protocol.results import ProjectCounts as ProjectCounts
from pm_protocol.results import ProjectStatus as ProjectStatus
from pm_protocol.results import RegisterResult as RegisterResult
from pm_protocol.results import ResolveResult as ResolveResult
from pm_protocol.results import TaskContextResult as TaskContextResult
from pm_protocol.results import TaskDetail as TaskDetail
from pm_protocol.results import TaskOffer as TaskOffer
from pm_protocol.results import WorkerCounts as WorkerCounts
