"""Helpers for the LLM worker suite: the board's tasks, running the worker process, reading the board.

Integration tests run three real things: the fake model endpoint (`llm_fake_model`, an
HTTP server in a thread), the PM Agent stub (`python -m pm_agent_stub serve --project
board.yaml`) and the worker (`python -m llm_worker`, MAX_TASKS=1). Each scenario has its
own task on the board, requiring a skill only that scenario's worker has, so no worker
ever gets another test's task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import StubProcess
from pm_agent_stub.testing import task_context as stub_task_context
from tests.helpers import REPO_ROOT

from llm_fake_model import FakeModel

DIALECTS = ("anthropic", "openai")
SCENARIOS = (
    "docs",
    "escape",
    "malformed",
    "ratelimit",
    "budget",
    "tokens",
    "blocker",
    # hostile: test_llm_hostile.py
    "fifo",
    "never_returns",
    "sigterm_stuck",
    "many_calls",
    "transcript",
    "trickle",
    "huge_answer",
)
TEST_KEY = "test-key-0123456789"


def task_id(scenario: str, dialect: str) -> str:
    return f"{scenario}-{dialect}"


def board_tasks() -> list[dict[str, Any]]:
    tasks = []
    for scenario in SCENARIOS:
        for dialect in DIALECTS:
            tid = task_id(scenario, dialect)
            tasks.append(
                {
                    "id": tid,
                    "name": f"Document the calc module ({scenario}, {dialect})",
                    "description": "calc.py has no documentation. Write a short Markdown page for it.",
                    "instructions": "Read calc.py, then write docs/calc.md describing each function.",
                    "priority": "high",
                    "required_skills": ["python", f"t-{tid}"],
                    "labels": ["docs"],
                    "payload": {"path": "proj", "output": "docs/calc.md", "scenario": scenario},
                }
            )
    return tasks


def task_context(stub: StubProcess, tid: str) -> dict[str, Any]:
    """`get_task_context` from the stub, over MCP like any client."""
    result = stub_task_context(stub, tid)
    assert result["success"], result
    return result


@dataclass
class WorkerRun:
    returncode: int
    stderr: str
    seconds: float

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


def worker_env(extra: dict[str, str]) -> dict[str, str]:
    prefixes = ("PM_", "LOG_", "LLM_", "ANTHROPIC_", "AGENT_", "OPENAI_", "WORKSPACE", "MAX_TASKS", "HEALTH_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_FORMAT": "json", "LLM_STARTUP_WAIT_SECONDS": "0"})
    env.update(extra)
    return env


def provider_env(dialect: str, fake: FakeModel) -> dict[str, str]:
    if dialect == "anthropic":
        return {
            "LLM_PROVIDER": "anthropic",
            "ANTHROPIC_API_KEY": TEST_KEY,
            "ANTHROPIC_BASE_URL": fake.anthropic_url,
            "LLM_MODEL": "fake-model",
        }
    return {
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": fake.openai_url,
        "LLM_API_KEY": TEST_KEY,
        "LLM_MODEL": "fake-model",
    }


def run_worker(env: dict[str, str], timeout: float = 180.0) -> WorkerRun:
    """`python -m llm_worker` to completion (MAX_TASKS=1 makes it exit after one task)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "llm_worker"],
        env=worker_env(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return WorkerRun(proc.returncode, proc.stderr, time.monotonic() - started)


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class LiveWorker:
    """`python -m llm_worker` running in the background: its peak memory watched, stoppable.

    stderr goes to a file (a pipe would fill up and stall a chatty worker), read back as a
    `WorkerRun` once it ends.
    """

    def __init__(self, env: dict[str, str], log: Path, *, pythonpath: str | None = None) -> None:
        full = worker_env(env)
        if pythonpath:
            full["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, full.get("PYTHONPATH")]))
        self.log = log
        self.started = time.monotonic()
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llm_worker"], env=full, cwd=REPO_ROOT, stderr=self._out
        )
        self.peak_kib = 0
        self._watch = threading.Thread(target=self._watch_memory, daemon=True)
        self._watch.start()

    def _watch_memory(self) -> None:
        while self.proc.poll() is None:
            self.peak_kib = max(self.peak_kib, peak_rss_kib(self.proc.pid) or 0)
            time.sleep(0.05)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, grace: float) -> float | None:
        """SIGTERM, then seconds until it exited, or None if it did not within `grace` (then SIGKILL)."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        if self.wait(grace) is None:
            self.proc.kill()
            self.proc.wait(10)
            return None
        return time.monotonic() - sent

    def result(self) -> WorkerRun:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._watch.join(timeout=5)
        self._out.close()
        return WorkerRun(
            self.proc.returncode, self.log.read_text(errors="replace"), time.monotonic() - self.started
        )


def agent_env(
    stub: StubProcess, ws: Path, dialect: str, fake: FakeModel, agent: str, skill: str
) -> dict[str, str]:
    """The environment of one worker process that takes only tasks requiring `skill`."""
    return {
        "PM_AGENT_URL": stub.url,
        "WORKSPACE": str(ws),
        "AGENT_ID": agent,
        "AGENT_SKILLS": f"python,documentation,code-review,{skill}",
        "MAX_TASKS": "1",
        "POLL_WAIT_SECONDS": "5",
        "HEALTH_DIR": str(ws.parent / "health"),
        **provider_env(dialect, fake),
    }


def make_workspace(tmp_path: Path) -> Path:
    """WORKSPACE for one worker: `proj/` (the task folder) holds calc.py."""
    ws = tmp_path / "root" / "ws"
    (ws / "proj").mkdir(parents=True)
    (ws / "proj" / "calc.py").write_text(
        '"""A tiny calculator."""\n\n\ndef add(a: int, b: int) -> int:\n    """Add two numbers."""\n    return a + b\n'
    )
    return ws


def run_scenario(
    scenario: str, dialect: str, fake: FakeModel, stub: StubProcess, ws: Path, **extra: str
) -> WorkerRun:
    tid = task_id(scenario, dialect)
    return run_worker({**agent_env(stub, ws, dialect, fake, f"llm-{tid}", f"t-{tid}"), **extra})
