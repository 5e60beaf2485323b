"""TestingWorker: command handling, blocker text, and execute on the fixture suites with a real TaskContext."""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pm_worker import Assignment, TaskBlocked, TaskContext, WorkerSettings
from pm_worker.payload import parse_payload
from testing_worker.junit import CaseResult, JUnitReport
from testing_worker.payload import TestingPayload
from testing_worker.runner import RunResult
from testing_worker.worker import (
    OutputWatch,
    TestingWorker,
    add_junit,
    blocker_text,
    build_argv,
    child_environment,
    existing_junit,
    is_pytest,
    report_data,
)

NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def make_task(payload: dict[str, Any], task_id: str = "unit-tests") -> Assignment:
    return Assignment(task_id=task_id, task_name="Run tests", payload=payload)


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie left (nothing runs; its parent may not be reaping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Poll until `pid` runs no more, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        await asyncio.sleep(0.02)


async def execute(workspace: Path, pm: Any, task: Assignment) -> str:
    """What `pm_worker` does for each task: check the payload with the worker's model, then `execute`."""
    ctx = TaskContext(pm, task, workspace)
    worker = TestingWorker(WorkerSettings(workspace=workspace, agent_id="testing-test"))
    ctx.payload = parse_payload(TestingPayload, task.payload, task_id=task.task_id, role=worker.role)
    return await worker.execute(task, ctx)


# --------------------------------------------------------------------------- pure helpers


def test_identity() -> None:
    assert TestingWorker.role == "testing"
    assert set(TestingWorker.skills) == {"testing", "pytest", "unit-testing", "integration-testing"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python -m pytest -q", [sys.executable, "-m", "pytest", "-q"]),
        ("python3 -m pytest -k 'a and not b'", [sys.executable, "-m", "pytest", "-k", "a and not b"]),
        ("pytest tests", [sys.executable, "-m", "pytest", "tests"]),
        ("make check; rm -rf /", ["make", "check;", "rm", "-rf", "/"]),  # no shell: ";" is just an argument
    ],
)
def test_build_argv(command: str, expected: list[str]) -> None:
    assert build_argv(command) == expected


@pytest.mark.parametrize("command", ["", "pytest 'unclosed"])
def test_build_argv_refuses(command: str) -> None:
    with pytest.raises(TaskBlocked):
        build_argv(command)


def test_is_pytest() -> None:
    assert is_pytest([sys.executable, "-m", "pytest"])
    assert is_pytest(["/venv/bin/pytest", "-q"])
    assert not is_pytest([sys.executable, "-m", "unittest"])
    assert not is_pytest(["make", "pytest"])


