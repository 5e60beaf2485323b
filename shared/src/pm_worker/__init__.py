"""pm_worker: everything a PM Agent worker needs except its own craft.

from pm_worker import Worker, TaskContext, Assignment, TaskBlocked, run

class EchoWorker(Worker):
    role, name, skills = "echo", "Echo Worker", ("echo",)

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        await ctx.progress(50, "echoing")
        return task.description

if __name__ == "__main__":
    run(EchoWorker)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pm_worker.client import Identity, PMClient
    from pm_worker.context import TaskContext
    from pm_worker.errors import (
        AgentNotRegistered,
        InvalidArgument,
        NotTaskHolder,
        PMError,
        SettingsError,
        TaskAlreadyComplete,
        TaskBlocked,
        TaskInterrupt,
        TaskNotFound,
        TaskReleased,
        TransportError,
        Unauthorized,
        WorkerError,
    )
    from pm_worker.models import Artifact, Assignment, TaskOffer
    from pm_worker.runner import run
    from pm_worker.settings import WorkerSettings, load_settings
    from pm_worker.worker import Worker

# Lazy exports (PEP 562): `python -m pm_worker.health`, a container HEALTHCHECK run every
# few seconds, must not pay for importing the MCP SDK (about a CPU-second).
_EXPORTS = {
    "Identity": "client",
    "PMClient": "client",
    "TaskContext": "context",
    "AgentNotRegistered": "errors",
    "InvalidArgument": "errors",
    "NotTaskHolder": "errors",
    "PMError": "errors",
    "TaskAlreadyComplete": "errors",
    "TaskBlocked": "errors",
    "TaskInterrupt": "errors",
    "TaskNotFound": "errors",
    "TaskReleased": "errors",
    "TransportError": "errors",
    "Unauthorized": "errors",
    "WorkerError": "errors",
    "SettingsError": "errors",
    "Artifact": "models",
    "Assignment": "models",
    "TaskOffer": "models",
    "run": "runner",
    "WorkerSettings": "settings",
    "load_settings": "settings",
    "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pm_worker' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pm_worker.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AgentNotRegistered",
    "Artifact",
    "Assignment",
    "Identity",
    "InvalidArgument",
    "NotTaskHolder",
    "PMClient",
    "PMError",
    "SettingsError",
    "TaskAlreadyComplete",
    "TaskBlocked",
    "TaskContext",
    "TaskInterrupt",
    "TaskNotFound",
    "TaskOffer",
    "TaskReleased",
    "TransportError",
    "Unauthorized",
    "Worker",
    "WorkerError",
    "WorkerSettings",
    "load_settings",
    "run",
]
