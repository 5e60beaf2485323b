"""Fixtures every worker's suite may use (each suite's own conftest adds what only it needs):
`pm`, a recording stand-in for `PMClient` under a real `TaskContext`; `stub`, the real stub
process for a test module's integration tests; the asyncio backend for anyio tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pm_agent_stub.testing import StubProcess, start_stub
from tests.helpers.recording_pm import RecordingPM


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pm() -> RecordingPM:
    return RecordingPM()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """The real stub process, one per test module (tests keep apart by a unique skill each)."""
    proc = start_stub(tmp_path_factory.mktemp("stub") / "board.db")
    yield proc
    proc.stop()
