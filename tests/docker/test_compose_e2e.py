"""The real fleet under Docker Compose, end to end (`make test-docker`).

One compose project (a unique name, a free loopback port, PM_LEASE_SECONDS=8) is built,
started with three testing replicas, and driven through the stub's MCP tools from the
host. The tests run in file order on that one fleet; the last one takes it down, and the
fixture always removes it with its volumes (`down -v`), also on failure. Compose logs are
kept in .run/e2e/<project>.log.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pm_agent_stub.testing import free_port, http_get_json
from tests.docker.fleet import REPO, SIZES, TIMINGS, Fleet, run, wait_for

# the module's fixture (build + up) runs inside the first test's timeout
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

BOARDS = Path(__file__).resolve().parent / "boards"
WORKERS = ("documentation-worker", "testing-worker", "devops-worker")
SERVICES = ("pm-agent", *WORKERS)
TAG = "e2e"
DEMO = yaml.safe_load((REPO / "examples" / "demo-project" / "project.yaml").read_text())
DEMO_TASKS = [t["id"] for t in DEMO["tasks"]]
EXPECTED_FAILURE = "legacy-tests"  # the demo's deliberately failing suite
LOGS = REPO / ".run" / "e2e"


def timed(name: str, started: float) -> float:
    TIMINGS[name] = time.monotonic() - started
    return TIMINGS[name]


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(scope="module")
def fleet(engine_env: dict[str, str]) -> Iterator[Fleet]:
    started = time.monotonic()
    project = f"pmfleet-e2e-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "PM_", "AGENT_"))}
    env.update(engine_env)
    env.update({
        "TAG": TAG,
        "PM_AGENT_PORT": str(port),
        "PM_LEASE_SECONDS": "8",  # a killed worker's task comes back quickly
        "HEARTBEAT_SECONDS": "2",  # well inside the lease
        "SHUTDOWN_GRACE_SECONDS": "4",
        "STOP_GRACE_PERIOD": "20s",
        "POLL_WAIT_SECONDS": "20",
        "LOG_FORMAT": "json",
    })
    fleet = Fleet(project=project, env=env, port=port)
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
        fleet.compose("up", "-d", "--wait", "--wait-timeout", "300", "--scale", "testing-worker=3", timeout=420)
        timed("docker compose up --wait (all healthy)", t)
        yield fleet
    finally:
        logs = fleet.compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        (LOGS / f"{project}.log").write_text(logs.stdout + logs.stderr + "\n".join(fleet.log) + "\n")
        fleet.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False, timeout=300)
        timed("total e2e (build, up, all phases, down -v)", started)


# -- images and containers -------------------------------------------------------------


def test_images_run_as_non_root_and_only_devops_has_the_socket(fleet: Fleet) -> None:
    base = fleet.env["PYTHON_IMAGE"]
    base_size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", base]).stdout.strip())
    for service, image in (("pm-agent", "pm-agent"), ("documentation-worker", "documentation-worker"),
                           ("testing-worker", "testing-worker"), ("devops-worker", "devops-worker")):
        ref = f"pm-agent-fleet/{image}:{TAG}"
        info = json.loads(run(["docker", "image", "inspect", ref]).stdout)[0]
        SIZES[ref] = (int(info["Size"]), int(info["Size"]) - base_size)
        assert info["Config"]["User"] == "10001:10001", ref
        assert info["Config"]["Healthcheck"]["Test"][0] == "CMD", ref
        containers = fleet.containers(service)
        assert containers, f"no {service} container"
        for cid in containers:
            uid = run(["docker", "exec", cid, "id", "-u"]).stdout.strip()
            assert uid == "10001", f"{service} runs as uid {uid}"
            mounts = {m["Destination"] for m in fleet.inspect(cid)["Mounts"]}
            assert ("/var/run/docker.sock" in mounts) == (service == "devops-worker"), (service, mounts)
            venv_tools = run(["docker", "exec", cid, "sh", "-c", "ls /opt/venv/bin | grep -x -E 'uv|gcc|pip' || true"])
            assert venv_tools.stdout.strip() == "", f"{service}: build tools in the venv: {venv_tools.stdout}"
    assert len(fleet.containers("testing-worker")) == 3
    # non-root, and still able to use the engine (group_add with the socket's gid)
    [devops] = fleet.containers("devops-worker")
    ping = run(["docker", "exec", devops, "python", "-c", "import docker; print(docker.from_env().ping())"], check=False)
    assert ping.stdout.strip() == "True", ping.stderr
    [stub] = fleet.containers("pm-agent")
    ports = fleet.inspect(stub)["NetworkSettings"]["Ports"]["8000/tcp"]
    assert {p["HostIp"] for p in ports} == {"127.0.0.1"}, "the stub is published on loopback only"


# -- the demo board -------------------------------------------------------------------


def test_demo_board_finishes_except_the_deliberate_failure(fleet: Fleet) -> None:
    t = time.monotonic()
    final = wait_for("the demo board to settle", fleet.settled, timeout=300, interval=1.0)
    ctxs = {t_id: fleet.task(t_id) for t_id in DEMO_TASKS}
    up_wall = fleet.up_wall
    done_at = sorted(parse_time(c["task"]["completed_at"]) for c in ctxs.values() if c["task"]["completed_at"])
    assert done_at, "no demo task was completed"
    TIMINGS["up -> first task done"] = done_at[0] - up_wall
    TIMINGS["up -> demo board settled"] = max(done_at[-1] - up_wall, time.monotonic() - t)
    for task_id, ctx in ctxs.items():
        if task_id == EXPECTED_FAILURE:
            assert ctx["task"]["status"] == "blocked", ctx["task"]
            [blocker] = ctx["blockers"]
            assert "test_legacy_rounds_ties_up" in blocker["description"]
            assert blocker["resolution_suggestion"].strip(), "a blocker always carries a suggestion"
        else:
            assert ctx["task"]["status"] == "done", (task_id, ctx["task"], ctx["blockers"])
    assert final["blocked"] == 1
    assert final["done"] == len(DEMO_TASKS) - 1
    # the devops worker built the demo image through the socket and smoke-tested it
    smoke = ctxs["smoke-deploy"]["artifacts"]
    assert [a["artifact_type"] for a in smoke] == ["docker_image"]
    assert smoke[0]["data"]["smoke_output"].strip() == "5"
    image_id = run(["docker", "image", "inspect", "-f", "{{.Id}}", smoke[0]["location"]]).stdout.strip()
    assert image_id == smoke[0]["data"]["image_id"]


def test_three_testing_replicas_each_complete_tasks(fleet: Fleet) -> None:
    out = fleet.load_board(BOARDS / "replicas.yaml")
    quick = [t["id"] for t in yaml.safe_load((BOARDS / "replicas.yaml").read_text())["tasks"]]
    ctxs = fleet.wait_done(quick, timeout=180)
    testing = [a for a in fleet.agents() if a["role"] == "testing"]
    ids = [a["agent_id"] for a in testing]
    assert len(ids) == 3, ids
    assert len(set(ids)) == 3, "distinct agent ids"
    hostnames = {fleet.inspect(c)["Config"]["Hostname"] for c in fleet.containers("testing-worker")}
    assert {i.removeprefix("testing-") for i in ids} == hostnames, "AGENT_ID = testing-{container hostname}"
    by_agent = {a["agent_id"]: a["tasks_completed"] for a in testing}
    assert all(n >= 1 for n in by_agent.values()), (by_agent, out)
    completed_by = {t: c["task"]["completed_by"] for t, c in ctxs.items()}
    print(f"quick tasks by replica: {completed_by}")


# -- failures: a killed worker, a restarted stub --------------------------------------


def test_killed_worker_task_is_re_offered_and_completed(fleet: Fleet) -> None:
    fleet.load_board(BOARDS / "kill.yaml")

    def running() -> dict[str, Any] | None:
        ctx = fleet.task("e2e-kill-me")
        started = any(p["message"].startswith("Running") for p in ctx["progress_log"])
        return ctx if ctx["task"]["status"] == "in_progress" and ctx["task"]["holder"] and started else None

    ctx = wait_for("a testing replica to start e2e-kill-me", running, timeout=60)
    victim_agent = ctx["task"]["holder"]
    victim = fleet.container_of_agent(victim_agent, "testing-worker")
    time.sleep(1.0)  # well inside its 12 s run
    t = time.monotonic()
    run(["docker", "kill", victim])
    done = fleet.wait_done(["e2e-kill-me"], timeout=120)["e2e-kill-me"]
    timed("docker kill -> its task completed elsewhere", t)
    assert done["task"]["attempt"] >= 2, "the lease expired and the task was offered again"
    assert done["task"]["completed_by"] != victim_agent
    attempts = {(p["agent_id"], p["attempt"]) for p in done["progress_log"]}
    assert (victim_agent, 1) in attempts, attempts
    # bring the killed replica back for the rest of the run (same container: same agent id)
    if not fleet.inspect(victim)["State"]["Running"]:
        run(["docker", "start", victim])
    wait_for("the killed replica to be back", lambda: any(
        a["agent_id"] == victim_agent and a["status"] in ("idle", "working") for a in fleet.agents()), timeout=60)


def _board_snapshot(fleet: Fleet) -> dict[str, Any]:
    out = fleet.compose("exec", "-T", "pm-agent", "python", "-m", "pm_agent_stub", "status", "--json", "--all")
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_stub_restart_mid_run_loses_nothing(fleet: Fleet) -> None:
    fleet.load_board(BOARDS / "restart.yaml")
    ids = [t["id"] for t in yaml.safe_load((BOARDS / "restart.yaml").read_text())["tasks"]]
    wait_for("restart tasks in progress", lambda: sum(
        fleet.task(t)["task"]["status"] == "in_progress" for t in ids[:3]) >= 2, timeout=60)
    before = _board_snapshot(fleet)
    artifacts_before = {t: len(fleet.task(t)["artifacts"]) for t in DEMO_TASKS}
    t = time.monotonic()
    fleet.compose("restart", "pm-agent", timeout=120)
    wait_for("the stub to answer again", lambda: http_get_json(f"http://127.0.0.1:{fleet.port}/healthz")[0] == 200,
             timeout=60, interval=0.2)
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
    events = fleet.compose("exec", "-T", "pm-agent", "python", "-c",
                           "import sqlite3; c = sqlite3.connect('/data/pm_agent.db'); "
                           "print(c.execute(\"select count(*) from events where kind = 'completed' and task_id like 'e2e-restart-%'\").fetchone()[0])")
    assert events.stdout.strip() == str(len(ids)), "each task completed exactly once"


# -- shutdown -------------------------------------------------------------------------


def test_compose_down_leaves_no_task_in_progress(fleet: Fleet) -> None:
    fleet.load_board(BOARDS / "down.yaml")

    def running() -> bool:
        ctx = fleet.task("e2e-during-down")
        return ctx["task"]["status"] == "in_progress" and any(
            p["message"].startswith("Running") for p in ctx["progress_log"])

    wait_for("e2e-during-down to be running", running, timeout=60)
    follow = subprocess.Popen(["docker", "compose", "-p", fleet.project, "logs", "-f", "--no-color", "--tail", "0",
                               *WORKERS], cwd=REPO, env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
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
    stopped = [json.loads(line.split("|", 1)[1]) for line in out.splitlines()
               if '"worker stopped"' in line and "|" in line]
    assert len(stopped) == 5, f"every worker logged its own stop:\n{out[-3000:]}"
    assert all(s["exit_code"] == 0 for s in stopped), stopped
    assert any('"task released"' in line for line in out.splitlines()), "the running task was released"
    assert seconds < 20, "workers exited within their grace, not by SIGKILL"

    image = f"pm-agent-fleet/pm-agent:{TAG}"
    board = run(["docker", "run", "--rm", "-v", f"{fleet.project}_pm-data:/data", image,
                 "python", "-m", "pm_agent_stub", "status", "--json", "--all"])
    data = json.loads(board.stdout)
    in_progress = [t for t in data["tasks"] if t["status"] == "in_progress"]
    if in_progress:
        events = run(["docker", "run", "--rm", "-v", f"{fleet.project}_pm-data:/data", image, "python", "-c",
                      "import sqlite3, sys; c = sqlite3.connect('/data/pm_agent.db'); "
                      "[print(r) for r in c.execute('select * from events where task_id = ? order by id', "
                      "(sys.argv[1],))]", in_progress[0]["task_id"]], check=False)
        raise AssertionError(f"in progress after down: {in_progress}\nits events:\n{events.stdout}{events.stderr}"
                             f"\nworkers' logs during down:\n{out[-4000:]}")
    assert data["project_status"]["in_progress"] == 0, data["project_status"]
    during = next(t for t in data["tasks"] if t["task_id"] == "e2e-during-down")
    assert during["status"] == "todo", during
    assert during["holder"] is None
