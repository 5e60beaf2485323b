"""The fuzz suites' shared stub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pm_agent_stub.testing import StubProcess, start_stub, tasks_yaml

FUZZ_TASKS = 300


@pytest.fixture(scope="session")
def fuzz_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    """One real stub for the fuzz suites: 5 s leases, a board of chains to take and complete."""
    root = tmp_path_factory.mktemp("fuzz")
    tasks = [
        {
            "id": f"f{i:03d}",
            "name": f"Fuzz task {i}",
            "required_skills": ["fuzz"],
            "dependencies": [f"f{i - 1:03d}"] if i % 10 else [],
            "payload": {"n": i},
        }
        for i in range(FUZZ_TASKS)
    ]
    project = root / "project.yaml"
    project.write_text(tasks_yaml(*tasks, project="fuzz"))
    stub = start_stub(root / "board.db", env={"PM_LEASE_SECONDS": "5"}, project=project, timeout=60)
    yield stub
    stub.stop()
