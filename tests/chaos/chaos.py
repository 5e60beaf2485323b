"""The chaos harness: a real stub, real step workers, a controller that kills them, an audit.

`run_chaos(cfg, workdir)` starts `python -m pm_agent_stub serve` on a file database with a
generated DAG project (chains and fan-ins), starts `cfg.workers` processes of
`examples/step_worker.py`, and until every task is done:

- every `kill_every` seconds SIGKILLs a worker (restarted at once, with the same AGENT_ID
  or a new one) or SIGTERMs one (restarted when it has exited), preferring workers that
  hold a task;
- kills -9 and restarts the stub `stub_restarts` times, spread over the run by progress.

Then `audit()` (audit.py) proves from the stub's own tables (opened read-only) that nothing
was lost, done twice, done out of order, accepted from a non-holder or resumed from the wrong
step, and that every SIGKILLed worker's task came back within lease + sweep time.

Everything is bounded: the run fails with the workers' log tails if `timeout` passes.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pm_agent_stub.testing import StubProcess, start_stub
from tests.helpers import REPO_ROOT
from tests.reliability.boardcheck import rows

STEP_WORKER = REPO_ROOT / "examples" / "step_worker.py"
DONE_MESSAGE = re.compile(r"^(\d+) steps done, resumed from step (\d+)$")
STEP_MESSAGE = re.compile(r"^step (\d+)/(\d+) done$")


@dataclass(frozen=True)
class ChaosConfig:
    tasks: int
    workers: int
    kill_every: float
    stub_restarts: int
    timeout: float
    seed: int = 1
    lease_seconds: float = 3.0
    #: allowed lateness of a re-offer after the lease's expiry (sweep timer + a loaded machine)
    sweep_slack: float = 2.0
    #: every n-th action is a SIGTERM, the others SIGKILLs
    sigterm_every: int = 3
    same_id_share: float = 0.5
    grace_seconds: float = 1.0
    poll_wait_seconds: float = 2.0
    steps: tuple[int, int] = (2, 5)
    step_seconds: tuple[float, float] = (0.1, 0.3)

    @classmethod
    def from_env(cls, **defaults: Any) -> ChaosConfig:
        """Defaults overridden by CHAOS_TASKS, CHAOS_WORKERS, CHAOS_KILL_EVERY, CHAOS_STUB_RESTARTS,
        CHAOS_TIMEOUT, CHAOS_SEED, CHAOS_LEASE_SECONDS, CHAOS_SWEEP_SLACK."""
        casts = {
            "tasks": int,
            "workers": int,
            "kill_every": float,
            "stub_restarts": int,
            "timeout": float,
            "seed": int,
            "lease_seconds": float,
            "sweep_slack": float,
        }
        values = dict(defaults)
        for key, cast in casts.items():
            raw = os.environ.get(f"CHAOS_{key.upper()}")
            if raw:
                values[key] = cast(raw)
        return cls(**values)


@dataclass
class WorkerProc:
    agent_id: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    ended_at: float | None = None
    ended_by: str = ""  # sigkill | sigterm | final | crashed
    exit_code: int | None = None


@dataclass
class KillRecord:
    agent_id: str
    killed_at: float
    task_id: str | None
    lease_expires_at: float | None
    restarted_as: str


@dataclass
class TermRecord:
    agent_id: str
    sent_at: float
    held_task: str | None
    exited_at: float | None = None
    exit_code: int | None = None
    held_after_exit: str | None = None
    registered: bool = False
    restarted_as: str = ""


@dataclass
class ChaosRun:
    cfg: ChaosConfig
    db: Path
    project: list[dict[str, Any]]
    started_at: float = 0.0
    finished_at: float = 0.0
    workers: list[WorkerProc] = field(default_factory=list)
    kills: list[KillRecord] = field(default_factory=list)
    terms: list[TermRecord] = field(default_factory=list)
    downtimes: list[tuple[float, float]] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    stub_logs: list[Path] = field(default_factory=list)

    def log_tails(self, lines: int = 15, limit: int = 6) -> str:
        out = []
        for w in [w for w in self.workers if w.ended_by in ("crashed", "")][-limit:] or self.workers[-limit:]:
            text = w.log_path.read_text(errors="replace").splitlines()[-lines:]
            out.append(
                f"--- {w.agent_id} ({w.ended_by or 'running'}, exit {w.exit_code})\n" + "\n".join(text)
            )
        for path in self.stub_logs[-2:]:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- stub {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def make_project(cfg: ChaosConfig, rng: random.Random) -> list[dict[str, Any]]:
    """A DAG: chains (deps on recent tasks), fan-ins every 25th task, some independent tasks."""
    tasks: list[dict[str, Any]] = []
    for i in range(cfg.tasks):
        window = list(range(max(0, i - 40), i))
        if i and i % 25 == 0:
            deps = rng.sample(window, k=min(len(window), 5))
        elif window and rng.random() < 0.5:
            deps = rng.sample(window, k=min(len(window), rng.randint(1, 3)))
        else:
            deps = []
        tasks.append(
            {
                "id": f"c{i:04d}",
                "name": f"Chaos task {i}",
                "priority": rng.choice(["low", "medium", "high", "urgent"]),
                "required_skills": ["steps"],
                "dependencies": [f"c{j:04d}" for j in sorted(deps)],
                "payload": {
                    "steps": rng.randint(*cfg.steps),
                    "step_seconds": round(rng.uniform(*cfg.step_seconds), 3),
                },
            }
        )
    return tasks


class Controller:
    def __init__(self, cfg: ChaosConfig, workdir: Path) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.workdir = workdir
        self.workspace = workdir / "workspace"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "board.db"
        self.run = ChaosRun(cfg=cfg, db=self.db, project=make_project(cfg, self.rng))
        self.stub_env = {"PM_LEASE_SECONDS": str(cfg.lease_seconds), "PM_MAX_ATTEMPTS": "1000"}
        self.stub: StubProcess | None = None
        self.live: dict[str, WorkerProc] = {}
        self.stopping: dict[str, TermRecord] = {}
        self._new_ids = 0
        self._actions = 0

    # -- processes --------------------------------------------------------------------

    def _worker_env(self, agent_id: str) -> dict[str, str]:
        assert self.stub is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "LOG_", "AGENT_"))}
        env.update(
            PM_AGENT_URL=self.stub.url,
            AGENT_ID=agent_id,
            WORKSPACE=str(self.workspace),
            HEARTBEAT_SECONDS="1",
            SHUTDOWN_GRACE_SECONDS=str(self.cfg.grace_seconds),
            POLL_WAIT_SECONDS=str(self.cfg.poll_wait_seconds),
            RECONNECT_GIVE_UP_SECONDS="600",
            CALL_TIMEOUT_SECONDS="15",
            HEALTH_DIR=str(self.workdir / "health"),
            LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start_worker(self, agent_id: str) -> WorkerProc:
        n = sum(1 for w in self.run.workers if w.agent_id == agent_id)
        log_path = self.logs / f"{agent_id}.{n}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(STEP_WORKER)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._worker_env(agent_id),
                cwd=REPO_ROOT,
            )
        worker = WorkerProc(agent_id, proc, log_path, time.time())
        self.run.workers.append(worker)
        self.live[agent_id] = worker
        return worker

    def _end(self, worker: WorkerProc, how: str) -> None:
        worker.ended_at = time.time()
        worker.ended_by = how
        worker.exit_code = worker.proc.returncode
        self.live.pop(worker.agent_id, None)

    def _next_id(self, old: str) -> str:
        if self.rng.random() < self.cfg.same_id_share:
            return old
        self._new_ids += 1
        return f"chaos-n{self._new_ids}"

    def start_stub(self, port: int | None = None) -> None:
        project = None
        if port is None:
            project = self.workdir / "project.yaml"
            project.write_text(
                yaml.safe_dump({"project": "chaos", "tasks": self.run.project}, sort_keys=False)
            )
        self.stub = start_stub(self.db, port=port, env=self.stub_env, project=project, timeout=60)
        self.run.stub_logs.append(self.stub.log_path)

    def restart_stub(self) -> None:
        assert self.stub is not None
        port = self.stub.port
        self.stub.kill()
        down = time.time()
        self.start_stub(port)
        self.run.downtimes.append((down, time.time()))

    # -- the board, read-only -----------------------------------------------------------

    def held(self) -> dict[str, tuple[str, float]]:
        return {
            r["holder"]: (r["task_id"], r["lease_expires_at"])
            for r in rows(
                self.db,
                "SELECT holder, task_id, lease_expires_at FROM tasks WHERE status = 'in_progress'",
            )
        }

    def done_count(self) -> int:
        return int(rows(self.db, "SELECT count(*) AS n FROM tasks WHERE status = 'done'")[0]["n"])

    # -- chaos ------------------------------------------------------------------------------

    def act(self) -> None:
        candidates = [a for a in self.live if a not in self.stopping]
        if not candidates:
            return
        held = self.held()
        holders = [a for a in candidates if a in held]
        victim = self.rng.choice(holders if holders and self.rng.random() < 0.8 else candidates)
        self._actions += 1
        sigterm = self._actions % self.cfg.sigterm_every == 0
        worker = self.live[victim]
        if sigterm:
            worker.proc.send_signal(signal.SIGTERM)
            record = TermRecord(victim, time.time(), held.get(victim, (None, 0.0))[0])
            self.run.terms.append(record)
            self.stopping[victim] = record
            return
        worker.proc.kill()
        worker.proc.wait(timeout=30)
        killed_at = time.time()
        self._end(worker, "sigkill")
        now_held = self.held().get(victim)
        new_id = self._next_id(victim)
        self.run.kills.append(
            KillRecord(
                victim,
                killed_at,
                now_held[0] if now_held else None,
                now_held[1] if now_held else None,
                new_id,
            )
        )
        self.start_worker(new_id)

    def reap(self) -> None:
        hang_after = self.cfg.grace_seconds + 30
        for agent_id, record in list(self.stopping.items()):
            worker = self.live[agent_id]
            if worker.proc.poll() is None:
                if time.time() - record.sent_at > hang_after:
                    self.run.crashes.append(f"{agent_id}: did not exit within {hang_after:.0f}s of SIGTERM")
                    worker.proc.kill()
                    worker.proc.wait(timeout=30)
                else:
                    continue
            record.exited_at = time.time()
            record.exit_code = worker.proc.returncode
            record.held_after_exit = self.held().get(agent_id, (None, 0.0))[0]
            record.registered = '"registered"' in worker.log_path.read_text(errors="replace")
            self._end(worker, "sigterm")
            del self.stopping[agent_id]
            record.restarted_as = self._next_id(agent_id)
            self.start_worker(record.restarted_as)
        for agent_id, worker in list(self.live.items()):
            if agent_id not in self.stopping and worker.proc.poll() is not None:
                self.run.crashes.append(f"{agent_id}: exited by itself with {worker.proc.returncode}")
                self._end(worker, "crashed")
                self.start_worker(agent_id)

    def execute(self) -> ChaosRun:
        cfg, run = self.cfg, self.run
        run.started_at = time.time()
        deadline = time.monotonic() + cfg.timeout
        self.start_stub()
        try:
            for i in range(cfg.workers):
                self.start_worker(f"chaos-w{i}")
            next_kill = time.monotonic() + cfg.kill_every
            # Kills are paced by progress too: at most one per task completed since the last
            # kill. On a starved machine (workers taking 10 s just to import) a wall-clock
            # rate alone kills faster than anything can finish and the run never ends.
            done_at_last_kill = 0
            while True:
                done = self.done_count()
                if done == cfg.tasks:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"chaos run not finished after {cfg.timeout:.0f}s: {done}/{cfg.tasks} done, "
                        f"{len(run.kills)} kills, {len(run.terms)} SIGTERMs, {len(run.downtimes)} stub restarts\n"
                        + run.log_tails()
                    )
                self.reap()
                restarts = len(run.downtimes)
                if restarts < cfg.stub_restarts and done >= cfg.tasks * (restarts + 1) / (
                    cfg.stub_restarts + 1
                ):
                    self.restart_stub()
                if time.monotonic() >= next_kill and done > done_at_last_kill:
                    self.act()
                    done_at_last_kill = done
                    next_kill = time.monotonic() + cfg.kill_every
                time.sleep(0.05)  # the controller's tick; every wait above is a poll with a deadline
        finally:
            self.shutdown()
        run.finished_at = time.time()
        return run

    def shutdown(self) -> None:
        for worker in self.live.values():
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in list(self.live.values()):
            try:
                worker.proc.wait(timeout=self.cfg.grace_seconds + 20)
            except subprocess.TimeoutExpired:
                self.run.crashes.append(f"{worker.agent_id}: did not exit within the final shutdown")
                worker.proc.kill()
                worker.proc.wait(timeout=30)
            self._end(worker, "final")
        if self.stub is not None:
            self.stub.stop()


def run_chaos(cfg: ChaosConfig, workdir: Path) -> ChaosRun:
    return Controller(cfg, workdir).execute()
