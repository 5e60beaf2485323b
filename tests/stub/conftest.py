"""Fixtures for the stub suite: real stub processes over real HTTP, plus in-process boards.

Session-scoped stubs are shared to keep the suite fast (each start pays the MCP SDK's
import cost); tests stay independent by using a unique skill per test, so one test's
tasks are never offered to another test's agents.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import StubProcess, start_stub

SHORT_LEASE = 1.0
SHORT_MAX_ATTEMPTS = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """The shared stub: default 60 s leases."""
    proc = start_stub(tmp_path_factory.mktemp("shared") / "board.db")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def short_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """A shared stub with 1 s leases and 2 attempts, for expiry, fencing and blocking."""
    proc = start_stub(
        tmp_path_factory.mktemp("short") / "board.db",
        env={"PM_LEASE_SECONDS": str(SHORT_LEASE), "PM_MAX_ATTEMPTS": str(SHORT_MAX_ATTEMPTS)},
    )
    yield proc
    proc.stop()


@pytest.fixture
def stub_factory(tmp_path: Path) -> Iterator[Callable[..., StubProcess]]:
    """Start dedicated stubs (own db/env); all are stopped after the test."""
    started: list[StubProcess] = []

    def factory(db: Path | None = None, **kwargs: Any) -> StubProcess:
        proc = start_stub(db or tmp_path / "board.db", **kwargs)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@pytest.fixture
def uniq() -> str:
    """A per-test token for skills and ids, so tests on a shared stub never see each other's tasks."""
    return uuid.uuid4().hex[:10]
