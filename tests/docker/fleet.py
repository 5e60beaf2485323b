"""Drive one compose project of the fleet from a test: compose commands, the stub's tools, docker.

    fleet = Fleet(project="pmfleet-e2e-1a2b", env={...})
    fleet.compose("up", "-d", "--wait")
    fleet.tool("get_project_status")
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp

from pm_agent_stub.testing import call_tool

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: name -> seconds, filled by the tests, printed at the end of the run (conftest.py)
TIMINGS: dict[str, float] = {}
#: image -> (size in bytes, size over the base image), printed at the end of the run
SIZES: dict[str, tuple[int, int]] = {}


class CommandFailed(AssertionError):
    pass


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 300, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                          input=input)
    if check and proc.returncode != 0:
        raise CommandFailed(f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
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
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


@dataclass
class Fleet:
    project: str
    env: dict[str, str]
    port: int
    log: list[str] = field(default_factory=list)
    up_wall: float = 0.0  # time.time() when `compose up` was started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    # -- compose / docker ----------------------------------------------------------

    def compose(self, *args: str, timeout: float = 600, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = run(["docker", "compose", "-p", self.project, *args], env=self.env, timeout=timeout, check=check,
                   input=input)
        self.log.append(f"docker compose {' '.join(args)}: exit {proc.returncode} in {time.monotonic() - started:.1f}s")
        return proc

    def containers(self, service: str) -> list[str]:
        """Container ids of a service (running or not)."""
        out = run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}",
                   "--filter", f"label=com.docker.compose.service={service}"]).stdout
        return out.split()

    def inspect(self, container: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(run(["docker", "inspect", container]).stdout)
        return data[0]

    def container_of_agent(self, agent_id: str, service: str) -> str:
        """A worker's agent id is `<role>-<container hostname>`: find the container it runs in."""
        for cid in self.containers(service):
            if agent_id.endswith("-" + self.inspect(cid)["Config"]["Hostname"]):
                return cid
        raise AssertionError(f"no {service} container runs agent {agent_id}")

    def load_board(self, path: Path) -> str:
        """`python -m pm_agent_stub load` inside the stub container, the file sent on stdin."""
        name = f"/tmp/{path.name}"
        proc = self.compose("exec", "-T", "pm-agent", "sh", "-c",
                            f"cat > {name} && python -m pm_agent_stub load {name}", input=path.read_text())
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
