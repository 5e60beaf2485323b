"""The fleet as a Swarm stack, end to end (`make test-swarm`, marker `swarm`).

The engine becomes a one-node swarm for this module and leaves it afterwards, also on
failure (`docker swarm leave --force`); an engine that is already in a swarm is refused, not
touched. The images are built once, then:

1. for comparison, the same fleet under Compose on the same images: up, healthy, testing
   scaled to 3, the demo board settles, down -v;
2. the stack as the README deploys it (`make stack-up`: local images, no registry), healthy,
   every process uid 10001, the stub reached by DNS round robin on a host-mode port;
3. the testing worker scaled to 3 (`docker service scale`), the demo board settles;
4. three distinct agent ids, each completes tasks;
5. `docker kill` of the task container running a long check: another agent completes it;
6. `make stack-down` (workers first, then `docker stack rm`) with a task running: every
   worker stops by itself with exit 0, the task is released, and the board read from the
   volume afterwards has nothing in progress.

Timings of both platforms are printed at the end. Service logs are kept in
.run/e2e/<stack>.log.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_agent_stub.testing import free_port, http_get_json
from tests.docker.fleet import (
    CHECKOUT,
    LOGS,
    REPO,
    TIMINGS,
    ComposeFleet,
    Fleet,
    SwarmFleet,
    board_as_left,
    fleet_env,
    run,
    unique_name,
    wait_for,
)
from tests.docker.scenarios import (
    BOARDS,
    WORKERS,
    check_demo_board,
    check_killed_worker_task_completed_elsewhere,
    check_processes_run_as_service_user,
    check_released_at_shutdown,
    check_replicas_each_complete_tasks,
    check_workers_stopped_by_themselves,
    wait_task_running,
)

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1800)]

TAG = f"swarm-e2e-{CHECKOUT}"
SOCKET_GID = Path("/var/run/docker.sock").stat().st_gid if Path("/var/run/docker.sock").exists() else 0


def record_settle(platform: str, fleet: Fleet, healthy_wall: float, done_at: list[float]) -> None:
    """The demo board's timings on one platform, from the first container or service created
    (the board runs while the health checks are still due: it can settle before "healthy")."""
    started = fleet.created_wall()
    TIMINGS[f"{platform}: start -> all healthy"] = healthy_wall - started
    TIMINGS[f"{platform}: start -> first demo task done"] = done_at[0] - started
    TIMINGS[f"{platform}: start -> demo board settled"] = done_at[-1] - started


def save_service_logs(fleet: SwarmFleet) -> None:
    """Every service's log (while the stack still has services) and the test's commands."""
    names = run(
        ["docker", "stack", "services", "--format", "{{.Name}}", fleet.stack], check=False
    ).stdout.split()
    if not names:
        return
    logs = []
    for name in names:
        out = run(["docker", "service", "logs", "--timestamps", "--raw", name], check=False, timeout=120)
        logs.append(f"== {name}\n{out.stdout}{out.stderr}")
    (LOGS / f"{fleet.stack}.log").write_text("\n".join(logs + fleet.log) + "\n")


@pytest.fixture(scope="module")
def images(engine_env: dict[str, str]) -> dict[str, str]:
    """The fleet's images, built once for both platforms; the environment that names them."""
    env = fleet_env(engine_env, TAG, free_port())
    t = time.monotonic()
    run(["docker", "compose", "-p", unique_name("build"), "build"], env=env, timeout=1200)
    TIMINGS["build images"] = time.monotonic() - t
    return env


@pytest.fixture(scope="module")
def swarm(engine_env: dict[str, str]) -> Iterator[None]:
    """This engine as a one-node swarm for the module; always left afterwards."""
    state = run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.strip()
    if state != "inactive":
        pytest.fail(
            f"this engine is already in a swarm (state {state!r}): the test makes its own one-node swarm "
            "and leaves it afterwards, so run it on an engine outside any swarm"
        )
    run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"])
    try:
        yield
    finally:
        run(["docker", "swarm", "leave", "--force"], check=False, timeout=120)


@pytest.fixture(scope="module")
def stack(swarm: None, images: dict[str, str]) -> Iterator[SwarmFleet]:
    port = free_port()
    fleet = SwarmFleet(stack=unique_name("swarm"), env={**images, "PM_AGENT_PORT": str(port)}, port=port)
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        t = time.monotonic()
        fleet.make("stack-up")
        TIMINGS["swarm: make stack-up (cached build, render, deploy, until healthy)"] = time.monotonic() - t
        fleet.up_wall = time.time()  # here: when every service was healthy
        yield fleet
    finally:
        save_service_logs(fleet)
        run(
            [str(REPO / "deploy" / "swarm" / "stack.sh"), "down", fleet.stack],
            env=fleet.env,
            check=False,
            timeout=600,
        )
        run(["docker", "volume", "rm", f"{fleet.stack}_pm-data", f"{fleet.stack}_workspace"], check=False)


