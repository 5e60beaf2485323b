"""Fixtures for the stub suite: real stub processes over real HTTP, plus in-process boards
(dedicated stubs for one test: `stub_factory`, tests/conftest.py).

Session-scoped stubs are shared to keep the suite fast (each start pays the MCP SDK's
import cost); tests stay independent by using a unique skill per test, so one test's
tasks are never offered to another test's agents.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
def uniq() -> str:
    """A per-test token for skills and ids, so tests on a shared stub never see each other's tasks."""
    return uuid.uuid4().hex[:10]
