"""Issue 25's rough edges of `make up`, as a user meets them (marker `docker`).

In a copy of the checkout (its own .env), on a project owned by root (copied in as root, the
case where `sudo chown -R $(id -u):$(id -g)` does nothing):

1. the stub's port is taken: `make up` refuses in one line naming PM_AGENT_PORT, and no
   container is left "Created";
2. on a free port (given as PM_AGENT_PORT, kept in .env for `make status`): the workers run as
   the folder's owner, root, so they can write it; `make up` says the board is empty; the docs
   and the test report land in the folder; a task without a folder runs in the project's;
3. `make logs | jq` reads every line;
4. `make down`, `make up` again: it says the board was kept, and what it holds.
Compose project `edges-<id>`, removed with its volumes at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import free_port
from tests.docker.fleet import CHECKOUT, REPO, run, wait_for
from tests.docker.test_user_compose import COPY_IGNORE, UserFleet
from tests.user.project import board, make_argv, make_project, user_env, uv

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

SETTLE = 600.0


@pytest.fixture(scope="module")
def fleet(engine_env: dict[str, str]) -> Iterator[UserFleet]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the project under test is root's, as one copied in as root is")
    if shutil.which("make") is None or uv() is None:
        pytest.skip("needs make, and uv on PATH or in .tools/ (make install bootstraps it there)")
    scratch = Path(tempfile.mkdtemp(prefix="pm-user-edges-"))
    scratch.chmod(0o755)
    checkout = scratch / "pm-agent-fleet"
    shutil.copytree(REPO, checkout, ignore=COPY_IGNORE, symlinks=True)
    name = f"shop-{uuid.uuid4().hex[:6]}"
    project = make_project(scratch / "home", name, image=f"user-edges/{name}:latest")
    # Two tasks: the docs, and the tests without a folder (the load gives it the project's).
    (project.path / "fleet.yaml").write_text(f"""project: {name}
tasks:
  - {{id: api-docs, name: Docs, required_skills: [documentation], payload: {{path: {name}/shop}}}}
  - {{id: tests, name: Tests, required_skills: [testing],
      payload: {{command: "python -m pytest -q tests", env: {{PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"}}}}}}
""")
    for path in [scratch / "home", *scratch.joinpath("home").rglob("*")]:
        os.chown(path, 0, 0)
    env = user_env(
        COMPOSE_PROJECT_NAME=f"edges-{uuid.uuid4().hex[:8]}",
        TAG=f"user-{CHECKOUT}",  # the images test_user_compose builds: one build for both
        PYTHON_IMAGE=engine_env["PYTHON_IMAGE"],
        COLUMNS="200",
    )
    fleet = UserFleet(checkout, project, env, 0)
    try:
        yield fleet
    finally:
        logs = fleet.compose("logs", "--no-color", timeout=120)
        (REPO / ".run" / "e2e").mkdir(parents=True, exist_ok=True)
        (REPO / ".run" / "e2e" / f"{env['COMPOSE_PROJECT_NAME']}.log").write_text(logs.stdout + logs.stderr)
        fleet.compose("down", "-v", "--timeout", "30", timeout=300)
        shutil.rmtree(scratch, ignore_errors=True)


def all_containers(fleet: UserFleet) -> list[str]:
    project = fleet.env["COMPOSE_PROJECT_NAME"]
    return run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"]
    ).stdout.split()


def test_make_up_on_a_root_owned_project_a_taken_port_and_a_kept_board(fleet: UserFleet) -> None:
    project = fleet.project
    up_args = ("up", f"PROJECT_DIR={project.path}", "PROJECT_FILE=fleet.yaml")

    # 1. A taken port: one line, nothing started.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet.env["PM_AGENT_PORT"] = str(port)
        refused = fleet.make(*up_args)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert f"make up: port {port} on 127.0.0.1 is taken" in out, out[-3000:]
    assert "PM_AGENT_PORT=" in out
    assert "port is already allocated" not in out  # not the engine's raw error
    assert all_containers(fleet) == [], "containers were left behind"

    # 2. A free port, given once: kept in .env; the workers run as the folder's owner, root.
    fleet.port = free_port()
    fleet.env["PM_AGENT_PORT"] = str(fleet.port)
    up = fleet.make(*up_args)
    out = up.stdout + up.stderr
    assert up.returncode == 0, out[-4000:]
    assert f"fleet_env: {project.path} is owned by root, so the workers run as root (uid 0)" in out
    assert "make up: the board is empty" in out
    assert f"warning: task 'tests': no payload path: it runs in '{project.name}'" in out
    recorded = (fleet.checkout / ".env").read_text()
    assert f"PM_AGENT_PORT={fleet.port}" in recorded
    assert "PM_UID=0" in recorded
    del fleet.env["PM_AGENT_PORT"]  # from here on .env says it, as for the user's next commands
    status = fleet.make("status")
    assert status.returncode == 0, status.stderr

    def first_round() -> bool:
        now = {t: c["task"]["status"] for t, c in board(fleet.url).items()}
        return now.get("api-docs") == "done" and now.get("tests") == "blocked"

    wait_for("api-docs done and tests blocked", first_round, timeout=SETTLE, interval=2.0)
    index = project.path / "docs" / "api" / "shop" / "index.md"  # the package's own folder
    assert index.is_file()
    assert index.stat().st_uid == 0
    report = project.path / "reports" / "tests.xml"  # in the project, though the task named no folder
    assert report.is_file()
    assert not (project.path.parent / "reports").exists()
    tests = board(fleet.url)["tests"]
    assert "permission denied" not in json.dumps(tests["blockers"])
    assert "failed" in tests["blockers"][0]["description"]  # the user's failing test, not a refusal

    # 3. make logs | jq: every line is JSON.
    piped = subprocess.Popen(
        [
            "bash",
            "-c",
            f"{' '.join(make_argv(fleet.checkout, 'logs', 'SERVICE=testing-worker'))} | jq --unbuffered -c .",
        ],
        cwd=fleet.checkout,
        env=fleet.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(15)
    os.killpg(piped.pid, signal.SIGTERM)
    lines, errors = piped.communicate(timeout=60)
    parsed = [json.loads(line) for line in lines.splitlines()]
    assert parsed, errors
    assert "parse error" not in errors
    assert all(str(p.get("service", "")).startswith("testing-worker") for p in parsed), parsed[:3]
    assert any(p.get("event") == "registered" for p in parsed)

    # 4. Down and up again: the board is kept, and make up says so.
    down = fleet.make("down")
    assert down.returncode == 0, down.stderr[-2000:]
    again = fleet.make("up")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert (
        "make up: the board is kept from an earlier run (the stub's volume pm-data): 2 tasks, 1 done, 1 blocked"
        in out
    )
    assert "docker compose down -v" in out
