"""Fixtures for the devops worker suite: a fake task context for unit tests, and the
real Docker engine (or a skip saying why there is none) for the integration tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

# tests/helpers (the real stub as a subprocess) lives at the repo root
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakePM:
    """Stands in for `PMClient` under a `TaskContext`: records what the worker reports."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self.reported = anyio.Event()

    async def report_progress(self, task_id: str, progress: float, message: str, *,
                              status: str = "in_progress", checkpoint: Any = None) -> None:
        self.progress.append((progress, message, checkpoint))
        self.reported.set()

    async def log_artifact(self, task_id: str, artifact_type: str, description: str,
                           location: str | None = None, data: Any = None) -> Any:
        self.artifacts.append({"artifact_type": artifact_type, "description": description,
                               "location": location, "data": data})

        class _Result:
            artifact_id = len(self.artifacts)

        return _Result()

    @property
    def checkpoints(self) -> list[Any]:
        return [cp for _, _, cp in self.progress if cp is not None]


@pytest.fixture
def fake_pm() -> FakePM:
    return FakePM()


def local_base_image() -> tuple[str | None, str]:
    """(a local Python base image, why not) — PYTHON_IMAGE if set, else a python:*-slim the engine has."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        return None, f"no Docker engine answers ({type(exc).__name__}: {exc})"
    try:
        candidates = [os.environ.get("PYTHON_IMAGE") or "", "python:3.11-slim", "python:3.12-slim"]
        for name in filter(None, candidates):
            try:
                client.images.get(name)
                return name, ""
            except docker.errors.ImageNotFound:
                continue
        return None, (f"the engine has none of {', '.join(filter(None, candidates))} and there is no registry; "
                      "run `eval \"$(../shared/docker/ensure-engine.sh)\"` first")
    finally:
        client.close()


@pytest.fixture(scope="session")
def base_image() -> str:
    image, why = local_base_image()
    if image is None:
        pytest.skip(f"Docker integration test skipped: {why}")
    return image
