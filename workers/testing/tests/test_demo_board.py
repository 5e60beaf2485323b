"""The demo board (examples/demo-project/project.yaml) run by the real testing and
documentation worker processes against a real stub, on a copy of examples/.

The devops tasks are left to the devops worker's own suite (they need a Docker engine);
here they must simply wait. Everything else ends as the board promises: the passing suites
done, their reports feeding the test-report page, the docs written, and exactly one
blocker, on legacy-tests, naming the deliberately wrong test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp
import pytest
import yaml

from pm_agent_stub.testing import StubProcess, call_tool, start_stub
from tests.helpers import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
PROJECT = EXAMPLES / "demo-project" / "project.yaml"
TIMEOUT = 180.0
WORKERS = {"testing": ("testing_worker", 4), "documentation": ("documentation_worker", 4)}


def test_board_file_is_what_the_demo_needs() -> None:
    board = yaml.safe_load(PROJECT.read_text())
    tasks = {t["id"]: t for t in board["tasks"]}
    assert len(tasks) == 10
    kinds = {
        "testing": {"testing", "pytest", "unit-testing", "integration-testing"},
        "documentation": {"documentation", "markdown", "api-docs", "tutorials"},
        "devops": {"docker", "ci/cd", "deployment", "monitoring"},
    }
    owner = {}
    for task_id, spec in tasks.items():
        fits = [kind for kind, skills in kinds.items() if set(spec["required_skills"]) <= skills]
        assert len(fits) == 1, (task_id, fits)  # exactly one kind of worker can take each task
        owner[task_id] = fits[0]
    assert sorted(owner.values()).count("devops") == 2
    # nothing waits on the failing task, and no docs task waits on Docker: the board can finish anywhere
    assert not [t for t in tasks.values() if "legacy-tests" in t["dependencies"]]
    for task_id, spec in tasks.items():
        if owner[task_id] == "documentation":
            assert all(owner[dep] != "devops" for dep in spec["dependencies"]), task_id
    assert tasks["build-image"]["dependencies"] == ["unit-tests", "doctests", "integration-tests"]
    assert tasks["smoke-deploy"]["dependencies"] == ["build-image"]
    assert tasks["smoke-deploy"]["payload"] == {
        "context": "demo-project",
        "dockerfile": "Dockerfile",
        "tag": "demo-calc:latest",
        "build_args": {},
        "smoke_command": "python -m calc add 2 3",
        "expect_output": "5",
    }


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StubProcess, Path]]:
    base = tmp_path_factory.mktemp("demo-board")
    workspace = base / "workspace"
    shutil.copytree(EXAMPLES, workspace, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    stub = start_stub(base / "board.db", project=workspace / "demo-project" / "project.yaml")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for role, (module, max_tasks) in WORKERS.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_"))}
            env.update(
                {
                    "PM_AGENT_URL": stub.url,
                    "WORKSPACE": str(workspace),
                    "AGENT_ID": f"{role}-demo-test",
                    "MAX_TASKS": str(max_tasks),
                    "POLL_WAIT_SECONDS": "2",
                    "LOG_FORMAT": "json",
                    "HEALTH_DIR": str(base / "health"),
                    "PYTHONUNBUFFERED": "1",
                }
            )
            log = (base / f"{role}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + TIMEOUT
        for proc in procs:  # each exits by itself after MAX_TASKS tasks
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logs = "\n".join((base / f"{r}.log").read_text(errors="replace") for r in WORKERS)
                raise AssertionError(
                    f"workers did not finish the demo board in {TIMEOUT}s:\n{logs}"
                ) from None
            assert proc.returncode == 0
        yield stub, workspace
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stub.stop()


def contexts(stub: StubProcess, *task_ids: str) -> dict[str, dict[str, Any]]:
    async def fetch() -> dict[str, dict[str, Any]]:
        async with mcp.Client(stub.url) as client:
            return {t: await call_tool(client, "get_task_context", {"task_id": t}) for t in task_ids}

    return anyio.run(fetch)


def test_demo_board_ends_with_one_blocker(demo_run: tuple[StubProcess, Path]) -> None:
    stub, workspace = demo_run
    board = contexts(
        stub,
        "unit-tests",
        "doctests",
        "integration-tests",
        "legacy-tests",
        "api-docs",
        "tutorial",
        "test-report",
        "docs-summary",
        "build-image",
        "smoke-deploy",
    )
    status = {task_id: ctx["task"]["status"] for task_id, ctx in board.items()}
    assert status == {
        "unit-tests": "done",
        "doctests": "done",
        "integration-tests": "done",
        "legacy-tests": "blocked",
        "api-docs": "done",
        "tutorial": "done",
        "test-report": "done",
        "docs-summary": "done",
        "build-image": "todo",  # no devops worker in this test
        "smoke-deploy": "todo",
    }
    [blocker] = board["legacy-tests"]["blockers"]
    assert blocker["description"] == (
        "1 of 3 tests failed in demo-project: "
        "legacy_tests/test_legacy_rounding.py::test_legacy_rounds_ties_up — assert 2.0 == 3"
    )

    # the test reports fed the report page; the API index fed the tutorial's link
    report_page = (workspace / "demo-project" / "docs" / "test-report.md").read_text()
    for task_id in ("unit-tests", "doctests", "integration-tests"):
        data = board[task_id]["artifacts"][0]["data"]
        assert data["failed"] == 0
        assert data["passed"] > 0
        assert (
            f"| `{task_id}` | {data['passed']} | 0 | 0 | 0 | `demo-project/reports/{task_id}.xml` |"
            in report_page
        )
    tutorial = (workspace / "demo-project" / "docs" / "getting-started.md").read_text()
    assert "[API reference](api/index.md)" in tutorial
    assert "- `add(a: Number, b: Number, /) -> Number`: Return the sum of ``a`` and ``b``." in tutorial
    api_page = (workspace / "demo-project" / "docs" / "api" / "calc.ops.md").read_text()
    assert "def divide(a: Number, b: Number, /, *, exact: bool = False) -> Number" in api_page
    summary = (workspace / "demo-project" / "docs" / "README.md").read_text()
    assert "[`demo-project/docs/api/`](api/)" in summary
