"""Issue 25's rough edges of `make demo PROJECT_DIR=...`, as a user meets them, with real processes.

One project of the user's (a test suite that takes a few seconds, a fleet.yaml whose test task
names no folder) next to another project whose test fails:

- the task runs in the project's folder (the load warns that it chose it): the sibling's
  failing test is not collected and nothing is written next to the project;
- a second `make demo` on the same folder while the first runs refuses with one line;
- Ctrl-C while the test task runs: each worker gets one signal, so the task finishes within
  SHUTDOWN_GRACE_SECONDS instead of being given back at once;
- the stub closed an idle browser-style connection before it stopped, leaving TIME-WAIT on
  its port, and `make demo` starts again right away (it refused for about a minute);
- the restarted run says the board was kept and what it holds; a fresh folder with the same
  name elsewhere gets a board of its own;
- a port something listens on is refused with the setting a make user can give.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import free_port, read_events, wait_until
from tests.helpers import REPO_ROOT, open_scratch
from tests.user.project import board_dirs, forget_boards, make, make_argv, statuses, user_env, uv

SETTLE = 240.0
# A suite that runs until the test opens its gate (a file): as long as a slow suite, no longer.
SLOW_TEST = """import os
import time
from pathlib import Path


def test_runs_until_the_gate_opens() -> None:
    gate, deadline = Path(os.environ["GATE"]), time.monotonic() + 300
    while not gate.exists():
        assert time.monotonic() < deadline, "the gate never opened"
        time.sleep(0.1)
