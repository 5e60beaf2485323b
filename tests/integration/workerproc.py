"""Start real worker processes (built on pm_worker) for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import StubProcess, run_cli
from tests.helpers import REPO_ROOT

STEP_WORKER = REPO_ROOT / "examples" / "step_worker.py"


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=10)


def start_worker(args: list[str], log_path: Path, cwd: Path = REPO_ROOT, **env: str) -> WorkerProcess:
    """`python ARGS` with a worker environment (JSON logs, short heartbeats, no inherited PM_*)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_"))}
    base.update(
        {
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            "POLL_WAIT_SECONDS": "2",
            "HEARTBEAT_SECONDS": "1",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "RECONNECT_GIVE_UP_SECONDS": "60",
        }
    )
    base.update(env)
    log = log_path.open("ab")
    proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=base, cwd=cwd)
    log.close()
    return WorkerProcess(proc, log_path)


def board(db: Path) -> dict[str, Any]:
    """The stub's own `status --json` view of a board file."""
    done = run_cli("status", "--db", str(db), "--json", "--all")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    data["by_id"] = {t["task_id"]: t for t in data["tasks"]}
    return data


def run_worker_to_end(
    module: str,
    stub: StubProcess,
    workspace: Path,
    *,
    agent_id: str,
    skills: str,
    max_tasks: int,
    timeout: float,
    clear: tuple[str, ...] = (),
    **extra: str,
) -> tuple[int, str]:
    """`python -m MODULE` until it has handled `max_tasks` tasks and exits by itself; (exit code, log).

    Inherited `PM_*`, `AGENT_*`, `LOG_*` (and any `clear` prefixes) are dropped so the
    caller's environment cannot steer it; `extra` are more variables (e.g. DOCS_MAX_FILES).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "AGENT_", "LOG_", *clear))}
    env.update(
        {
            "PM_AGENT_URL": stub.url,
            "WORKSPACE": str(workspace),
            "AGENT_ID": agent_id,
            "AGENT_SKILLS": skills,
            "MAX_TASKS": str(max_tasks),
            "POLL_WAIT_SECONDS": "2",
            "LOG_FORMAT": "json",
            "HEALTH_DIR": str(workspace.parent / "health"),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", module],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        raise AssertionError(f"{module} did not finish within {timeout}s:\n{output}\n{stub.logs()}") from None
    return done.returncode, done.stdout + done.stderr
