"""Fixtures for every suite under tests/ (each suite's own conftest adds what only it needs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import StubProcess, start_stub


@pytest.fixture
def stub_factory(tmp_path: Path) -> Iterator[Callable[..., StubProcess]]:
    """Start dedicated stub processes (`start_stub`'s arguments; by default each on a board file of
    its own in the test's tmp dir); all are stopped after the test."""
    started: list[StubProcess] = []

    def factory(db: Path | None = None, **kwargs: Any) -> StubProcess:
        proc = start_stub(db or tmp_path / f"board-{len(started) + 1}.db", **kwargs)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()