"""
FAILING = "def test_not_ours() -> None:\n    assert False, 'the sibling project was collected'\n"
FLEET = """project: {name}
tasks:
  - id: tests
    name: Run the tests
    required_skills: [testing]
    payload: {{command: "python -m pytest -q", env: {{PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1", GATE: "{gate}"}}}}
"""


@pytest.fixture
def home() -> Iterator[Path]:
    if shutil.which("make") is None or uv() is None:
        pytest.skip("needs make, and uv on PATH or in .tools/ (make install bootstraps it there)")
    with open_scratch("pm-demo-edges-") as path:
        yield path


@pytest.fixture
def name() -> Iterator[str]:
    """The project's folder name; every board and lock `make demo` kept for it goes afterwards."""
    chosen = f"shop-{uuid.uuid4().hex[:6]}"
    yield chosen
    forget_boards(chosen)


def make_project(parent: Path, name: str, gate: Path) -> Path:
    root = parent / name
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_slow.py").write_text(SLOW_TEST)
    (root / "fleet.yaml").write_text(FLEET.format(name=name, gate=gate))
    return root


def time_wait_on(port: int) -> int:
    """TIME-WAIT sockets whose local port is `port` (the ones that made a plain bind fail)."""
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            found += int(local.rsplit(":", 1)[1], 16) == port and state == "06"
    return found


def start_demo(project: Path, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            make_argv(REPO_ROOT, "demo", f"PROJECT_DIR={project}", *extra),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the user's terminal: Ctrl-C goes to this process group
        )


def test_lock_grace_restart_and_kept_board(home: Path, name: str) -> None:
    src = home / "src"
    gate = home / "gate"
    project = make_project(src, name, gate)
    (src / "other" / "tests").mkdir(parents=True)
    (src / "other" / "tests" / "test_other.py").write_text(FAILING)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    # The stub closes an idle connection after 1 s (10 s by default), as it does a browser's.
    env = user_env(
        PM_AGENT_PORT=str(port), LOG_FORMAT="json", SHUTDOWN_GRACE_SECONDS="90", PM_HTTP_HEADER_TIMEOUT="1"
    )
    log = home / "fleet.log"
    fleet = start_demo(project, env, log)
    try:
        wait_until(
            lambda: _status(url, "tests") == "in_progress",
            timeout=SETTLE,
            interval=0.3,
            message=f"the test task to start (log: {log})",
        )
        second = make(REPO_ROOT, "demo", f"PROJECT_DIR={project}", env=env, timeout=300)
        assert second.returncode != 0
        refusal = second.stdout + second.stderr
        assert "demo: another `make demo` is running on " + str(project) in refusal, refusal[-2000:]
        assert "stub up at" not in refusal

        # A browser tab's connection, idle until the stub closes it: TIME-WAIT on the stub's port.
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        idle.request("GET", "/healthz")
        idle.getresponse().read()
        time.sleep(2.5)
        idle.close()

        assert _status(url, "tests") == "in_progress", "the Ctrl-C must come while the task runs"
        os.killpg(fleet.pid, signal.SIGINT)  # Ctrl-C in the user's terminal
        wait_until(
            lambda: "demo: interrupted" in log.read_text(errors="replace"), timeout=60, message="the Ctrl-C"
        )
        time.sleep(2)
        assert _status(url, "tests") == "in_progress", "a stopping worker gave its running task back"
        gate.touch()  # the suite ends: within the grace, so the task is done, not given back
        assert fleet.wait(timeout=180) in (0, 130, -signal.SIGINT)
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGINT)
            fleet.wait(timeout=180)
    exited = time.monotonic()
    told = log.read_text(errors="replace")
    try:
        assert "demo: interrupted, stopping the fleet: each worker finishes its task within 90 s" in told
        assert "stopping_after_current_task" in told
        assert "second_stop_signal" not in told, "a worker got two signals from one Ctrl-C"
        assert "Traceback" not in told, told[-3000:]
        [board_dir] = [d for d in board_dirs(name) if d.is_dir()]
        db = board_dir / "pm_agent.db"
        assert [e["agent_id"] for e in read_events(db, kind="completed", task_id="tests")] == [
            "testing-local"
        ]
        assert not read_events(db, kind="released", task_id="tests"), "the task was given back, not finished"
        # It ran in the project's folder, which the load named, and only there.
        assert f"warning: task 'tests': no payload path: it runs in '{name}' (the project's folder)" in told
        assert (project / "reports" / "tests.xml").is_file()
        assert 'tests="1"' in (project / "reports" / "tests.xml").read_text()  # ours only, not the sibling's
        for stray in ("reports", ".pytest_cache", ".hypothesis"):
            assert not (src / stray).exists(), f"{stray} written next to the project"

        # Right away again: TIME-WAIT no longer refuses, and the kept board is named.
        leftovers = time_wait_on(port)
        assert leftovers, "the scenario needs the stub's TIME-WAIT sockets (an idle connection it closed)"
        again = make(
            REPO_ROOT, "demo", f"PROJECT_DIR={project}", "DEMO_ARGS=--until-settled", env=env, timeout=600
        )
        out = again.stdout + again.stderr
        assert again.returncode == 0, out[-3000:]
        assert "is taken" not in out
        assert time.monotonic() - exited < 60  # within the minute TIME-WAIT lasts: the check ignored it
        assert f"the board of this folder from an earlier run is kept ({db}): 1 tasks, 1 done" in out
        assert "DEMO_ARGS=--fresh" in out

        # The same name in another folder: a board of its own, its task run afresh.
        fresh = make_project(home / "elsewhere", name, gate)
        other = make(
            REPO_ROOT, "demo", f"PROJECT_DIR={fresh}", "DEMO_ARGS=--until-settled", env=env, timeout=600
        )
        out = other.stdout + other.stderr
        assert other.returncode == 0, out[-3000:]
        assert "from an earlier run is kept" not in out
        assert (fresh / "reports" / "tests.xml").is_file()
        assert len([d for d in board_dirs(name) if d.is_dir()]) == 2
    finally:
        forget_boards(name)


def test_a_taken_port_names_the_setting_a_make_user_can_give(home: Path, name: str) -> None:
    project = make_project(home / "src", name, home / "gate")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = make(
            REPO_ROOT, "demo", f"PROJECT_DIR={project}", env=user_env(PM_AGENT_PORT=str(port)), timeout=300
        )
    out = ran.stdout + ran.stderr
    assert ran.returncode != 0
    assert f"demo: port {port} is taken" in out
    assert "export PM_AGENT_PORT=" in out
    assert f"make demo PROJECT_DIR={project}" in out
    assert "--port" not in out  # a make user cannot pass it
    assert "stub up at" not in out


def _status(url: str, task_id: str) -> str | None:
    try:
        return statuses(url).get(task_id)
    except Exception:
        return None  # the fleet is still starting


if sys.platform != "linux":  # /proc/net/tcp, setsid
    pytestmark = pytest.mark.skip(reason="Linux only")
