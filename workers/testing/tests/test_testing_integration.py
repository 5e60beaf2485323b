"""The real `python -m testing_worker` process against the real stub process over HTTP.

One worker run takes two tasks from the board: the fixture project's passing suite (the
task completes and logs its JUnit report) and its failing suite (the task ends blocked,
the blocker naming each failing test and its first assertion line).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import StubProcess, load_tasks, task_context
from tests.integration.workerproc import run_worker_to_end

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WORKER_TIMEOUT = 180.0
NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture(scope="module")
def board(stub: StubProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Load a passing and a failing test task, run the worker for both, return what the board says."""
    workspace = tmp_path_factory.mktemp("testing-it") / "workspace"
    shutil.copytree(FIXTURES / "suite", workspace / "project")
    skill = f"tests-{uuid.uuid4().hex[:8]}"
    passing, failing, misspelt = f"{skill}-passing", f"{skill}-failing", f"{skill}-misspelt"
    load_tasks(
        stub.db,
        {
            "id": passing,
            "name": "Run the passing suite",
            "priority": "high",
            "required_skills": [skill],
            "payload": {"path": "project", "command": "python -m pytest -q tests", "env": NO_PLUGINS},
        },
        {
            "id": failing,
            "name": "Run the failing suite",
            "priority": "low",
            "required_skills": [skill],
            "payload": {"path": "project", "command": "python -m pytest -q failing", "env": NO_PLUGINS},
        },
        {
            "id": misspelt,
            "name": "A payload with a typo",
            "required_skills": [skill],
            "payload": {"path": "project", "comand": "python -m pytest -q failing"},
        },
    )
    code, log = run_worker_to_end(
        "testing_worker",
        stub,
        workspace,
        agent_id=f"testing-it-{skill}",
        skills=f"testing,pytest,unit-testing,integration-testing,{skill}",
        max_tasks=3,
        timeout=WORKER_TIMEOUT,
    )
    assert code == 0, log
    return {
        "workspace": workspace,
        "passing": task_context(stub, passing),
        "failing": task_context(stub, failing),
        "misspelt": task_context(stub, misspelt),
        "passing_id": passing,
        "failing_id": failing,
        "misspelt_id": misspelt,
    }


def test_passing_suite_completes_with_its_report(board: dict[str, Any]) -> None:
    context = board["passing"]
    assert context["task"]["status"] == "done", context
    messages = [entry["message"] for entry in context["progress_log"]]
    # the fixture project has only a pytest.ini: its own environment is one with pytest only
    assert any(
        m.startswith(
            "Running python -m pytest -q tests in project (timeout 300 s) with a test environment from"
        )
        for m in messages
    )
    assert any(m.startswith("4 passed, 0 failed, 1 skipped, 0 errors in project") for m in messages)
    assert context["blockers"] == []
    [artifact] = context["artifacts"]
    assert artifact["artifact_type"] == "test_report"
    assert artifact["location"] == f"project/reports/{board['passing_id']}.xml"
    assert (board["workspace"] / artifact["location"]).is_file()
    data = artifact["data"]
    assert (data["passed"], data["failed"], data["skipped"], data["errors"]) == (4, 0, 1, 0)
    assert data["environment"]["source"] == "built"
    assert data["environment"]["sources"] == []  # no metadata: pytest only


def test_failing_suite_ends_blocked_naming_the_failing_tests(board: dict[str, Any]) -> None:
    context = board["failing"]
    assert context["task"]["status"] == "blocked", context
    [blocker] = context["blockers"]
    assert blocker["severity"] == "high"
    assert blocker["description"] == (
        "3 of 4 tests failed or errored in project: "
        "failing/test_mathlib_bad.py::test_divide_rounds — assert 2.5 == 3; "
        "failing/test_mathlib_bad.py::TestMean::test_empty — ZeroDivisionError: division by zero; "
        "failing/test_mathlib_bad.py::test_needs_database — ConnectionError: database unavailable"
    )
    assert blocker["resolution_suggestion"]
    # the report was logged before the blocker, so dependants and people can read it
    [artifact] = context["artifacts"]
    assert artifact["data"]["failing"] == [
        "failing/test_mathlib_bad.py::test_divide_rounds",
        "failing/test_mathlib_bad.py::TestMean::test_empty",
        "failing/test_mathlib_bad.py::test_needs_database",
    ]
    assert any(
        entry["message"].startswith("1 passed, 2 failed, 0 skipped, 1 errors in project")
        for entry in context["progress_log"]
    )


def test_a_misspelt_payload_key_ends_blocked_naming_it(board: dict[str, Any]) -> None:
    context = board["misspelt"]
    assert context["task"]["status"] == "blocked", context
    [blocker] = context["blockers"]
    assert blocker["description"] == (
        f"invalid testing payload for task {board['misspelt_id']}: unknown field 'comand' "
        "(accepted fields: path, command, timeout_seconds, report, env, environment, python, install)"
    )
    assert context["artifacts"] == []  # nothing ran: not the default command either
    assert not [entry for entry in context["progress_log"] if entry["message"].startswith("Running")]
