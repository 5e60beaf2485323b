"""The measurement: interleaved rounds of every system, each block one system's fleet.

A block starts N_max worker processes, gates (all connected and idle), drains a warm-up
batch (not measured), then for each N in descending order (the fleet shrinks by stopping
workers, so every N runs on warm processes): gate, settle, release M no-op jobs, wait
until drained. With the pickup fleet size it also releases single stamped jobs, one at a
time with a random pause, to idle workers. Rounds take the systems in turn, the order
rotated each round, so that a noisy minute on this shared machine falls on every system.

Per drain (one window from just before the release to the drained check):
- jobs/s = M ÷ (last completion as the system recorded it - release);
- coordinator CPU = its process trees (/proc), worker CPU = the worker processes';
- others' CPU = what the whole machine did minus ours (this bench, its servers, workers).
Pickup = submit call starts → the job starts in a worker (worker's clock; same machine).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench._harness import CLK_TCK, cpu_seconds, log, machine_busy_jiffies, summary_ms
from bench.peers.base import System, Workers
from bench.peers.proc import loadavg3, tree_cpu_seconds, tree_rss_mib


@dataclass
class Config:
    rounds: int = 3
    ns: tuple[int, ...] = (16, 4, 1)
    jobs: dict[str, int] = field(default_factory=dict)
    """M per system family (`pm-agent`, `saq`, `celery`, `procrastinate`)."""
    warmup_per_worker: int = 2
    pickup_workers: int = 4
    pickup_samples: int = 40
    budget_seconds: float = 570.0
    """No round starts that would, at the mean round's length so far, end past this (section time)."""
    gate_timeout: float = 180.0
    settle_seconds: float = 1.0

    def __post_init__(self) -> None:
        self.ns = tuple(sorted(self.ns, reverse=True))
        if self.pickup_workers not in self.ns:
            raise ValueError(f"pickup_workers={self.pickup_workers} must be one of ns={self.ns}")

    def m(self, system: System) -> int:
        family = "pm-agent" if system.key.startswith("pm-agent") else system.key
        return int(self.jobs[family])


class GateFailed(RuntimeError):
    pass


