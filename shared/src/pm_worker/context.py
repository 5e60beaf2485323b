"""What `execute` gets besides the task: reporting, checkpoints, artifacts, the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from pm_worker.client import PMClient
from pm_worker.errors import TaskBlocked
from pm_worker.models import Artifact, Assignment, TaskContextResult


class TaskContext:
    """Handed to `Worker.execute`; every report renews the task's lease."""

    def __init__(self, client: PMClient, task: Assignment, workspace: Path) -> None:
        self._client = client
        self.task = task
        self.workspace = workspace.resolve()
        self.last_progress = 0.0
        self.last_checkpoint: Any = task.checkpoint
        self.stopping = False
        self.payload: Any = None
        """The task's payload parsed with the worker's `payload_model` (None without one)."""
        self.log: structlog.stdlib.BoundLogger = structlog.get_logger("pm_worker.task")

    def resolve(self, relative: str | None, *, must_exist: bool = True) -> Path:
        """A path inside the workspace; refuses escapes (`..`, absolute paths, symlinks out)."""
        rel = (relative or ".").strip() or "."
        candidate = (self.workspace / rel).resolve()
        if candidate != self.workspace and self.workspace not in candidate.parents:
            raise TaskBlocked(
                f"path {rel!r} leaves the workspace {self.workspace}; give a path relative to it",
                severity="high",
            )
        if must_exist and not candidate.exists():
            raise TaskBlocked(
                f"missing file or folder: {rel!r} does not exist in the workspace {self.workspace}",
                severity="high",
            )
        return candidate

    def in_project(self, path: str | None, output: str) -> str:
        """`output` inside the project that `path` is in: the top folder of `path` in the workspace.

        Each project is one folder of the workspace (`/workspace/app` when bind-mounted), so a
        default output such as `docs/api/` lands in `app/docs/api/` for `path: app/src/pkg` and
        several projects' outputs never mix; `path: .` keeps it at the workspace's top.
        """
        candidate = (self.workspace / ((path or ".").strip() or ".")).resolve()
        try:
            parts = candidate.relative_to(self.workspace).parts
        except ValueError:  # outside the workspace: resolve() refuses it with a blocker later
            return output
        return f"{parts[0]}/{output}" if parts else output

    def relative(self, path: Path) -> str:
        """How another worker finds `path`: relative to the shared workspace."""
        try:
            return str(path.resolve().relative_to(self.workspace))
        except ValueError:
            return str(path)

    async def progress(self, percent: float, message: str) -> None:
        percent = max(0.0, min(100.0, float(percent)))
        self.last_progress = percent
        self.log.info("progress", progress=percent, message=message)
        await self._client.report_progress(self.task.task_id, percent, message)

    async def checkpoint(self, data: Any, message: str = "checkpoint saved") -> None:
        """Stored on the stub; returned as `task.checkpoint` to whoever resumes this task."""
        self.last_checkpoint = data
        await self._client.report_progress(self.task.task_id, self.last_progress, message, checkpoint=data)

    async def artifact(
        self, artifact_type: str, description: str, location: str | None = None, data: Any = None
    ) -> int:
        result = await self._client.log_artifact(
            self.task.task_id, artifact_type, description, location, data
        )
        self.log.info(
            "artifact_logged", artifact_type=artifact_type, location=location, artifact_id=result.artifact_id
        )
        return result.artifact_id

    async def context(self, cursor: str | None = None) -> TaskContextResult:
        """The task as the board has it, one page of each list (`next_cursor` for the next)."""
        return await self._client.get_task_context(self.task.task_id, cursor)

    async def dependency_artifacts(self) -> list[Artifact]:
        """Every artifact of the tasks this one depends on, oldest first (metadata; the data of
        each through `artifact_data`). The assignment carries the first page; the rest, if any,
        is fetched a page at a time."""
        found = list(self.task.dependency_artifacts)
        cursor = self.task.dependency_artifacts_next
        while cursor is not None:
            page = await self._client.get_task_context(self.task.task_id, cursor)
            found.extend(page.dependency_artifacts)
            cursor = page.next_cursor
        return found

    async def artifact_data(self, artifact: Artifact | int) -> Any:
        """An artifact's data, whatever its size.

        Lists (the assignment's `dependency_artifacts`, `context()`) carry data inline only
        when it is small (`data_included`); otherwise this fetches it with `get_artifact`.
        Given an id, it always fetches.
        """
        if isinstance(artifact, Artifact) and artifact.data_included:
            return artifact.data
        artifact_id = artifact if isinstance(artifact, int) else artifact.artifact_id
        return (await self._client.get_artifact(artifact_id)).artifact.data
