"""7. A crowd on one stub: 1,000 connected long-polling agents (real MCP clients over HTTP,
spread over up to 8 `python -m bench.crowd_agents` processes), each registered and asking
`request_next_task(wait_seconds=25)` in a loop, completing what it gets at once.

Against one stub on a file database:

- idle: stub CPU (% of a core) and RSS while all of them wait for 30 s (goal ≤ 5 %), and
  how many request_next_task transactions the waiting costs (each agent re-asks when its
  25 s wait runs out);
- singles: 200 tasks loaded one at a time by another process (the stub hears of them from
  its `data_version` watch): pickup latency, load commit → the agent's receipt (goal p99
  ≤ 25 ms), and assignment transactions per task handed out (goal ≤ 2);
- burst: 1,000 tasks loaded in one transaction: time until all are assigned and received,
  double assignments (must be 0, from the board's event log), pickup p99.

Transactions are the stub's own count (`/healthz` → assignment.transactions, board.py). Per
task handed out = (transactions - poll expiries) ÷ tasks assigned: each expired 25 s poll is
re-asked once, which is the idle cost reported above, not the task's. For one task the floor
is 2: the woken agent's look that hands it out, and that agent's next ask after completing it.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import (
    REPO_ROOT,
    CpuMeter,
    Loader,
    Stub,
    base_env,
    loadavg,
    log,
    reader,
    rss_mib,
    start_stub,
    step_tasks,
    stop_process,
    summary_ms,
    wait_for,
)
from pm_agent_stub.testing import http_get_json

GOALS = {"idle_cpu_pct": 5.0, "transactions_per_task": 2.0, "pickup_p99_ms": 25.0}


class CrowdProcs:
    """The agent processes and what they report (one JSON line per task received)."""

    def __init__(self, stub: Stub, agents: int, procs: int, wait: float, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.received: dict[str, float] = {}
        self.by_agent: dict[str, int] = {}
        self.errors = 0
        self._lock = threading.Lock()
        self.procs: list[subprocess.Popen[str]] = []
        per = -(-agents // procs)
        for j in range(procs):
            n = min(per, agents - j * per)
            if n <= 0:
                break
            err = (logs / f"crowd-{j}.log").open("wb")
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.crowd_agents",
                    "--url",
                    stub.url,
                    "--prefix",
                    f"c{j}-",
                    "--count",
                    str(n),
                    "--wait",
                    str(wait),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=base_env(),
                cwd=REPO_ROOT,
                text=True,
                bufsize=1,
            )
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            with self._lock:
                if event["event"] == "task":
                    self.received.setdefault(event["task_id"], event["at"])
                    self.by_agent[event["agent"]] = self.by_agent.get(event["agent"], 0) + 1
                elif event["event"] == "error":
                    self.errors += 1

    def got(self, task_ids: list[str]) -> int:
        with self._lock:
            return sum(1 for t in task_ids if t in self.received)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None and p.stdin is not None:
                try:
                    p.stdin.write("stop\n")
                    p.stdin.close()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_process(p, 5)


def _health(stub: Stub) -> dict[str, Any]:
    status, body = http_get_json(f"{stub.base_url}/healthz", timeout=30)
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"/healthz answered {status}: {body}")
    return body


def _counters(stub: Stub) -> dict[str, int]:
    body = _health(stub)
    return {**body["assignment"], **{k: v for k, v in body["wakeups"].items() if isinstance(v, int)}}


def _per_task(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    d = {k: after[k] - before.get(k, 0) for k in after}
    assigned = d["assigned"] or 0
    return {
        "counters": d,
        "transactions_per_task": round((d["transactions"] - d["timeouts"]) / assigned, 3)
        if assigned
        else None,
        "all_transactions_per_task": round(d["transactions"] / assigned, 3) if assigned else None,
        "wakeups_per_task": round(d["wakeups"] / assigned, 3) if assigned else None,
    }


def _double_assignments(db: Path) -> int:
    """Tasks assigned while someone still held them (the board's event log)."""
    holder: dict[str, str | None] = {}
    doubles = 0
    with reader(db) as conn:
        for kind, task_id, agent_id in conn.execute(
            "SELECT kind, task_id, agent_id FROM events WHERE task_id IS NOT NULL ORDER BY id"
        ):
            if kind == "assigned":
                doubles += holder.get(task_id) is not None
                holder[task_id] = agent_id
            elif kind in ("completed", "expired", "released", "blocked"):
                holder[task_id] = None
    return doubles


def _assigned_at(db: Path, prefix: str) -> dict[str, float]:
    with reader(db) as conn:
        return {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT task_id, min(at) FROM events WHERE kind = 'assigned' AND task_id LIKE ? GROUP BY task_id",
                (prefix + "%",),
            )
        }


