"""4. Dead worker recovery: SIGKILL a worker mid-task; how long until another worker holds it.

Stub with `PM_LEASE_SECONDS=5`; two step workers (heartbeat 1 s). One task of many short
steps (a checkpoint, which renews the lease, every 50 ms), so the victim's last renewal is
just before the kill. Recovery = SIGKILL → the stub's `assigned` event for the other
worker (the stub's clock and ours are the same machine's). Goal: ≤ lease + 1 s.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from bench._harness import (
    Loader,
    log,
    reader,
    start_stub,
    start_workers,
    step_tasks,
    wait_for,
    wait_registered,
)


def _assignments(db: Path, task_id: str) -> list[tuple[str, float]]:
    with reader(db) as conn:
        return [
            (r["agent_id"], r["at"])
            for r in conn.execute(
                "SELECT agent_id, at FROM events WHERE kind = 'assigned' AND task_id = ? ORDER BY id",
                (task_id,),
            )
        ]


def _event_at(db: Path, kind: str, task_id: str) -> float | None:
    with reader(db) as conn:
        row = conn.execute(
            "SELECT min(at) FROM events WHERE kind = ? AND task_id = ?", (kind, task_id)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])


def trial(workdir: Path, lease: float, i: int) -> dict[str, Any]:
    stub = start_stub(workdir / f"recovery-{i}", env={"PM_LEASE_SECONDS": str(lease)})
    fleet = start_workers(
        stub,
        2,
        workdir / f"recovery-{i}",
        prefix=f"r{i}-",
        env={"HEARTBEAT_SECONDS": str(max(0.2, lease / 5))},
    )
    try:
        wait_registered(stub, fleet, 60)
        time.sleep(0.5)
        tid = f"victim-{i}"
        loader = Loader(stub.db)
        try:
            loader.load(step_tasks([tid], steps=int((lease * 3 + 5) / 0.05), step_seconds=0.05), "recovery")
        finally:
            loader.close()
        wait_for(lambda: _assignments(stub.db, tid), 15.0, 0.01)
        first = _assignments(stub.db, tid)
        if not first:
            return {"trial": i, "error": "never assigned"}
        holder = first[0][0]
        victim = fleet.procs[fleet.agent_ids.index(holder)]
        time.sleep(1.0)  # mid-task: a few checkpoints stored
        t_kill = time.time()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        wait_for(lambda: len(_assignments(stub.db, tid)) >= 2, lease + 15.0, 0.01)
        after = _assignments(stub.db, tid)
        expired = _event_at(stub.db, "expired", tid)
        if len(after) < 2:
            return {"trial": i, "error": f"not reassigned within {lease + 15}s"}
        new_holder, t_again = after[1]
        return {
            "trial": i,
            "lease_s": lease,
            "victim": holder,
            "new_holder": new_holder,
            "kill_to_expired_s": round(expired - t_kill, 3) if expired else None,
            "kill_to_reassigned_s": round(t_again - t_kill, 3),
            "within_goal": (t_again - t_kill) <= lease + 1.0,
        }
    finally:
        fleet.stop()
        stub.stop()


def run(workdir: Path, lease: float, trials: int) -> dict[str, Any]:
    rows = [trial(workdir, lease, i) for i in range(trials)]
    times = [r["kill_to_reassigned_s"] for r in rows if "kill_to_reassigned_s" in r]
    out = {
        "lease_s": lease,
        "goal_s": lease + 1.0,
        "trials": rows,
        "max_s": max(times) if times else None,
        "mean_s": round(sum(times) / len(times), 3) if times else None,
    }
    log(f"recovery (lease {lease}s): {times}")
    return out
