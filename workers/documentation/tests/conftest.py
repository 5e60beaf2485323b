"""Fixtures for the documentation worker suite: the fixture package, a fake PM client
behind a real `TaskContext`, and (for the integration tests) the real stub helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.recording_pm import RecordingPM

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pm() -> RecordingPM:
    return RecordingPM()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace holding a copy of the fixture package at `shapes/`."""
    root = tmp_path / "workspace"
    shutil.copytree(FIXTURES / "shapes", root / "shapes")
    return root
