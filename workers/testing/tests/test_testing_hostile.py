"""Hostile test commands, against the real worker process and the real stub (issue 17).

A test command is foreign code with foreign output. Each case is the attack as reported:
one 20,000-character output line (the blocker used to be refused by the stub and the task
re-run ~35 times a second, forever), 6,000 failing tests (the report artifact used to be
refused), a command asking pytest to write its report outside the workspace (the worker
used to delete and parse that file), and a grandchild that leaves the process group with
setsid (it used to outlive the task).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import (
    load_tasks,
    read_events,
    start_stub,
    task_context,
    wait_until,
)
from tests.helpers import REPO_ROOT

NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
MANY_TESTS = """\
import pytest


@pytest.mark.parametrize("case", [f"case-{i:05d}-" + "x" * 40 for i in range(6000)])
def test_fails(case):
    assert case == "expected"
"""
ESCAPER = (
    "import subprocess; p = subprocess.Popen(['setsid', 'sleep', '300']); "
    "open('grandchild.pid', 'w').write(str(p.pid)); print('started', p.pid)"
)


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("testing-hostile")
    ws = root / "workspace"
    (ws / "many").mkdir(parents=True)
    (ws / "many" / "test_many.py").write_text(MANY_TESTS)
    (ws / "small").mkdir()
    (ws / "small" / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    (ws / "escape").mkdir()
    victim = root / "outside" / "report.xml"
    victim.parent.mkdir()
    victim.write_text("<testsuite tests='1'><testcase name='not yours'/></testsuite>")
    skill = f"hostile-{uuid.uuid4().hex[:8]}"
    tasks = {
        "long-line": {"command": "python -c \"print('E'*20000); raise SystemExit(1)\""},
        "many": {
            "path": "many",
            "command": "python -m pytest -q --tb=line -p no:cacheprovider",
            "env": NO_PLUGINS,
        },
        "outside-report": {
            "path": "small",
            "command": f"python -m pytest -q --junitxml={victim}",
            "env": NO_PLUGINS,
        },
        "escape": {"path": "escape", "command": f'python -c "{ESCAPER}"'},
    }
    stub = start_stub(root / "board.db")
    load_tasks(
        stub.db,
        *(
            {"id": f"{skill}-{name}", "name": name, "required_skills": [skill], "payload": payload}
            for name, payload in tasks.items()
        ),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_"))}
    env.update(
        {
            "PM_AGENT_URL": stub.url,
            "WORKSPACE": str(ws),
            "AGENT_ID": f"testing-{skill}",
            "AGENT_SKILLS": f"testing,{skill}",
            "MAX_TASKS": str(len(tasks)),
            "POLL_WAIT_SECONDS": "1",
            "LOG_FORMAT": "json",
            "HEALTH_DIR": str(root / "health"),
        }
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "testing_worker"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield {
            "ws": ws,
            "victim": victim,
            "stub": stub,
            "log": done.stdout + done.stderr,
            **{name: task_context(stub, f"{skill}-{name}") for name in tasks},
            **{f"{name}-id": f"{skill}-{name}" for name in tasks},
        }
    finally:
        stub.stop()
        pid_file = ws / "escape" / "grandchild.pid"
        if pid_file.exists():  # never leave the sleeper behind, whatever the test found
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_one_enormous_output_line_ends_in_one_recorded_blocker(board: dict[str, Any]) -> None:
    context = board["long-line"]
    assert context["task"]["status"] == "blocked", context["task"]
    [blocker] = context["blockers"]
    text = blocker["description"]
    assert text.startswith(
        "test command failed in .: python -c \"print('E'*20000); raise SystemExit(1)\" exited with code 1; "
        "last output:\nEEEE"
    )
    assert text.endswith(" characters]")
    assert "… [cut " in text
    assert len(text) < 2000
    # once: handed out once, no refused report, no re-run
    assert len(read_events(board["stub"].db, "assigned", board["long-line-id"])) == 1
    assert "outcome_refused_blocking_instead" not in board["log"]


def test_six_thousand_failing_tests_still_give_a_report(board: dict[str, Any]) -> None:
    context = board["many"]
    assert context["task"]["status"] == "blocked"
    [artifact] = context["artifacts"]
    data = artifact["data"]
    assert (data["failed"], data["passed"], data["total"]) == (6000, 0, 6000)  # the counts are exact
    assert len(data["failing"]) + data["failing_not_listed"] == 6000
    assert data["failing"][0] == f"test_many.py::test_fails[case-00000-{'x' * 40}]"
    assert len(data["failures"]) <= 100
    [blocker] = context["blockers"]
    assert blocker["description"].startswith(
        f"6000 of 6000 tests failed in many: test_many.py::test_fails[case-00000-{'x' * 40}] — AssertionError: "
    )
    assert blocker["description"].endswith("; and 5990 more")


def test_a_report_outside_the_workspace_is_refused_untouched(board: dict[str, Any]) -> None:
    context = board["outside-report"]
    assert context["task"]["status"] == "blocked"
    [blocker] = context["blockers"]
    assert blocker["description"].startswith(
        f"payload.command writes its JUnit report to '{board['victim']}', outside the workspace "
    )
    assert board["victim"].read_text() == "<testsuite tests='1'><testcase name='not yours'/></testsuite>"
    assert context["artifacts"] == []


def test_a_setsid_grandchild_does_not_outlive_its_task(board: dict[str, Any]) -> None:
    context = board["escape"]
    assert context["task"]["status"] == "done", context
    grandchild = int((board["ws"] / "escape" / "grandchild.pid").read_text())
    wait_until(lambda: gone(grandchild), timeout=10, message=f"setsid grandchild {grandchild} gone")
