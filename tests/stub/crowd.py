"""Crowds of real long-polling agents (`python -m bench.crowd_agents` processes) and the stub's
wake-up counters (`/healthz`), for the crowd tests."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import StubProcess, http_get_json, stub_env, wait_until
from tests.helpers import REPO_ROOT


class Crowd:
    """`count` agents with `skills` in one process, each long-polling the stub."""

    def __init__(
        self,
        stub: StubProcess,
        prefix: str,
        count: int,
        skills: list[str],
        *,
        log_dir: Path,
        wait: float = 30.0,
        one_shot: bool = False,
    ) -> None:
        self.prefix = prefix
        self.count = count
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        cmd = [
            sys.executable,
            "-m",
            "bench.crowd_agents",
            "--url",
            stub.url,
            "--prefix",
            prefix,
            "--count",
            str(count),
            "--skills",
            ",".join(skills),
            "--wait",
            str(wait),
            "--together",  # all asleep at about the same time, whatever the machine's speed
        ]
        if one_shot:
            cmd.append("--one-shot")
        self._stderr = (log_dir / f"crowd-{prefix}.log").open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=REPO_ROOT,
            env=stub_env(),
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self._lock:
                    self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def tasks(self) -> list[dict[str, Any]]:
        """The tasks handed to this crowd's agents, in the order they arrived."""
        return self.of("task")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("stop\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()


def health(stub: StubProcess) -> dict[str, Any]:
    status, body = http_get_json(f"{stub.base_url}/healthz", timeout=10)
    assert status == 200, body
    return dict(body)


def counters(stub: StubProcess) -> dict[str, int]:
    """The assignment and wake-up counters, flat: transactions, assigned, wakeups, wasted, ..."""
    body = health(stub)
    wake = {k: v for k, v in body["wakeups"].items() if isinstance(v, int)}
    return {**body["assignment"], **wake}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def wait_sleeping(stub: StubProcess, n: int, timeout: float = 180.0) -> None:
    """Until `n` long-polls are asleep in the stub (their first look found nothing)."""
    wait_until(
        lambda: health(stub)["wakeups"]["sleeping"] >= n,
        timeout=timeout,
        interval=0.1,
        message=f"{n} long-polls asleep",
    )
