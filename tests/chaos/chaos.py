"""The chaos harness: a real stub, real step workers, a controller that kills them, an audit.

`run_chaos(cfg, workdir)` starts `python -m pm_agent_stub serve` on a file database with a
generated DAG project (chains and fan-ins), starts `cfg.workers` processes of
`examples/step_worker.py`, and until every task is done:

- every `kill_every` seconds SIGKILLs a worker (restarted at once, with the same AGENT_ID
  or a new one) or SIGTERMs one (restarted when it has exited), preferring workers that
  hold a task;
- kills -9 and restarts the stub `stub_restarts` times, spread over the run by progress.

Then `audit()` proves from the stub's own tables (opened read-only) that nothing was lost,
done twice, done out of order, accepted from a non-holder or resumed from the wrong step,
and that every SIGKILLed worker's task came back within lease + sweep time.

Everything is bounded: the run fails with the workers' log tails if `timeout` passes.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pm_agent_stub.testing import StubProcess, start_stub
from tests.helpers import REPO_ROOT
from tests.reliability.boardcheck import invariant_problems, rows

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


# -- the audit ----------------------------------------------------------------------------


def _reoffer_deadline(due: float, downtimes: list[tuple[float, float]], slack: float) -> float:
    """When a lease due at `due` must be back in the queue: due + slack, pushed past stub downtime."""
    effective = due
    for down, up in sorted(downtimes):
        if down <= effective + slack and up > effective:
            effective = up
    return effective + slack


def _orphans(run: ChaosRun, events: list[dict[str, Any]]) -> list[str]:
    """Assignments made when no process with that agent id was running (a long-poll outliving its worker)."""
    lives: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for w in run.workers:
        lives[w.agent_id].append((w.started_at, w.ended_at or run.finished_at, w.ended_by))
    out = []
    for e in events:
        if e["kind"] != "assigned":
            continue
        spans = lives.get(e["agent_id"], [])
        if not any(start <= e["at"] <= end for start, end, _ in spans):
            before = [s for s in spans if s[1] < e["at"]]
            how = max(before)[2] if before else "?"
            out.append(
                f"{e['task_id']}->{e['agent_id']} ({how}, {e['at'] - max(before)[1]:.2f}s after)"
                if before
                else f"{e['task_id']}->{e['agent_id']}"
            )
    return out


def audit(run: ChaosRun) -> dict[str, Any]:
    """Check the run against the stub's records; return the figures. Raises with every problem found."""
    cfg, db = run.cfg, run.db
    problems: list[str] = []
    tasks = {t["task_id"]: t for t in rows(db, "SELECT * FROM tasks")}
    events = rows(db, "SELECT * FROM events WHERE task_id IS NOT NULL ORDER BY id")
    progress = rows(db, "SELECT * FROM progress_log ORDER BY id")
    deps = {t["id"]: t["dependencies"] for t in run.project}
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_task[e["task_id"]].append(e)
    log_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in progress:
        log_by_task[p["task_id"]].append(p)

    # Every task done, and completed exactly once, by a holder, after its dependencies.
    if len(tasks) != cfg.tasks:
        problems.append(f"{len(tasks)} tasks on the board, expected {cfg.tasks}")
    not_done = sorted(t for t, row in tasks.items() if row["status"] != "done")
    if not_done:
        problems.append(f"{len(not_done)} tasks not done: {not_done[:10]}")
    completed_at: dict[str, int] = {}
    kinds: dict[str, int] = defaultdict(int)
    for task_id, evs in by_task.items():
        holder: str | None = None
        lease: str | None = None
        completions = 0
        for e in evs:
            kind, agent = e["kind"], e["agent_id"]
            detail = json.loads(e["detail"] or "{}")
            kinds[kind] += 1
            if kind == "assigned":
                if holder is not None:
                    problems.append(
                        f"{task_id}: assigned to {agent} while {holder} held it (event {e['id']})"
                    )
                missing = [d for d in deps.get(task_id, []) if completed_at.get(d, 10**18) > e["id"]]
                if missing:
                    problems.append(
                        f"{task_id}: assigned (event {e['id']}) before dependencies {missing} completed"
                    )
                holder, lease = agent, detail.get("lease_id")
            elif kind == "renewed":
                if agent != holder or detail.get("lease_id") != lease:
                    problems.append(
                        f"{task_id}: lease renewed for {agent} but {holder} holds it (event {e['id']})"
                    )
            elif kind in ("expired", "released"):
                if agent != holder:
                    problems.append(f"{task_id}: {kind} for {agent} but {holder} held it (event {e['id']})")
                holder = lease = None
            elif kind == "completed":
                completions += 1
                if agent != holder or detail.get("lease_id") != lease:
                    problems.append(
                        f"{task_id}: completion accepted from {agent} (lease {detail.get('lease_id')}) "
                        f"while the holder was {holder} (lease {lease}) (event {e['id']})"
                    )
                completed_at.setdefault(task_id, e["id"])
                if tasks.get(task_id, {}).get("completed_by") != agent:
                    problems.append(f"{task_id}: completed event by {agent}, completed_by says otherwise")
                holder = lease = None
            elif kind == "blocked":
                problems.append(f"{task_id}: blocked (event {e['id']}): the step worker never blocks")
                holder = lease = None
        if completions != 1:
            problems.append(f"{task_id}: completion accepted {completions} times")

    # Resume: the run that completed started from the checkpoint stored when it was handed the task.
    resumed = 0
    for task_id, task in tasks.items():
        if task["status"] != "done":
            continue
        log = log_by_task[task_id]
        done_rows = [p for p in log if p["status"] == "completed"]
        match = DONE_MESSAGE.match(done_rows[-1]["message"]) if done_rows else None
        if not match:
            problems.append(f"{task_id}: no completion message of the step worker in the progress log")
            continue
        steps, start = int(match.group(1)), int(match.group(2))
        completer = done_rows[-1]["agent_id"]
        handed = [
            e
            for e in by_task[task_id]
            if e["kind"] in ("assigned", "renewed")
            and e["agent_id"] == completer
            and e["at"] <= done_rows[-1]["at"]
        ]
        if not handed:
            problems.append(f"{task_id}: completed by {completer}, which was never handed it")
            continue
        handed_at = handed[-1]["at"]
        stored = [p for p in log if p["status"] == "in_progress" and p["at"] <= handed_at]
        expected = 0
        if stored:
            step_match = STEP_MESSAGE.match(stored[-1]["message"])
            expected = int(step_match.group(1)) if step_match else -1
        if start != expected:
            problems.append(
                f"{task_id}: the completing run resumed from step {start}, but the checkpoint stored when "
                f"{completer} was handed the task (event at {handed_at:.3f}) said step {expected}"
            )
        after = [
            int(m.group(1))
            for p in log
            if p["status"] == "in_progress"
            and p["at"] > handed_at
            and (m := STEP_MESSAGE.match(p["message"]))
        ]
        if after != list(range(start + 1, steps + 1)):
            problems.append(f"{task_id}: after resuming from {start} the stored checkpoints were {after}")
        if start > 0:
            resumed += 1

    # Every SIGKILLed holder's task came back within lease + sweep (+ stub downtime).
    recoveries: list[float] = []
    reoffer_times: list[float] = []
    lateness: list[float] = []  # re-offer after the lease was due (or the stub was back)
    reoffers = 0
    for k in run.kills:
        if k.task_id is None or k.lease_expires_at is None:
            continue
        if k.lease_expires_at > k.killed_at + cfg.lease_seconds + 0.5:
            problems.append(f"{k.task_id}: lease of killed {k.agent_id} ran past kill + lease")
        later = [e for e in by_task[k.task_id] if e["at"] >= k.killed_at]
        back = next((e for e in later if e["kind"] in ("expired", "renewed", "released")), None)
        deadline = _reoffer_deadline(k.lease_expires_at, run.downtimes, cfg.sweep_slack)
        if back is None:
            problems.append(f"{k.task_id}: held by SIGKILLed {k.agent_id}, never re-offered")
            continue
        reoffers += 1
        if back["at"] > deadline:
            problems.append(
                f"{k.task_id}: held by SIGKILLed {k.agent_id}; re-offered {back['at'] - k.killed_at:.2f}s after "
                f"the kill, {back['at'] - deadline:.2f}s past the deadline (lease due "
                f"{k.lease_expires_at - k.killed_at:.2f}s after the kill)"
            )
        reoffer_times.append(back["at"] - k.killed_at)
        lateness.append(back["at"] - (deadline - cfg.sweep_slack))
        again = next((e for e in later if e["kind"] in ("assigned", "renewed")), None)
        if again is not None:
            recoveries.append(again["at"] - k.killed_at)

    # A SIGTERMed worker exits 0 and gives back (or finishes) what it held.
    for t in run.terms:
        # Before registering (still importing) a worker has no handler yet and nothing to give back.
        early = t.exit_code == -signal.SIGTERM and not t.registered
        if t.exit_code not in (0, None) and not early:
            problems.append(f"{t.agent_id}: exited {t.exit_code} after SIGTERM")
        if t.held_after_exit is not None and t.registered:
            problems.append(f"{t.agent_id}: still held {t.held_after_exit} after a graceful exit")
    problems.extend(run.crashes)
    problems.extend(f"final board: {p}" for p in invariant_problems(db))

    figures = {
        "tasks": cfg.tasks,
        "workers": cfg.workers,
        "seconds": round(run.finished_at - run.started_at, 1),
        "kills": len(run.kills),
        "kills_of_holders": sum(1 for k in run.kills if k.task_id),
        "sigterms": len(run.terms),
        "stub_restarts": len(run.downtimes),
        "max_stub_downtime": round(max((u - d for d, u in run.downtimes), default=0.0), 2),
        "reoffers_after_kill": reoffers,
        "expired": kinds["expired"],
        "released": kinds["released"],
        "fenced_stale_reports": int(
            rows(db, "SELECT count(*) AS n FROM events WHERE kind = 'fenced'")[0]["n"]
        ),
        "resumed_from_checkpoint": resumed,
        "max_reoffer_seconds": round(max(reoffer_times, default=0.0), 2),
        "max_reoffer_after_due_seconds": round(max(lateness, default=0.0), 2),
        "max_recovery_seconds": round(max(recoveries, default=0.0), 2),
        "assignments": kinds["assigned"],
        "assignments_to_dead_workers": len(_orphans(run, events)),
    }
    if problems:
        raise AssertionError(
            f"{len(problems)} problem(s) in the chaos run {figures}:\n" + "\n".join(problems[:60])
        )
    return figures