async def gate(system: System, workers: Workers, n: int, timeout: float) -> float:
    """Wait until n workers are connected and idle; the seconds it took."""
    t0 = time.monotonic()
    while not await system.idle(n):
        dead = workers.dead()
        if dead:
            raise GateFailed(f"{system.key}: a worker exited before the gate: {dead[0][:800]}")
        if time.monotonic() - t0 > timeout:
            raise GateFailed(f"{system.key}: {n} workers not connected and idle after {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def wait_drained(system: System, tag: str, m: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not await system.drained(tag, m):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _per_job_ms(seconds: float, m: int) -> float | None:
    return round(1000.0 * seconds / m, 3) if m else None


async def measure_drain(
    system: System, workers: Workers, n: int, m: int, tag: str, cfg: Config
) -> dict[str, Any]:
    gate_s = await gate(system, workers, n, cfg.gate_timeout)
    await asyncio.sleep(cfg.settle_seconds)  # start-up and last round's stragglers settle
    coord, wpids, me = system.coordinator_pids(), workers.pids, os.getpid()
    load0 = loadavg3()
    busy0, _ = machine_busy_jiffies()
    c0, w0, b0 = tree_cpu_seconds(coord), tree_cpu_seconds(wpids), cpu_seconds(me)
    wall0 = time.monotonic()
    t_release = time.time()
    await system.release(tag, m)
    t_enqueued = time.time()
    done = await wait_drained(system, tag, m, max(30.0, m / 20.0))
    wall = time.monotonic() - wall0
    c1, w1, b1 = tree_cpu_seconds(coord), tree_cpu_seconds(wpids), cpu_seconds(me)
    busy1, _ = machine_busy_jiffies()
    rss = [tree_rss_mib(p) for p in wpids]
    last = await system.last_completed(tag, m)
    span = (last - t_release) if last is not None else None
    coord_s, work_s, bench_s = c1 - c0, w1 - w0, b1 - b0
    others = (busy1 - busy0) / CLK_TCK - coord_s - work_s - bench_s
    row = {
        "workers": n,
        "jobs": m,
        "all_done": done,
        "gate_seconds": round(gate_s, 2),
        "enqueue_seconds": round(t_enqueued - t_release, 3),
        "drain_seconds": round(span, 3) if span is not None else None,
        "jobs_per_s": round(m / span, 1) if done and span and span > 0 else None,
        "coordinator_cpu_ms_per_job": _per_job_ms(coord_s, m),
        "worker_cpu_ms_per_job": _per_job_ms(work_s, m),
        "total_cpu_ms_per_job": _per_job_ms(coord_s + work_s, m),
        "producer_cpu_ms_per_job": _per_job_ms(bench_s, m),
        "others_cpu_pct": round(100.0 * max(0.0, others) / wall, 1) if wall > 0 else None,
        "worker_rss_mib_mean": round(statistics.fmean(rss), 1) if rss else None,
        "loadavg": [load0, loadavg3()],
    }
    log(
        f"peers {system.key} {tag}: N={n} M={m} {row['jobs_per_s']} jobs/s, coordinator "
        f"{row['coordinator_cpu_ms_per_job']} ms/job, workers {row['worker_cpu_ms_per_job']} ms/job, "
        f"others {row['others_cpu_pct']}%"
    )
    return row


async def measure_pickup(
    system: System, workers: Workers, n: int, samples: int, tag: str, cfg: Config, rng: random.Random
) -> dict[str, Any]:
    await gate(system, workers, n, cfg.gate_timeout)
    await asyncio.sleep(cfg.settle_seconds)
    latencies: list[float] = []
    submits: list[float] = []
    missing = 0
    for i in range(samples):
        key = f"{tag}-{i}"
        t0 = time.time()
        await system.submit_stamped(key)
        submits.append(time.time() - t0)
        deadline = time.monotonic() + 10.0
        # The start time is in another process's file: there is no event to wait on.
        while key not in system.started() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        started = system.started().get(key)
        if started is None:
            missing += 1
        else:
            latencies.append(started - t0)
        await asyncio.sleep(rng.uniform(0.03, 0.08))  # the worker finishes and waits again
    return {"workers": n, "latency": summary_ms(latencies), "submit_call": summary_ms(submits),
            "missing": missing, "samples_s": [round(x, 6) for x in latencies]}  # fmt: skip


async def block(system: System, round_no: int, cfg: Config, rng: random.Random) -> dict[str, Any]:
    """One system's fleet through every N, on a fresh board / emptied queue."""
    t0 = time.monotonic()
    m = cfg.m(system)
    top = cfg.ns[0]
    await system.open(round_no)
    workers = system.start_workers(top)
    out: dict[str, Any] = {"round": round_no, "drains": {}}
    try:
        out["start_seconds"] = round(await gate(system, workers, top, cfg.gate_timeout), 2)
        warm = f"r{round_no}-warm"
        await system.release(warm, cfg.warmup_per_worker * top)
        await wait_drained(system, warm, cfg.warmup_per_worker * top, 60.0)
        for n in cfg.ns:
            workers.stop(keep=n)
            out["drains"][str(n)] = await measure_drain(system, workers, n, m, f"r{round_no}-n{n}", cfg)
            if n == cfg.pickup_workers:
                out["pickup"] = await measure_pickup(
                    system, workers, n, cfg.pickup_samples, f"r{round_no}-pick", cfg, rng
                )
    finally:
        workers.stop()
        await system.close()
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


async def interleave(systems: list[System], cfg: Config, started: float) -> dict[str, Any]:
    """cfg.rounds rounds of every system in turn (order rotated each round), within the budget."""
    rng = random.Random(26)
    blocks: dict[str, list[dict[str, Any]]] = {s.key: [] for s in systems}
    errors: list[str] = []
    round_seconds: list[float] = []
    for r in range(1, cfg.rounds + 1):
        elapsed = time.monotonic() - started
        if round_seconds and elapsed + statistics.fmean(round_seconds) > cfg.budget_seconds:
            log(
                f"peers: stopping after {r - 1} rounds ({elapsed:.0f} s used of a {cfg.budget_seconds:.0f} s budget)"
            )
            break
        t0 = time.monotonic()
        order = systems[(r - 1) % len(systems) :] + systems[: (r - 1) % len(systems)]
        for system in order:
            log(f"peers: round {r}, {system.label}")
            try:
                blocks[system.key].append(await block(system, r, cfg, rng))
            except Exception as exc:  # one system failing leaves the others' figures standing
                errors.append(f"round {r} {system.key}: {type(exc).__name__}: {exc}")
                log(f"peers: {errors[-1]}")
        round_seconds.append(time.monotonic() - t0)
    return {"blocks": blocks, "errors": errors, "round_seconds": [round(x, 1) for x in round_seconds]}
