"""What every system in the comparison offers the rounds: its coordinator's processes, N
worker processes, a gate (all connected and idle), a release of M no-op jobs, a cheap
drained check, the recorded time of the last completion, and single stamped jobs for
pickup. The rounds (rounds.py) do the timing and the /proc accounting around these calls.
"""

from __future__ import annotations

import abc
import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._harness import REPO_ROOT, base_env
from bench.peers.stamps import Stamps


@dataclass
class Workers:
    """Worker processes, each one process running one job at a time."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def dead(self) -> list[str]:
        """The exit codes and last log lines of workers that already exited."""
        out = []
        for proc, log in zip(self.procs, self.logs, strict=False):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                out.append(f"pid {proc.pid} exited {proc.returncode}: {tail}")
        return out

    def stop(self, keep: int = 0, timeout: float = 20.0) -> None:
        """SIGTERM every worker after the first `keep`, wait for them (SIGKILL at the deadline)."""
        going = self.procs[keep:]
        for p in going:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in going:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        del self.procs[keep:]
        del self.logs[keep:]


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)


class System(abc.ABC):
    """One column of the table."""

    key: str
    label: str
    coordinator: str
    """What the coordinator CPU counts, for the report."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.block = 0
        self._logs = 0

    def worker_log(self) -> Path:
        """A new log file for one worker process of this block."""
        self._logs += 1
        return self.here / "worker-logs" / f"{self.key}-{self._logs:03d}.log"

    @property
    def here(self) -> Path:
        return self.workdir / self.key / f"block-{self.block}"

    async def open(self, block: int) -> None:
        """Fresh state for a block of drains and pickups (a new board, an emptied queue)."""
        self.block = block
        self._logs = 0
        self.here.mkdir(parents=True, exist_ok=True)

    @abc.abstractmethod
    async def close(self) -> None:
        """Forget the block's state; the servers stay up."""

    @abc.abstractmethod
    def coordinator_pids(self) -> list[int]: ...

    @abc.abstractmethod
    def start_workers(self, n: int) -> Workers: ...

    @abc.abstractmethod
    async def idle(self, n: int) -> bool:
        """One look: are `n` workers connected and waiting for work?"""

    @abc.abstractmethod
    async def release(self, tag: str, m: int) -> None:
        """Put M no-op jobs (keys `tag-i`) in the system, as fast as its client allows."""

    @abc.abstractmethod
    async def drained(self, tag: str, m: int) -> bool:
        """One cheap look: have all M jobs of `tag` finished?"""

    @abc.abstractmethod
    async def last_completed(self, tag: str, m: int) -> float | None:
        """When the last job of `tag` finished, as the system recorded it (epoch seconds)."""

    @abc.abstractmethod
    async def submit_stamped(self, key: str) -> None:
        """One job that records when it starts (pickup)."""

    @abc.abstractmethod
    def started(self) -> dict[str, float]:
        """key → when a worker started that stamped job."""


class StampedPeer(System):
    """A peer whose pickup job writes its start time into a stamp file."""

    def stamps_dir(self) -> Path:
        return self.here / "stamps"

    async def open(self, block: int) -> None:
        await super().open(block)
        self.stamps_dir().mkdir(parents=True, exist_ok=True)
        self._stamps = Stamps(self.stamps_dir())

    def worker_env(self, extra: dict[str, str]) -> dict[str, str]:
        return base_env({"BENCH_PEERS_STAMPS": str(self.stamps_dir()), **extra})

    def started(self) -> dict[str, float]:
        return self._stamps.poll()


PYTHON = sys.executable
