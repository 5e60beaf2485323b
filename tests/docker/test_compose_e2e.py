"""The real fleet under Docker Compose, end to end (`make test-docker`).

One compose project (a unique name, a free loopback port, PM_LEASE_SECONDS=8) is built,
started with three testing replicas, and driven through the stub's MCP tools from the
host. The tests run in file order on that one fleet; the last one takes it down, and the
fixture always removes it with its volumes (`down -v`), also on failure. Compose logs are
kept in .run/e2e/<project>.log.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.testing import free_port, http_get_json
from tests.docker.fleet import (
    CHECKOUT,
    LOGS,
    REPO,
    SIZES,
    TIMINGS,
    ComposeFleet,
    board_as_left,
    fleet_env,
    run,
    unique_name,
    wait_for,
)
from tests.docker.scenarios import (
    BOARDS,
    DEMO_TASKS,
    WORKERS,
    board_ids,
    check_demo_board,
    check_killed_worker_task_completed_elsewhere,
    check_processes_run_as_service_user,
    check_released_at_shutdown,
    check_replicas_each_complete_tasks,
    check_workers_stopped_by_themselves,
    wait_task_running,
)

# the module's fixture (build + up) runs inside the first test's timeout
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

SERVICES = ("pm-agent", *WORKERS)
TAG = f"e2e-{CHECKOUT}"  # per checkout: another checkout's run on this engine keeps its own images


def timed(name: str, started: float) -> float:
    TIMINGS[name] = time.monotonic() - started
    return TIMINGS[name]


@pytest.fixture(scope="module")
def fleet(engine_env: dict[str, str]) -> Iterator[ComposeFleet]:
    started = time.monotonic()
    port = free_port()
    fleet = ComposeFleet(project=unique_name("e2e"), env=fleet_env(engine_env, TAG, port), port=port)
    project = fleet.project
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        t = time.monotonic()
        fleet.compose("build", timeout=1200)
        timed("build images (first build of this run)", t)
        t = time.monotonic()
        fleet.compose("build", timeout=600)
        timed("rebuild images, nothing changed (cache)", t)
        fleet.up_wall = time.time()
        t = time.monotonic()
        up = fleet.compose(
            "up", "-d", "--wait", "--wait-timeout", "300", "--scale", "testing-worker=3", timeout=420
        )
        timed("docker compose up --wait (all healthy)", t)
        fleet.up_output = up.stdout + up.stderr
        yield fleet
    finally:
        logs = fleet.compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        (LOGS / f"{project}.log").write_text(logs.stdout + logs.stderr + "\n".join(fleet.log) + "\n")
        fleet.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False, timeout=300)
        timed("total e2e (build, up, all phases, down -v)", started)


# -- images and containers -------------------------------------------------------------


def test_images_run_as_non_root_and_only_devops_has_the_socket(fleet: ComposeFleet) -> None:
    base = fleet.env["PYTHON_IMAGE"]
    base_size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", base]).stdout.strip())
    for service in SERVICES:
        ref = f"pm-agent-fleet/{service}:{TAG}"
        info = json.loads(run(["docker", "image", "inspect", ref]).stdout)[0]
        SIZES[ref] = (int(info["Size"]), int(info["Size"]) - base_size)
        assert info["Config"]["User"] == "10001:10001", ref
        assert info["Config"]["Healthcheck"]["Test"][0] == "CMD", ref
        containers = fleet.containers(service)
        assert containers, f"no {service} container"
        for cid in containers:
            # uv is the testing worker's own tool (it builds each project's test environment),
            # a locked dependency of it; no other service carries it, and none carries pip or gcc
            tools = "gcc|pip" if service == "testing-worker" else "uv|gcc|pip"
            venv_tools = run(
                ["docker", "exec", cid, "sh", "-c", f"ls /opt/venv/bin | grep -x -E '{tools}' || true"]
            )
            assert venv_tools.stdout.strip() == "", f"{service}: build tools in the venv: {venv_tools.stdout}"
    assert len(fleet.containers("testing-worker")) == 3
    # non-root, and the devops worker able to use the engine: its entry point joined the
    # socket's group by itself (no gid given: `up --scale` ran here without make)
    check_processes_run_as_service_user(fleet, Path("/var/run/docker.sock").stat().st_gid)
    [stub] = fleet.containers("pm-agent")
    ports = fleet.inspect(stub)["NetworkSettings"]["Ports"]["8000/tcp"]
    assert {p["HostIp"] for p in ports} == {"127.0.0.1"}, "the stub is published on loopback only"


def test_images_built_here_are_not_pulled(fleet: ComposeFleet) -> None:
    """`pull_policy: never`: Compose asks no registry for the fleet's own images."""
    assert "Container" in fleet.up_output, fleet.up_output[-2000:]
    assert "Pulling" not in fleet.up_output, fleet.up_output[-2000:]
    assert "no such host" not in fleet.up_output, fleet.up_output[-2000:]


