"""Issue 12's new user, as local processes, with the README's commands only.

A project of their own outside the repository (a package, four tests with one failing, a
Dockerfile, fleet.yaml); `make demo PROJECT_DIR=... PROJECT_FILE=fleet.yaml` runs the
fleet on it. Then: the API docs appear in their folder, the failing test blocks its task
with the test's name (`make show`), they fix the code on the host and `make rerun`, the task
is done, and the image task that waited on it builds and smoke-tests their image. Ctrl-C
stops the fleet and every worker shows offline at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import free_port, load_tasks, start_stub, wait_until
from tests.helpers import REPO_ROOT, open_scratch
from tests.user.project import (
    FAILING_TEST,
    Project,
    board,
    board_dirs,
    docker_answers,
    fix_the_bug,
    forget_boards,
    make,
    make_argv,
    make_project,
    statuses,
    user_env,
    uv,
)

SETTLE = 240.0  # generous: the machine is shared and often slow; nothing waits a fixed time


@pytest.fixture
def home() -> Iterator[Path]:
    """The user's home: our own temporary folder (pytest's numbered ones may be pruned by other
    sessions on a shared machine while this long test runs)."""
    with open_scratch("pm-user-home-") as path:
        yield path


@pytest.fixture
def project(home: Path) -> Iterator[Project]:
    if shutil.which("make") is None or uv() is None:
        pytest.skip("needs make, and uv on PATH or in .tools/ (make install bootstraps it there)")
    name = f"shop-{uuid.uuid4().hex[:6]}"
    made = make_project(home, name, image=f"user-journey/{name}:latest")
    yield made
    subprocess.run(["docker", "image", "rm", "-f", made.image], capture_output=True, check=False, timeout=60)
    forget_boards(name)


def test_the_new_users_project_as_local_processes(project: Project) -> None:
    port = free_port()
    env = user_env(PM_AGENT_PORT=str(port), LOG_FORMAT="json")
    engine = docker_answers()
    if engine:
        env["PYTHON_IMAGE"] = os.environ.get("PYTHON_IMAGE", "python:3.11-slim")
    url = f"http://127.0.0.1:{port}/mcp"
    log = project.path.parent.parent / "fleet.log"  # the user's terminal
    with log.open("wb") as out:
        fleet = subprocess.Popen(
            make_argv(REPO_ROOT, "demo", f"PROJECT_DIR={project.path}", "PROJECT_FILE=fleet.yaml"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The docs are written and the failing test blocks its task, naming the test.
        wait_until(
            lambda: _settled_first_round(url),
            timeout=SETTLE,
            interval=1.0,
            message=f"api-docs done and tests blocked (log: {log})",
        )
        index = project.path / "docs" / "api" / "shop" / "index.md"  # the package's own folder
        assert index.is_file(), sorted(str(p) for p in project.path.rglob("*"))
        assert "discount" in (project.path / "docs" / "api" / "shop" / "shop.md").read_text()
        assert (project.path / "reports" / "tests.xml").is_file()  # inside the project, not the workspace top
        shown = make(REPO_ROOT, "show", "TASK=tests", env={**env, "COLUMNS": "200"})
        assert shown.returncode == 0, shown.stderr
        assert FAILING_TEST in shown.stdout
        assert "assert 80.0 == 90" in shown.stdout
        assert "suggestion: Tests are failing" in shown.stdout
        assert statuses(url)["image"] == "todo"  # waits for the tests

        # Fixed on the host, rerun: done, and the image that waited on the tests is built.
        fix_the_bug(project)
        rerun = make(REPO_ROOT, "rerun", "TASK=tests", "REASON=fixed the discount", env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert "Task 'tests' is back in the queue (run 2)" in rerun.stderr
        final = wait_until(
            lambda: _image_ended(url),
            timeout=SETTLE,
            interval=1.0,
            message=f"the image task to end (log: {log})",
        )
        tests = board(url)["tests"]
        assert tests["task"]["status"] == "done"
        assert tests["task"]["run"] == 2
        assert "4 passed" in tests["progress_log"][-1]["message"], tests["progress_log"][-3:]
        image = final["image"]
        if engine:
            assert image["task"]["status"] == "done", image["blockers"]
            [artifact] = image["artifacts"]
            assert artifact["location"] == project.image
            assert artifact["data"]["smoke_output"].strip() == "5"
        else:
            assert image["task"]["status"] == "blocked"
            assert "Docker engine unreachable" in image["blockers"][0]["description"]

        status = make(REPO_ROOT, "status", env={**env, "COLUMNS": "80"})
        assert status.returncode == 0, status.stderr
        assert "3 tasks" in status.stdout
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGINT)  # Ctrl-C in the user's terminal
    # make itself dies of the Ctrl-C (-2 or 130) once its child is done; the fleet stops cleanly.
    assert fleet.wait(timeout=120) in (0, 130, -signal.SIGINT)
    told = log.read_text()
    assert "demo: interrupted, stopping the fleet" in told
    assert "Traceback" not in told, told[-3000:]
    assert "stub unreachable" not in told, "the stub stopped before the workers had deregistered"
    # The stopped workers deregistered: offline at once (read from the kept board file).
    [db] = [found / "pm_agent.db" for found in board_dirs(project.name) if found.is_dir()]
    listed = subprocess.run(
        [sys.executable, "-m", "pm_agent_stub", "status", "--json", "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    report = json.loads(listed.stdout)
    assert {a["agent_id"]: a["status"] for a in report["agents"]} == dict.fromkeys(
        ("documentation-local", "testing-local", "devops-local"), "offline"
    )


def _settled_first_round(url: str) -> bool:
    try:
        now = statuses(url)
    except Exception:
        return False  # the fleet is still starting
    return now.get("api-docs") == "done" and now.get("tests") == "blocked"


def _image_ended(url: str) -> dict[str, dict[str, object]] | None:
    now = board(url)
    return now if now["image"]["task"]["status"] in ("done", "blocked") else None


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def unwritable() -> Iterator[Path]:
    """A workspace holding a project `app` the non-root worker may read but not write (root's, as copied in)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the worker as a non-root user")
    root = Path(tempfile.mkdtemp(prefix="pm-user-perm-"))
    try:
        workspace = root / "src"
        (workspace / "app" / "shop").mkdir(parents=True)
        (workspace / "app" / "shop" / "__init__.py").write_text(
            '"""A shop."""\n\ndef total(x):\n    return sum(x)\n'
        )
        (workspace / "app" / "tests").mkdir()
        for folder in (root, workspace, workspace / "app"):
            folder.chmod(0o755)
        (root / "health").mkdir(mode=0o777)
        (root / "health").chmod(0o777)
        yield workspace
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_as_nobody(
    module: str, workspace: Path, task: dict[str, object], tmp_path: Path
) -> tuple[str, dict[str, object]]:
    """The worker `module` as uid 65534 on one task; (its log, the task's context)."""
    stub = start_stub(tmp_path / "board.db")
    try:
        load_tasks(stub.db, task)
        env = user_env(
            PM_AGENT_URL=stub.url,
            WORKSPACE=str(workspace),
            AGENT_ID="nobody-1",
            MAX_TASKS="1",
            HEALTH_DIR=str(workspace.parent / "health"),
            LOG_FORMAT="json",
            POLL_WAIT_SECONDS="2",
        )
        worker = subprocess.run(
            [*NOBODY, sys.executable, "-m", module],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=workspace.parent,
        )
        assert worker.returncode == 0, worker.stderr[-2000:]
        return worker.stderr, board(stub.url)[str(task["id"])]
    finally:
        stub.stop()


def assert_permission_blocker(log: str, ctx: dict[str, object], app: Path) -> None:
    [blocker] = ctx["blockers"]  # type: ignore[misc]
    assert blocker["description"] == (
        f"permission denied: uid 65534 (gid 65534) cannot write {app} (owned by uid 0). "
        f"Fix: `sudo chown -R 65534:65534 {app}`, then rerun the task"
    )
    assert blocker["resolution_suggestion"].startswith("The worker's user may not use that folder")
    assert "Traceback" not in log
    assert '"level": "error"' not in log  # a person's problem, not the worker's bug


def test_a_test_task_the_worker_may_not_write_the_report_of_says_uid_and_fix(
    unwritable: Path, tmp_path: Path
) -> None:
    log, ctx = run_as_nobody(
        "testing_worker",
        unwritable,
        {"id": "tests", "name": "Tests", "required_skills": ["testing"], "payload": {"path": "app"}},
        tmp_path,
    )
    assert_permission_blocker(log, ctx, unwritable / "app")


def test_the_docs_task_on_a_project_it_may_not_write_says_uid_and_fix(
    unwritable: Path, tmp_path: Path
) -> None:
    """Issue 12's case: the documentation worker and a project copied in as root."""
    usable = subprocess.run(
        [*NOBODY, sys.executable, "-c", "import os, sys; sys.exit(not os.access(sys.executable, os.X_OK))"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if usable.returncode != 0:
        pytest.skip(
            f"{sys.executable} cannot be run by uid 65534 here, and the documentation worker parses in a "
            "child process of it"
        )
    log, ctx = run_as_nobody(
        "documentation_worker",
        unwritable,
        {
            "id": "api-docs",
            "name": "Docs",
            "required_skills": ["documentation"],
            "payload": {"path": "app/shop"},
        },
        tmp_path,
    )
    assert_permission_blocker(log, ctx, unwritable / "app")
