"""Fixtures for the documentation worker suite: the fixture package, a fake PM client
behind a real `TaskContext`, and (for the integration tests) the real stub helpers."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

# tests/helpers (the real stub as a subprocess) lives at the repo root
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingPM:
    """Stands in for `PMClient` under a real `TaskContext`: records every report in order."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []

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


@pytest.fixture
def pm() -> RecordingPM:
    return RecordingPM()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace holding a copy of the fixture package at `shapes/`."""
    root = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", root / "shapes")
    return root
