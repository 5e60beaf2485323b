"""Fixtures for the LLM worker suite: the fake model endpoint and the real stub, once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import StubProcess, start_stub, tasks_yaml

from llm_fake_model import FakeModel
from llm_harness import board_tasks, make_workspace


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModel]:
    fake = FakeModel().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """The real stub, loaded from a project file with one task per scenario and dialect."""
    folder = tmp_path_factory.mktemp("board")
    project = folder / "board.yaml"
    project.write_text(tasks_yaml(*board_tasks(), project="llm-worker-tests"))
    stub = start_stub(folder / "board.db", project=project, timeout=60)
    yield stub
    stub.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)