# -- the demo board -------------------------------------------------------------------


def test_demo_board_finishes_except_the_deliberate_failure(fleet: ComposeFleet) -> None:
    t = time.monotonic()
    done_at = check_demo_board(fleet)
    TIMINGS["up -> first task done"] = done_at[0] - fleet.up_wall
    TIMINGS["up -> demo board settled"] = max(done_at[-1] - fleet.up_wall, time.monotonic() - t)


def test_three_testing_replicas_each_complete_tasks(fleet: ComposeFleet) -> None:
    completed_by = check_replicas_each_complete_tasks(fleet, replicas=3)
    print(f"quick tasks by replica: {completed_by}")


# -- failures: a killed worker, a restarted stub --------------------------------------


def test_killed_worker_task_is_re_offered_and_completed(fleet: ComposeFleet) -> None:
    victim_agent, victim, seconds = check_killed_worker_task_completed_elsewhere(fleet)
    TIMINGS["docker kill -> its task completed elsewhere"] = seconds
    # bring the killed replica back for the rest of the run (same container: same agent id)
    if not fleet.inspect(victim)["State"]["Running"]:
        run(["docker", "start", victim])
    wait_for(
        "the killed replica to be back",
        lambda: any(
            a["agent_id"] == victim_agent and a["status"] in ("idle", "working") for a in fleet.agents()
        ),
        timeout=60,
    )


def _board_snapshot(fleet: ComposeFleet) -> dict[str, Any]:
    out = fleet.compose(
        "exec", "-T", "pm-agent", "python", "-m", "pm_agent_stub", "status", "--json", "--all"
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_stub_restart_mid_run_loses_nothing(fleet: ComposeFleet) -> None:
    fleet.load_board(BOARDS / "restart.yaml")
    ids = board_ids("restart.yaml")
    wait_for(
        "restart tasks in progress",
        lambda: sum(fleet.task(t)["task"]["status"] == "in_progress" for t in ids[:3]) >= 2,
        timeout=60,
    )
    before = _board_snapshot(fleet)
    artifacts_before = {t: len(fleet.task(t)["artifacts"]) for t in DEMO_TASKS}
    t = time.monotonic()
    fleet.compose("restart", "pm-agent", timeout=120)
    wait_for(
        "the stub to answer again",
        lambda: http_get_json(f"http://127.0.0.1:{fleet.port}/healthz")[0] == 200,
        timeout=60,
        interval=0.2,
    )
    timed("docker compose restart pm-agent (until /healthz)", t)
    after = _board_snapshot(fleet)
    status_before = {x["task_id"]: x["status"] for x in before["tasks"]}
    status_after = {x["task_id"]: x["status"] for x in after["tasks"]}
    assert set(status_after) == set(status_before), "no task lost or invented"
    for task_id, status in status_before.items():
        if status in ("done", "blocked"):
            assert status_after[task_id] == status, (task_id, status, status_after[task_id])
    assert {a["agent_id"] for a in after["agents"]} == {a["agent_id"] for a in before["agents"]}
    assert {t: len(fleet.task(t)["artifacts"]) for t in DEMO_TASKS} == artifacts_before
    fleet.wait_done(ids, timeout=150)
    events = fleet.compose(
        "exec",
        "-T",
        "pm-agent",
        "python",
        "-c",
        "import sqlite3; c = sqlite3.connect('/data/pm_agent.db'); "
        "print(c.execute(\"select count(*) from events where kind = 'completed' and task_id like 'e2e-restart-%'\").fetchone()[0])",
    )
    assert events.stdout.strip() == str(len(ids)), "each task completed exactly once"


# -- shutdown -------------------------------------------------------------------------


def test_compose_down_leaves_no_task_in_progress(fleet: ComposeFleet) -> None:
    fleet.load_board(BOARDS / "down.yaml")
    wait_task_running(fleet, "e2e-during-down")
    follow = subprocess.Popen(
        ["docker", "compose", "-p", fleet.project, "logs", "-f", "--no-color", "--tail", "0", *WORKERS],
        cwd=REPO,
        env=fleet.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1.0)  # let the log follower attach
        t = time.monotonic()
        fleet.compose("down", timeout=180)  # keeps the volumes: the board is read below
        seconds = timed("docker compose down (workers drain)", t)
        out, _ = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
    (LOGS / f"{fleet.project}-down.log").write_text(out)
    stopped = [
        json.loads(line.split("|", 1)[1])
        for line in out.splitlines()
        if '"worker_stopped"' in line and "|" in line
    ]
    check_workers_stopped_by_themselves(stopped, out)
    assert seconds < 20, "workers exited within their grace, not by SIGKILL"
    # read as the fleet left it: `status` would expire overdue leases first and hide a task
    # that was left in progress
    check_released_at_shutdown(
        board_as_left(f"{fleet.project}_pm-data", f"pm-agent-fleet/pm-agent:{TAG}"), "e2e-during-down"
    )
