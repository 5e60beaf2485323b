"""Drive one deployment of the fleet from a test: the stub's tools, its containers, docker.

    fleet = ComposeFleet(project="pmfleet-e2e-1a2b", env={...}, port=8123)
    fleet.compose("up", "-d", "--wait")
    fleet.tool("get_project_status")

`Fleet` holds what any deployment offers (the stub's MCP tools through its published port,
the containers of a service, a board loaded inside the stub's container); `ComposeFleet`
and `SwarmFleet` say how a service's containers are found and how the fleet is driven.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp

from pm_agent_stub.testing import call_tool

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / ".run" / "e2e"  # each run's fleet logs, kept after the run
T = TypeVar("T")

#: this checkout's name, in the names of what a test run creates (compose projects, stacks,
#: image tags): runs from two checkouts on one engine never share a project or an image tag
CHECKOUT = re.sub(r"[^a-z0-9]+", "-", REPO.name.lower()).strip("-") or "repo"


def unique_name(kind: str) -> str:
    """`<checkout>-<kind>-<8 hex>`: a compose project or stack name for one test run."""
    return f"{CHECKOUT}-{kind}-{uuid.uuid4().hex[:8]}"


#: name -> seconds, filled by the tests, printed at the end of the run (conftest.py)
TIMINGS: dict[str, float] = {}
#: image -> (size in bytes, size over the base image), printed at the end of the run
SIZES: dict[str, tuple[int, int]] = {}

# Prints "<uid> <capabilities in effect> <supplementary gids...>" of the process whose argv
# holds the module name given (the service's `python -m <module>`), from inside its container.
PROCESS_IDENTITY = """
import os, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        continue
    if sys.argv[1].encode() in argv:
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        print(fields["Uid"].split()[0], fields["CapEff"].strip(), fields["Groups"].strip())
        break
"""

# Reads a board's database without changing it (`status` would first expire overdue leases):
# the in-progress tasks and every task's events, as JSON.
BOARD_AS_LEFT = """
import json, sqlite3
db = sqlite3.connect("file:/data/pm_agent.db?mode=ro", uri=True)
print(json.dumps({
    "in_progress": [r[0] for r in db.execute("select task_id from tasks where status = 'in_progress'")],
    "status": dict(db.execute("select task_id, status from tasks")),
    "events": [list(r) for r in db.execute("select task_id, kind, agent_id, attempt from events order by id")],
}))
"""


class CommandFailed(AssertionError):
    pass


def fleet_env(engine_env: dict[str, str], tag: str, port: int) -> dict[str, str]:
    """The environment of a test fleet: its image tag and port, short leases and graces (so
    failures show quickly), none of the caller's PM_/AGENT_/COMPOSE_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "PM_", "AGENT_"))}
    env.update(engine_env)
    env.update(
        {
            "TAG": tag,
            "PM_AGENT_PORT": str(port),
            "PM_LEASE_SECONDS": "8",  # a killed worker's task comes back quickly
            "HEARTBEAT_SECONDS": "2",  # well inside the lease
            "SHUTDOWN_GRACE_SECONDS": "4",
            "STOP_GRACE_PERIOD": "20s",
            "POLL_WAIT_SECONDS": "20",
            "LOG_FORMAT": "json",
            # The board starts empty unless asked (issue 12): these tests run on the demo's.
            "PM_PROJECT_FILE": "/workspace/demo-project/project.yaml",
            # No project of a developer's .env (`make up PROJECT_DIR=...`): the shell wins over .env.
            "PROJECT_DIR": "",
            "PROJECT_NAME": "",
            "PM_UID": "10001",
            "PM_GID": "10001",
        }
    )
    return env


def docker_time(text: str) -> float:
    """A Docker API timestamp (RFC 3339, nanoseconds) as time.time()."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False, input=input
    )
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def wait_for(what: str, predicate: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll until `predicate()` is truthy; its value. Fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as exc:  # the stub may be restarting: keep polling
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)


def board_as_left(volume: str, image: str) -> dict[str, Any]:
    """The board in a stopped fleet's data volume, read-only (see BOARD_AS_LEFT)."""
    out = run(["docker", "run", "--rm", "-v", f"{volume}:/data", image, "python", "-c", BOARD_AS_LEFT]).stdout
    data: dict[str, Any] = json.loads(out)
    return data


