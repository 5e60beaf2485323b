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

from pm_worker.client import Identity, PMClient
from pm_worker.context import TaskContext
from pm_worker.errors import (
    AgentNotRegistered,
    InvalidArgument,
    NotTaskHolder,
    PMError,
    TaskAlreadyComplete,
    TaskBlocked,
    TaskNotFound,
    TransportError,
    Unauthorized,
)
from pm_worker.models import Artifact, Assignment, TaskOffer
from pm_worker.runner import run
from pm_worker.settings import SettingsError, WorkerSettings, load_settings
from pm_worker.worker import Worker

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
    "TaskNotFound",
    "TaskOffer",
    "TransportError",
    "Unauthorized",
    "Worker",
    "WorkerSettings",
    "load_settings",
    "run",
]
