"""What a deployment of the fleet must do, whatever runs it: the phases the Compose and the
Swarm end-to-end tests share. Each drives a `Fleet` through the stub's tools and asserts.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.docker.fleet import REPO, Fleet, run, wait_for

BOARDS = Path(__file__).resolve().parent / "boards"
DEMO = yaml.safe_load((REPO / "examples" / "demo-project" / "project.yaml").read_text())
DEMO_TASKS = [t["id"] for t in DEMO["tasks"]]
EXPECTED_FAILURE = "legacy-tests"  # the demo's deliberately failing suite
#: the worker services and the module each runs (`python -m <module>`)
WORKER_MODULES = {
    "documentation-worker": "documentation_worker",
    "testing-worker": "testing_worker",
    "devops-worker": "devops_worker",
}
WORKERS = tuple(WORKER_MODULES)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def board_ids(board: str) -> list[str]:
    return [t["id"] for t in yaml.safe_load((BOARDS / board).read_text())["tasks"]]


def check_processes_run_as_service_user(fleet: Fleet, socket_gid: int) -> None:
    """Every service's process is uid 10001 with no capabilities; only the devops worker has
    the Docker socket, and its process holds the socket's group (joined by its entry point)."""
    for service, module in {"pm-agent": "pm_agent_stub", **WORKER_MODULES}.items():
        containers = fleet.containers(service, running=True)
        assert containers, f"no {service} container"
        for cid in containers:
            uid, caps, groups = fleet.process_identity(cid, module)
            assert uid == "10001", f"{service} runs as uid {uid}"
            assert int(caps, 16) == 0, f"{service} runs with capabilities {caps}"
            mounts = {m["Destination"] for m in fleet.inspect(cid)["Mounts"]}
            has_socket = "/var/run/docker.sock" in mounts
            assert has_socket == (service == "devops-worker"), (service, mounts)
            if has_socket:
                assert str(socket_gid) in groups, (
                    f"the devops worker lacks the socket's group {socket_gid}: {groups}"
                )


def check_demo_board(fleet: Fleet, timeout: float = 300) -> list[float]:
    """The demo board settles: every task done but the deliberately failing suite, which is
    blocked naming the failing test; the demo image was built through the socket and its
    smoke test printed 5. Returns the tasks' completion times (wall clock, sorted)."""
    final = wait_for("the demo board to settle", fleet.settled, timeout=timeout, interval=1.0)
    ctxs = {t_id: fleet.task(t_id) for t_id in DEMO_TASKS}
    done_at = sorted(
        parse_time(c["task"]["completed_at"]) for c in ctxs.values() if c["task"]["completed_at"]
    )
    assert done_at, "no demo task was completed"
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
    return done_at


def check_replicas_each_complete_tasks(fleet: Fleet, replicas: int = 3) -> dict[str, str]:
    """Six quick real test runs: `replicas` testing agents with distinct ids, each
    `testing-<its container's hostname>`, and each completes at least one task."""
    out = fleet.load_board(BOARDS / "replicas.yaml")
    ctxs = fleet.wait_done(board_ids("replicas.yaml"), timeout=180)
    testing = [a for a in fleet.agents() if a["role"] == "testing" and a["status"] != "offline"]
    ids = [a["agent_id"] for a in testing]
    assert len(ids) == replicas, ids
    assert len(set(ids)) == replicas, "distinct agent ids"
    hostnames = {
        fleet.inspect(c)["Config"]["Hostname"] for c in fleet.containers("testing-worker", running=True)
    }
    assert {i.removeprefix("testing-") for i in ids} == hostnames, "AGENT_ID = testing-{container hostname}"
    by_agent = {a["agent_id"]: a["tasks_completed"] for a in testing}
    assert all(n >= 1 for n in by_agent.values()), (by_agent, out)
    return {t: c["task"]["completed_by"] for t, c in ctxs.items()}


def check_killed_worker_task_completed_elsewhere(fleet: Fleet) -> tuple[str, str, float]:
    """`docker kill` of the testing replica running a 12-second check: its lease expires and
    another agent completes the task (attempt 2). Returns (victim agent, its container,
    seconds from the kill to the task done)."""
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
    seconds = time.monotonic() - t
    assert done["task"]["attempt"] >= 2, "the lease expired and the task was offered again"
    assert done["task"]["completed_by"] != victim_agent
    attempts = {(p["agent_id"], p["attempt"]) for p in done["progress_log"]}
    assert (victim_agent, 1) in attempts, attempts
    return victim_agent, victim, seconds


def wait_task_running(fleet: Fleet, task_id: str) -> None:
    def running() -> bool:
        ctx = fleet.task(task_id)
        return ctx["task"]["status"] == "in_progress" and any(
            p["message"].startswith("Running") for p in ctx["progress_log"]
        )

    wait_for(f"{task_id} to be running", running, timeout=60)


def check_workers_stopped_by_themselves(stopped: list[dict[str, Any]], logs: str) -> None:
    """At shutdown each of the five workers (three testing replicas, one of each other) logged
    its own stop with exit code 0, and the task that was running was released (`logs`: theirs)."""
    assert len(stopped) == 5, f"every worker logged its own stop:\n{logs[-3000:]}"
    assert all(s["exit_code"] == 0 for s in stopped), stopped
    assert any('"task_released"' in line for line in logs.splitlines()), "the running task was released"


def check_released_at_shutdown(board: dict[str, Any], task_id: str) -> None:
    """A board read from the volume after the fleet stopped (`board_as_left`): nothing in
    progress, and the task that was running was given back by its holder, not left to expire."""
    assert board["in_progress"] == [], f"in progress after the fleet stopped: {board['in_progress']}"
    assert board["status"][task_id] == "todo", board["status"][task_id]
    kinds = [(kind, agent) for t, kind, agent, _ in board["events"] if t == task_id]
    assigned = [agent for kind, agent in kinds if kind == "assigned"]
    assert assigned, kinds
    assert kinds[-1] == ("released", assigned[-1]), f"{task_id}'s events: {kinds}"