@dataclass
class Fleet:
    env: dict[str, str]
    port: int
    log: list[str] = field(default_factory=list)
    up_wall: float = 0.0  # time.time() when the fleet was started
    up_output: str = ""  # what starting it printed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    # -- containers ----------------------------------------------------------------

    def container_filters(self, service: str) -> list[str]:
        """`docker ps --filter` values that select the containers of one service."""
        raise NotImplementedError

    def containers(self, service: str, *, running: bool = False) -> list[str]:
        """Container ids of a service (all, or only the running ones)."""
        argv = ["docker", "ps", "-q", "--no-trunc"] + ([] if running else ["-a"])
        for f in self.container_filters(service):
            argv += ["--filter", f]
        return run(argv).stdout.split()

    def inspect(self, container: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(run(["docker", "inspect", container]).stdout)
        return data[0]

    def container_of_agent(self, agent_id: str, service: str) -> str:
        """A worker's agent id is `<role>-<container hostname>`: find the container it runs in."""
        for cid in self.containers(service):
            if agent_id.endswith("-" + self.inspect(cid)["Config"]["Hostname"]):
                return cid
        raise AssertionError(f"no {service} container runs agent {agent_id}")

    def process_identity(self, container: str, module: str) -> tuple[str, str, set[str]]:
        """(uid, effective capabilities, supplementary gids) of `python -m <module>` in a container."""
        out = run(["docker", "exec", container, "python", "-c", PROCESS_IDENTITY, module]).stdout.split()
        assert out, f"no process running {module} in {container[:12]}"
        return out[0], out[1], set(out[2:])

    def stub_container(self) -> str:
        running = self.containers("pm-agent", running=True)
        assert len(running) == 1, f"expected one running stub container, found {running}"
        return running[0]

    def load_board(self, path: Path) -> str:
        """`python -m pm_agent_stub load` inside the stub's container, the file sent on stdin."""
        name = f"/tmp/{path.name}"
        proc = run(
            [
                "docker",
                "exec",
                "-i",
                self.stub_container(),
                "sh",
                "-c",
                f"cat > {name} && python -m pm_agent_stub load {name}",
            ],
            input=path.read_text(),
        )
        return proc.stdout + proc.stderr

    # -- the stub's tools, from the host through the published port ---------------

    def tool(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            with anyio.fail_after(30):
                async with mcp.Client(self.url) as client:
                    return await call_tool(client, name, arguments or {})

        return anyio.run(call)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.tool("get_project_status")["project_status"]
        return result

    def task(self, task_id: str) -> dict[str, Any]:
        return self.tool("get_task_context", {"task_id": task_id})

    def agents(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.tool("list_registered_agents")["agents"]
        return result

    def settled(self) -> dict[str, Any] | None:
        """The board's counts once nothing is left to do or in progress, else None."""
        status = self.status()
        return status if status["todo"] == 0 and status["in_progress"] == 0 else None

    def wait_done(self, task_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        def all_done() -> dict[str, dict[str, Any]] | None:
            ctxs = {t: self.task(t) for t in task_ids}
            blocked = [t for t, c in ctxs.items() if c["task"]["status"] == "blocked"]
            if blocked:
                raise AssertionError(f"tasks blocked: {[(t, ctxs[t]['blockers']) for t in blocked]}")
            return ctxs if all(c["task"]["status"] == "done" for c in ctxs.values()) else None

        return wait_for(f"tasks {task_ids} done", all_done, timeout)


@dataclass
class ComposeFleet(Fleet):
    """One compose project (`docker compose -p <project>`)."""

    project: str = ""

    def created_wall(self) -> float:
        """When Compose created the project's first container (time.time())."""
        ids = run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"]
        ).stdout.split()
        return min(docker_time(self.inspect(c)["Created"]) for c in ids)

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = run(
            ["docker", "compose", "-p", self.project, *args],
            env=self.env,
            timeout=timeout,
            check=check,
            input=input,
        )
        self.log.append(
            f"docker compose {' '.join(args)}: exit {proc.returncode} in {time.monotonic() - started:.1f}s"
        )
        return proc

    def container_filters(self, service: str) -> list[str]:
        return [
            f"label=com.docker.compose.project={self.project}",
            f"label=com.docker.compose.service={service}",
        ]


@dataclass
class SwarmFleet(Fleet):
    """One Swarm stack (`docker stack deploy ... <stack>`); services are `<stack>_<service>`."""

    stack: str = ""

    def service(self, name: str) -> str:
        return f"{self.stack}_{name}"

    def container_filters(self, service: str) -> list[str]:
        return [f"label=com.docker.swarm.service.name={self.service(service)}"]

    def created_wall(self) -> float:
        """When the stack's first service was created (time.time())."""
        names = run(["docker", "stack", "services", "--format", "{{.Name}}", self.stack]).stdout.split()
        specs = json.loads(run(["docker", "service", "inspect", *names]).stdout)
        return min(docker_time(s["CreatedAt"]) for s in specs)

    def make(self, target: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`make <target> STACK=<stack>`: the README's commands, as a user runs them."""
        started = time.monotonic()
        proc = run(
            ["make", "--no-print-directory", target, f"STACK={self.stack}"], env=self.env, timeout=timeout
        )
        self.log.append(f"make {target}: exit {proc.returncode} in {time.monotonic() - started:.1f}s")
        return proc