# -- the reference: the same board under Compose, on the same images ------------------


def test_compose_reference_demo_board_settles(images: dict[str, str]) -> None:
    port = free_port()
    fleet = ComposeFleet(project=unique_name("ref"), env={**images, "PM_AGENT_PORT": str(port)}, port=port)
    try:
        fleet.compose("up", "-d", "--wait", "--wait-timeout", "300", timeout=420)
        healthy = time.time()
        fleet.compose("up", "-d", "--no-recreate", "--scale", "testing-worker=3", timeout=300)
        record_settle("compose", fleet, healthy, check_demo_board(fleet))
    finally:
        fleet.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False, timeout=300)


# -- the stack ----------------------------------------------------------------------------


def test_stack_is_healthy_and_runs_as_the_service_user(stack: SwarmFleet) -> None:
    TIMINGS["swarm: deploy -> all healthy"] = stack.up_wall - stack.created_wall()
    code, health = http_get_json(f"http://127.0.0.1:{stack.port}/healthz")
    assert code == 200, health
    [stub] = json.loads(run(["docker", "service", "inspect", stack.service("pm-agent")]).stdout)
    assert stub["Spec"]["EndpointSpec"]["Mode"] == "dnsrr", "no virtual IP: it needs IPVS in the kernel"
    assert [p["PublishMode"] for p in stub["Endpoint"]["Ports"]] == ["host"]
    check_processes_run_as_service_user(stack, SOCKET_GID)


def test_scaled_to_three_testing_replicas_the_demo_board_settles(stack: SwarmFleet) -> None:
    run(["docker", "service", "scale", "--detach=true", f"{stack.service('testing-worker')}=3"])
    record_settle("swarm", stack, stack.up_wall, check_demo_board(stack))


def test_three_testing_replicas_each_complete_tasks(stack: SwarmFleet) -> None:
    wait_for(
        "three running testing replicas",
        lambda: len(stack.containers("testing-worker", running=True)) == 3,
        timeout=120,
    )
    completed_by = check_replicas_each_complete_tasks(stack, replicas=3)
    print(f"quick tasks by replica: {completed_by}")


def test_killed_task_container_task_completed_elsewhere(stack: SwarmFleet) -> None:
    victim_agent, victim, seconds = check_killed_worker_task_completed_elsewhere(stack)
    TIMINGS["swarm: docker kill -> its task completed elsewhere"] = seconds

    # Swarm replaces the killed task with a new container: a new hostname, a new agent id
    def replaced() -> list[str] | None:
        running = stack.containers("testing-worker", running=True)
        return running if len(running) == 3 and victim not in running else None

    hostnames = {
        stack.inspect(c)["Config"]["Hostname"]
        for c in wait_for("Swarm to replace the killed replica", replaced, timeout=120)
    }
    wait_for(
        "the replacement to register",
        lambda: (
            {a["agent_id"].removeprefix("testing-") for a in stack.agents() if a["status"] != "offline"}
            >= hostnames
        ),
        timeout=60,
    )
    assert victim_agent.removeprefix("testing-") not in hostnames


def test_stack_down_leaves_no_task_in_progress(stack: SwarmFleet) -> None:
    stack.load_board(BOARDS / "down.yaml")
    wait_task_running(stack, "e2e-during-down")
    save_service_logs(stack)  # the services and their logs are gone after stack-down
    # one follower per worker container: each ends when its container stops
    followers = [
        subprocess.Popen(
            ["docker", "logs", "-f", "--tail", "0", cid],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for w in WORKERS
        for cid in stack.containers(w, running=True)
    ]
    try:
        time.sleep(1.0)  # let the log followers attach
        t = time.monotonic()
        stack.make("stack-down", timeout=600)
        TIMINGS["swarm: make stack-down (workers drain, then stack rm)"] = time.monotonic() - t
        out = "".join(f.communicate(timeout=60)[0] for f in followers)
    finally:
        for f in followers:
            if f.poll() is None:
                f.kill()
    (LOGS / f"{stack.stack}-down.log").write_text(out)
    stopped = [json.loads(line) for line in out.splitlines() if '"worker_stopped"' in line]
    check_workers_stopped_by_themselves(stopped, out)
    assert not run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={stack.stack}"]
    ).stdout.strip()
    check_released_at_shutdown(
        board_as_left(f"{stack.stack}_pm-data", f"pm-agent-fleet/pm-agent:{TAG}"), "e2e-during-down"
    )
