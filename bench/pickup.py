"""3. Pickup latency: from a task appearing on the board to its assignment arriving at an
idle worker.

Four runs, each on its own stub:

- `probe_load`: an instrumented client in this process long-polls (`request_next_task`,
  `wait_seconds=25`, through `pm_worker`'s client); once it is parked in the stub, this
  process commits one task to the board file the way `python -m pm_agent_stub load` does.
  That commit is *another process's*, so the stub only learns of it through its
  `PRAGMA data_version` watcher. Latency = commit → answer received (one clock).
- `probe_tool`: the same client, but the task becomes offerable through an MCP tool
  (`resolve_blocker` on a task blocked beforehand), i.e. the in-process wake-up.
  Latency = resolve call sent → assignment received (includes the resolve call itself).
- `workers_load`: idle step-worker processes (pm_worker) and the `load` path; latency =
  commit → the worker's own `task_received` log timestamp (same machine, same clock).
- `sleep_poll`: the upstream tutorial's loop (`request_next_task` without wait, then
  `asyncio.sleep(30)` when idle), run with the interval scaled down and scaled back up;
  next to it the analytic figure for 30 s (uniform arrival: p50 = 15 s, p99 = 29.7 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._harness import (
    CpuMeter,
    Loader,
    Stub,
    log,
    scalar,
    start_stub,
    start_workers,
    step_tasks,
    summary_ms,
    wait_for,
    wait_registered,
    worker_settings,
)

SKILL = "pickup"


def _client(stub: Stub, agent_id: str, skills: tuple[str, ...] = (SKILL,)) -> Any:
    from pm_worker.client import Identity, PMClient

    settings = worker_settings(
        stub.url, agent_id=agent_id, poll_wait_seconds=25, reconnect_give_up_seconds=30
    )
    return PMClient(settings, Identity(agent_id=agent_id, name="pickup probe", role="probe", skills=skills))


async def _probe(stub: Stub, samples: int, via: str, rng: random.Random) -> list[float]:
    """Latencies (s) for one waiting client; `via` is "load" or "tool"."""
    loader = Loader(stub.db)
    latencies: list[float] = []
    try:
        async with _client(stub, f"probe-{via}") as pm:
            await pm.register()
            blocked: list[str] = []
            if via == "tool":
                # Block every task first (a setter agent holds each and reports a blocker), so
                # that resolve_blocker is what makes a task offerable.
                ids = [f"tool-{i:05d}" for i in range(samples)]
                loader.load(step_tasks(ids, skill=SKILL), label="pickup-tool")
                async with _client(stub, "setter") as setter:
                    await setter.register()
                    for _ in ids:
                        offer = await setter.request_next_task(0)
                        assert offer.assignment is not None
                        await setter.report_blocker(
                            offer.assignment.task_id, "parked for the benchmark", "low"
                        )
                        blocked.append(offer.assignment.task_id)
            resolver = _client(stub, "resolver") if via == "tool" else None
            if resolver is not None:
                await resolver.__aenter__()
                await resolver.ping()
            try:
                for i in range(samples):
                    poll = asyncio.ensure_future(pm.request_next_task(25))
                    # Let the request reach the stub and park; random so the insert never
                    # phase-locks with the stub's watcher period.
                    await asyncio.sleep(rng.uniform(0.03, 0.08))
                    if poll.done():
                        poll.result()
                        continue
                    if via == "load":
                        t0 = loader.load(step_tasks([f"load-{i:05d}"], skill=SKILL), label="pickup-load")
                    else:
                        assert resolver is not None
                        t0 = time.time()
                        await resolver.resolve_blocker(blocked[i], "benchmark: go")
                    offer = await poll
                    t1 = time.time()
                    if offer.assignment is None:
                        continue
                    latencies.append(t1 - t0)
                    await pm.report_progress(offer.assignment.task_id, 100, "done", status="completed")
            finally:
                if resolver is not None:
                    await resolver.__aexit__(None, None, None)
    finally:
        loader.close()
    return latencies


def _received_times(log_paths: list[Path]) -> dict[str, float]:
    """task_id → wall-clock time the worker logged `task_received`."""
    out: dict[str, float] = {}
    for path in log_paths:
        for line in path.read_text(errors="replace").splitlines():
            if '"task_received"' not in line:
                continue
            try:
                rec = json.loads(line)
                ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
            except (ValueError, KeyError):
                continue
            out.setdefault(rec["task_id"], ts)
    return out


def _workers(stub: Stub, workdir: Path, n_workers: int, samples: int, rng: random.Random) -> dict[str, Any]:
    fleet = start_workers(stub, n_workers, workdir, prefix="pw")
    inserted: dict[str, float] = {}
    try:
        wait_registered(stub, fleet, 60 + 2.0 * n_workers)
        time.sleep(1.0)
        loader = Loader(stub.db)
        try:
            for i in range(samples):
                tid = f"w-{i:05d}"
                inserted[tid] = loader.load(step_tasks([tid]), label="pickup-workers")
                wait_for(
                    lambda tid=tid: (
                        scalar(stub.db, "SELECT status FROM tasks WHERE task_id = ?", (tid,)) == "done"
                    ),
                    10.0,
                    0.005,
                )
                time.sleep(rng.uniform(0.05, 0.15))
        finally:
            loader.close()
        time.sleep(0.3)
    finally:
        fleet.stop()
    received = _received_times(fleet.log_paths)
    assigned = {
        r[0]: r[1]
        for r in _rows(
            stub.db, "SELECT task_id, min(at) FROM events WHERE kind = 'assigned' GROUP BY task_id"
        )
    }
    lat = [received[t] - t0 for t, t0 in inserted.items() if t in received]
    to_stub = [assigned[t] - t0 for t, t0 in inserted.items() if t in assigned]
    return {
        "workers": n_workers,
        "latency": summary_ms(lat),
        "insert_to_stub_assignment": summary_ms(to_stub),
        "samples_s": lat,
    }


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    from bench._harness import reader

    with reader(db) as conn:
        return [tuple(r) for r in conn.execute(sql)]


async def _sleep_poll(stub: Stub, samples: int, interval: float, rng: random.Random) -> list[float]:
    """The tutorial's loop with `interval` instead of 30 s; latencies in seconds."""
    loader = Loader(stub.db)
    latencies: list[float] = []
    inserted: dict[str, float] = {}
    try:
        async with _client(stub, "sleep-poller") as pm:
            await pm.register()

            async def poller() -> None:
                while len(latencies) < samples:
                    offer = await pm.request_next_task(0)
                    if offer.assignment is None:
                        await asyncio.sleep(interval)
                        continue
                    tid = offer.assignment.task_id
                    latencies.append(time.time() - inserted[tid])
                    await pm.report_progress(tid, 100, "done", status="completed")
                    await asyncio.sleep(interval)  # the tutorial rests after every cycle

            task = asyncio.ensure_future(poller())
            for i in range(samples):
                await asyncio.sleep(rng.uniform(0.1, interval))
                tid = f"sp-{i:05d}"
                inserted[tid] = loader.load(step_tasks([tid], skill=SKILL), label="sleep-poll")
                deadline = time.monotonic() + 3 * interval + 5
                while len(latencies) <= i and time.monotonic() < deadline and not task.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        loader.close()
    return latencies