def test_add_junit_goes_right_after_pytest(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    argv = add_junit([sys.executable, "-m", "pytest", "-q", "--", "tests"], report)
    assert argv == [
        sys.executable,
        "-m",
        "pytest",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit1",
        "-q",
        "--",
        "tests",
    ]
    # a command that names its own report keeps it
    own = add_junit(["pytest", "--junitxml", "mine.xml"], report)
    assert own == ["pytest", "-o", "junit_family=xunit1", "--junitxml", "mine.xml"]
    assert existing_junit(own) == "mine.xml"
    assert existing_junit(["pytest", "--junit-xml=x.xml"]) == "x.xml"


def test_child_environment_hides_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_AGENT_TOKEN", "secret")
    env = child_environment({"EXTRA": "1"})
    assert "PM_AGENT_TOKEN" not in env
    assert env["EXTRA"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_blocker_text_names_failing_tests_and_first_lines() -> None:
    report = JUnitReport(
        cases=(
            *(CaseResult(f"tests/test_ops.py::test_ok{i}", "passed") for i in range(12)),
            CaseResult("tests/test_ops.py::test_divide", "failed", "assert 2.5 == 3"),
            CaseResult("tests/test_ops.py::test_parse", "failed", "ValueError: bad"),
        )
    )
    assert blocker_text(report, "calc") == (
        "2 of 14 tests failed in calc: tests/test_ops.py::test_divide — assert 2.5 == 3; "
        "tests/test_ops.py::test_parse — ValueError: bad"
    )


def test_blocker_text_lists_at_most_ten() -> None:
    report = JUnitReport(cases=tuple(CaseResult(f"t.py::test_{i}", "error", "boom") for i in range(13)))
    text = blocker_text(report, "x")
    assert text.startswith("13 of 13 tests errored in x: t.py::test_0 — boom;")
    assert "t.py::test_9 — boom; and 3 more" in text
    assert "test_10" not in text


def test_output_watch_follows_pytest_percentages() -> None:
    watch = OutputWatch()
    assert watch.take() is None
    watch.feed("....F...                                  [ 50%]")
    watch.feed("")
    assert watch.take() == (50.0, "running: ....F...                                  [ 50%]")
    assert watch.take() is None  # nothing new
    watch.feed("some other line")
    assert watch.take() == (50.0, "running: some other line")


# --------------------------------------------------------------------------- execute

pytestmark_anyio = pytest.mark.anyio  # the async tests below; the helpers above are plain


@pytestmark_anyio
async def test_passing_suite(workspace: Path, pm: Any) -> None:
    task = make_task({"path": "suite", "command": "python -m pytest -q tests", "env": NO_PLUGINS})
    message = await execute(workspace, pm, task)
    assert message.startswith("4 passed, 0 failed, 1 skipped, 0 errors in suite (")
    assert message.endswith(
        "report suite/reports/unit-tests.xml"
    )  # inside the project, not the workspace top
    assert (workspace / "suite" / "reports" / "unit-tests.xml").is_file()
    running = [p[1] for p in pm.progress if p[1].startswith("Running")]
    assert running == [
        "Running python -m pytest -q tests in suite (timeout 300 s) with a test environment from "
        f"no dependency metadata: pytest only (Python {platform.python_version()}, "
        + running[0].rsplit(", ", 1)[1]
    ]
    assert pm.progress[-1][1].startswith("4 passed, 0 failed, 1 skipped, 0 errors in suite")
    [artifact] = pm.artifacts
    assert artifact["artifact_type"] == "test_report"
    assert artifact["location"] == "suite/reports/unit-tests.xml"
    data = artifact["data"]
    assert (data["passed"], data["failed"], data["skipped"], data["errors"], data["total"]) == (4, 0, 1, 0, 5)
    assert data["failing"] == []
    assert data["exit_code"] == 0
    assert not list((workspace / "suite").rglob("__pycache__"))  # no bytecode left in the workspace


@pytestmark_anyio
async def test_failing_suite_blocks_naming_the_tests(workspace: Path, pm: Any) -> None:
    task = make_task(
        {"path": "suite", "command": "python -m pytest -q failing", "env": NO_PLUGINS}, "bad/tests:1"
    )
    with pytest.raises(TaskBlocked) as info:
        await execute(workspace, pm, task)
    assert info.value.severity == "high"
    assert info.value.description == (
        "3 of 4 tests failed or errored in suite: "
        "failing/test_mathlib_bad.py::test_divide_rounds — assert 2.5 == 3; "
        "failing/test_mathlib_bad.py::TestMean::test_empty — ZeroDivisionError: division by zero; "
        "failing/test_mathlib_bad.py::test_needs_database — ConnectionError: database unavailable"
    )
    # the report is logged before the blocker, under a file name made from the task id
    [artifact] = pm.artifacts
    assert artifact["location"] == "suite/reports/bad_tests_1.xml"
    assert artifact["data"]["failing"] == [
        "failing/test_mathlib_bad.py::test_divide_rounds",
        "failing/test_mathlib_bad.py::TestMean::test_empty",
        "failing/test_mathlib_bad.py::test_needs_database",
    ]
    assert artifact["data"]["failures"][0] == {
        "id": "failing/test_mathlib_bad.py::test_divide_rounds",
        "outcome": "failed",
        "message": "assert 2.5 == 3",
    }
    assert pm.progress[-1][1].startswith("1 passed, 2 failed, 0 skipped, 1 errors in suite")


@pytestmark_anyio
async def test_timeout_blocks_and_kills_the_tests(
    workspace: Path, pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = workspace / "pids"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    task = make_task(
        {"path": "suite", "command": "python -m pytest -q slow", "timeout_seconds": 6, "env": NO_PLUGINS}
    )
    with pytest.raises(TaskBlocked) as info:
        await execute(workspace, pm, task)
    assert info.value.description.startswith(
        "test command timed out after 6 s in suite: python -m pytest -q slow was stopped (process group killed)"
    )
    for pid in (int(p) for p in pid_file.read_text().split()):
        await wait_gone(pid)
    assert pm.artifacts == []


@pytestmark_anyio
async def test_stale_report_is_never_read(workspace: Path, pm: Any) -> None:
    (workspace / "reports").mkdir()
    (workspace / "reports" / "unit-tests.xml").write_text(
        "<testsuite tests='1'><testcase name='old'/></testsuite>"
    )
    task = make_task({"path": "suite", "command": "python -m pytest --no-such-option", "env": NO_PLUGINS})
    with pytest.raises(TaskBlocked) as info:
        await execute(workspace, pm, task)
    assert "exited with code 4 and wrote no readable JUnit report" in info.value.description
    assert "no such option" in info.value.description or "unrecognized arguments" in info.value.description


@pytestmark_anyio
async def test_no_tests_collected_blocks(workspace: Path, pm: Any) -> None:
    (workspace / "suite" / "empty").mkdir()
    task = make_task({"path": "suite", "command": "python -m pytest -q empty", "env": NO_PLUGINS})
    with pytest.raises(TaskBlocked, match=r"no tests ran in suite: .* collected nothing \(exit code 5\)"):
        await execute(workspace, pm, task)


@pytestmark_anyio
async def test_plain_commands_decide_by_exit_code(workspace: Path, pm: Any) -> None:
    ok = make_task({"path": "suite", "command": "python -c \"print('all good')\""})
    message = await execute(workspace, pm, ok)
    assert message.startswith("python -c \"print('all good')\" passed in suite (exit code 0, ")
    assert message.endswith("): all good")
    bad = make_task({"path": "suite", "command": "python -c \"import sys; print('broken'); sys.exit(2)\""})
    with pytest.raises(TaskBlocked, match="exited with code 2; last output:\nbroken"):
        await execute(workspace, pm, bad)
    assert pm.artifacts == []


@pytestmark_anyio
async def test_missing_program_blocks(workspace: Path, pm: Any) -> None:
    with pytest.raises(TaskBlocked, match=r"cannot run 'definitely-not-a-program'.*check payload\.command"):
        await execute(workspace, pm, make_task({"path": "suite", "command": "definitely-not-a-program"}))


@pytestmark_anyio
@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"path": "../elsewhere"}, "leaves the workspace"),
        ({"path": "nope"}, "does not exist"),
        ({"path": "suite/mathlib.py"}, "is not a folder"),
        ({"path": "suite", "timeout_seconds": 0}, "timeout_seconds must be a number"),
        ({"path": "suite", "timeout_seconds": "10"}, "timeout_seconds must be a number"),
        ({"path": "suite", "env": {"PM_AGENT_TOKEN": "x"}}, "not a variable name a task may set"),
        ({"path": "suite", "env": ["A=1"]}, "payload.env must be a mapping"),
        ({"path": "suite", "command": ""}, "payload.command must be a non-empty string"),
        (
            {"path": "suite", "comand": "pytest -x"},
            r"unknown field 'comand' \(accepted fields: path, command, ",
        ),
        ({"path": "suite", "timeout_seconds": True}, "timeout_seconds must be a number"),
        ({"path": "suite", "env": {"A": [1]}}, "payload.env.A must be text or a number"),
    ],
)
async def test_bad_payloads_block(workspace: Path, pm: Any, payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(TaskBlocked, match=problem):
        await execute(workspace, pm, make_task(payload))


def test_report_data_fits_the_stub_with_exact_counts() -> None:
    cases = tuple(
        CaseResult(f"test_many.py::test_fails[case-{i:05d}-{'x' * 40}]", "failed", "E" * 300)
        for i in range(6000)
    )
    result = RunResult(argv=("pytest",), returncode=1, timed_out=False, duration=1.0, tail=(), line_count=0)
    data = report_data(JUnitReport(cases=cases), result, "many", "python -m pytest")
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= 200 * 1024
    assert (data["failed"], data["total"]) == (6000, 6000)
    assert len(data["failing"]) + data["failing_not_listed"] == 6000
    assert len(data["failing"]) > 1500  # the budget is used, not halved away
    assert data["failures"][0]["id"] == cases[0].test_id
