"""A stand-in for `PMClient` under a real `TaskContext`, for workers' unit tests.

Records every progress report (with its checkpoint) and artifact in order, so a test can
check what a worker told the board without running the stub.
"""

from __future__ import annotations

from typing import Any

import anyio


class RecordingPM:
    def __init__(self) -> None:
        self.progress: list[tuple[float, str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self.reported = anyio.Event()  # set by the first progress report

    async def report_progress(
        self,
        task_id: str,
        progress: float,
        message: str,
        *,
        status: str = "in_progress",
        checkpoint: Any = None,
    ) -> None:
        self.progress.append((progress, message, checkpoint))
        self.reported.set()

    async def log_artifact(
        self,
        task_id: str,
        artifact_type: str,
        description: str,
        location: str | None = None,
        data: Any = None,
    ) -> Any:
        self.artifacts.append(
            {"artifact_type": artifact_type, "description": description, "location": location, "data": data}
        )

        class _Result:
            artifact_id = len(self.artifacts)

        return _Result()

    @property
    def checkpoints(self) -> list[Any]:
        return [cp for _, _, cp in self.progress if cp is not None]