def run(
    workdir: Path,
    *,
    samples: int,
    worker_samples: int,
    n_workers: int,
    sleep_samples: int,
    sleep_interval: float,
) -> dict[str, Any]:
    rng = random.Random(7)
    out: dict[str, Any] = {"goal_p99_ms": 25.0}
    for via in ("load", "tool"):
        stub = start_stub(workdir / f"pickup-{via}")
        try:
            with CpuMeter([stub.proc.pid]):
                lat = asyncio.run(_probe(stub, samples, via, rng))
        finally:
            stub.stop()
        out[f"probe_{via}"] = {"latency": summary_ms(lat), "samples_s": lat}
        log(f"pickup probe via {via}: {out[f'probe_{via}']['latency']}")
    stub = start_stub(workdir / "pickup-workers")
    try:
        out["workers_load"] = _workers(stub, workdir / "pickup-workers", n_workers, worker_samples, rng)
    finally:
        stub.stop()
    log(f"pickup real workers via load: {out['workers_load']['latency']}")
    stub = start_stub(workdir / "pickup-sleep")
    try:
        lat = asyncio.run(_sleep_poll(stub, sleep_samples, sleep_interval, rng))
    finally:
        stub.stop()
    scale = 30.0 / sleep_interval
    measured = summary_ms(lat)
    out["sleep_poll"] = {
        "interval_s": sleep_interval,
        "latency": measured,
        "scaled_to_30s": {
            k: (round(v * scale, 1) if k.endswith("_ms") and v is not None else v)
            for k, v in measured.items()
        },
        "analytic_30s": {"p50_ms": 15000.0, "p99_ms": 29700.0, "max_ms": 30000.0, "mean_ms": 15000.0},
        "samples_s": lat,
    }
    log(f"pickup sleep-poll ({sleep_interval}s interval): {measured}")
    return out