def _fd_limits(pid: int) -> dict[str, Any]:
    """The stub's descriptor limit as the kernel has it (the stub lifts its soft limit at start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out: dict[str, Any] = {"bench_soft": soft, "bench_hard": hard}
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                out["stub_soft"], out["stub_hard"] = line.split()[3:5]
    except OSError:
        pass
    return out


def _open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def run(
    workdir: Path, *, agents: int, procs: int, wait: float, idle_window: float, singles: int, burst: int
) -> dict[str, Any]:
    rng = random.Random(11)
    stub = start_stub(workdir / "crowd")
    crowd: CrowdProcs | None = None
    out: dict[str, Any] = {
        "agents": agents,
        "processes": procs,
        "wait_seconds": wait,
        "goals": GOALS,
        "fd_limits": _fd_limits(stub.proc.pid),
    }
    try:
        t0 = time.monotonic()
        crowd = CrowdProcs(stub, agents, procs, wait, workdir / "crowd" / "logs")
        ok = wait_for(lambda: _health(stub)["wakeups"]["sleeping"] >= agents, 120 + 0.5 * agents, 0.5)
        out["all_waiting"] = ok
        out["start_seconds"] = round(time.monotonic() - t0, 1)
        out["stub_open_fds"] = _open_fds(stub.proc.pid)
        log(
            f"crowd: {agents} agents waiting after {out['start_seconds']} s (all: {ok}); "
            f"stub holds {out['stub_open_fds']} descriptors"
        )

        # -- idle
        time.sleep(2.0)
        load0 = loadavg()
        before = _counters(stub)
        with CpuMeter([stub.proc.pid]) as cpu, CpuMeter(crowd.pids) as ccpu:
            time.sleep(idle_window)
        after = _counters(stub)
        out["idle"] = {
            "window_s": idle_window,
            "loadavg_1m": [load0, loadavg()],
            "stub_cpu_pct": round(cpu.percent, 2),
            "stub_rss_mib": round(rss_mib(stub.proc.pid), 1),
            "agent_processes_cpu_pct": round(ccpu.percent, 1),
            "transactions_per_s": round((after["transactions"] - before["transactions"]) / cpu.wall, 1),
            "timeouts": after["timeouts"] - before["timeouts"],
        }
        log(
            f"crowd idle: stub {out['idle']['stub_cpu_pct']} % of a core (goal ≤ {GOALS['idle_cpu_pct']}), "
            f"RSS {out['idle']['stub_rss_mib']} MiB, {out['idle']['transactions_per_s']} transactions/s; "
            f"load {out['idle']['loadavg_1m']}"
        )

        # -- singles
        loader = Loader(stub.db)
        inserted: dict[str, float] = {}
        try:
            load0 = loadavg()
            before = _counters(stub)
            with CpuMeter([stub.proc.pid]) as cpu:
                for i in range(singles):
                    tid = f"single-{i:05d}"
                    inserted[tid] = loader.load(step_tasks([tid]), label="crowd-single")
                    wait_for(lambda tid=tid: crowd.got([tid]) == 1, 30.0, 0.002)
                    time.sleep(rng.uniform(0.05, 0.15))
                wait_for(lambda: _health(stub)["wakeups"]["sleeping"] >= agents, 60.0, 0.05)
            after = _counters(stub)
        finally:
            loader.close()
        lat = [crowd.received[t] - t0_ for t, t0_ in inserted.items() if t in crowd.received]
        out["singles"] = {
            "tasks": singles,
            "received": len(lat),
            "loadavg_1m": [load0, loadavg()],
            "latency": summary_ms(lat),
            "stub_cpu_pct": round(cpu.percent, 1),
            **_per_task(before, after),
        }
        log(
            f"crowd singles: pickup {out['singles']['latency']}; transactions/task "
            f"{out['singles']['transactions_per_task']} (all {out['singles']['all_transactions_per_task']}), "
            f"wake-ups/task {out['singles']['wakeups_per_task']}"
        )

        # -- burst
        ids = [f"burst-{i:05d}" for i in range(burst)]
        loader = Loader(stub.db)
        try:
            load0 = loadavg()
            before = _counters(stub)
            with CpuMeter([stub.proc.pid]) as cpu:
                t_loaded = loader.load(step_tasks(ids), label="crowd-burst")
                all_in = wait_for(lambda: crowd.got(ids) == burst, 120.0 + burst / 10, 0.02)
                t_all = time.time()
                wait_for(lambda: _health(stub)["wakeups"]["sleeping"] >= agents, 60.0, 0.05)
            after = _counters(stub)
        finally:
            loader.close()
        assigned = _assigned_at(stub.db, "burst-")
        lat = [crowd.received[t] - t_loaded for t in ids if t in crowd.received]
        out["burst"] = {
            "tasks": burst,
            "received": len(lat),
            "all_received": all_in,
            "loadavg_1m": [load0, loadavg()],
            "all_assigned_s": round(max(assigned.values()) - t_loaded, 3) if len(assigned) == burst else None,
            "all_received_s": round(t_all - t_loaded, 3) if all_in else None,
            "double_assignments": _double_assignments(stub.db),
            "latency": summary_ms(lat),
            "stub_cpu_pct": round(cpu.percent, 1),
            "agents_with_a_task": sum(1 for n in crowd.by_agent.values() if n),
            **_per_task(before, after),
        }
        out["stub_rss_mib_end"] = round(rss_mib(stub.proc.pid), 1)
        out["agent_errors"] = crowd.errors
        log(
            f"crowd burst: {burst} tasks all assigned in {out['burst']['all_assigned_s']} s, received in "
            f"{out['burst']['all_received_s']} s, double assignments {out['burst']['double_assignments']}, "
            f"pickup {out['burst']['latency']}"
        )
    finally:
        if crowd is not None:
            crowd.stop()
        stub.stop()
    return out
