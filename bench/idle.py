"""5. Idle cost: what long-polling workers cost the stub when there is nothing to do.

- 100 lightweight clients: a few processes, each running 25 coroutines, each with its own
  MCP connection (`pm_worker`'s client) and agent id doing the real long-poll loop
  (`request_next_task` with `wait_seconds=25`).
- 10 real step-worker processes (pm_worker), idle.
Over the window: stub CPU (% of one core, from /proc/<pid>/stat; goal ≤ 5 %), stub RSS,
one worker's RSS and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import (
    REPO_ROOT,
    CpuMeter,
    base_env,
    cpu_seconds,
    log,
    rss_mib,
    scalar,
    start_stub,
    start_workers,
    stop_process,
    wait_for,
    wait_registered,
)


async def _child(url: str, prefix: str, clients: int, duration: float, wait: float) -> None:
    from bench._harness import worker_settings
    from pm_worker.client import Identity, PMClient

    end = time.monotonic() + duration

    async def one(i: int) -> None:
        agent_id = f"{prefix}{i:03d}"
        settings = worker_settings(
            url, agent_id=agent_id, poll_wait_seconds=wait, reconnect_give_up_seconds=30
        )
        async with PMClient(settings, Identity(agent_id, "idle client", "idle", ("idle",))) as pm:
            await pm.register()
            while time.monotonic() < end:
                await pm.request_next_task(min(wait, max(0.1, end - time.monotonic())))

    await asyncio.gather(*(one(i) for i in range(clients)))


def _light(workdir: Path, clients: int, procs: int, window: float, wait: float) -> dict[str, Any]:
    stub = start_stub(workdir / "idle-light")
    children: list[subprocess.Popen[bytes]] = []
    try:
        per = -(-clients // procs)
        startup = 60.0 + clients
        for j in range(procs):
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.idle",
                        "--child",
                        "--url",
                        stub.url,
                        "--prefix",
                        f"i{j}-",
                        "--clients",
                        str(min(per, clients - j * per)),
                        "--duration",
                        str(startup + window + 5),
                        "--wait",
                        str(wait),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=base_env(),
                    cwd=REPO_ROOT,
                )
            )
        ok = wait_for(lambda: (scalar(stub.db, "SELECT count(*) FROM agents") or 0) >= clients, startup, 0.2)
        time.sleep(2.0)
        with CpuMeter([stub.proc.pid]) as cpu, CpuMeter([c.pid for c in children]) as ccpu:
            time.sleep(window)
        result = {
            "clients": clients,
            "processes": procs,
            "all_registered": ok,
            "window_s": window,
            "wait_seconds": wait,
            "stub_cpu_pct": round(cpu.percent, 2),
            "stub_rss_mib": round(rss_mib(stub.proc.pid), 1),
            "client_processes_cpu_pct": round(ccpu.percent, 2),
        }
    finally:
        for c in children:
            stop_process(c, 5)
        stub.stop()
    log(
        f"idle {clients} light clients: stub {result['stub_cpu_pct']}% of a core, {result['stub_rss_mib']} MiB"
    )
    return result


def _workers(workdir: Path, n: int, window: float) -> dict[str, Any]:
    stub = start_stub(workdir / "idle-workers")
    fleet = start_workers(stub, n, workdir / "idle-workers", prefix="iw")
    try:
        ok = wait_registered(stub, fleet, 60 + 2.0 * n)
        time.sleep(2.0)
        one = fleet.pids[0] if fleet.pids else 0
        c_one = cpu_seconds(one)
        with CpuMeter([stub.proc.pid]) as cpu, CpuMeter(fleet.pids) as wcpu:
            time.sleep(window)
        result = {
            "workers": n,
            "all_registered": ok,
            "window_s": window,
            "stub_cpu_pct": round(cpu.percent, 2),
            "stub_rss_mib": round(rss_mib(stub.proc.pid), 1),
            "worker_rss_mib": round(rss_mib(one), 1),
            "worker_cpu_pct": round(100 * (cpu_seconds(one) - c_one) / wcpu.wall, 2) if wcpu.wall else None,
            "workers_cpu_pct_total": round(wcpu.percent, 2),
        }
    finally:
        fleet.stop()
        stub.stop()
    log(
        f"idle {n} workers: stub {result['stub_cpu_pct']}%, worker {result['worker_rss_mib']} MiB "
        f"{result['worker_cpu_pct']}%"
    )
    return result


def run(
    workdir: Path, *, clients: int, procs: int, workers: int, window: float, wait: float = 25.0
) -> dict[str, Any]:
    return {
        "goal_stub_cpu_pct": 5.0,
        "light_clients": _light(workdir, clients, procs, window, wait),
        "real_workers": _workers(workdir, workers, window),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--wait", type=float, default=25.0)
    ns = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_child(ns.url, ns.prefix, ns.clients, ns.duration, ns.wait))


if __name__ == "__main__":
    main()
