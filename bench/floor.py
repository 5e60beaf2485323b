"""1. The MCP floor: K client processes calling `ping` back to back for a few seconds.

Each client is its own process with one MCP connection built by `pm_worker.connection`
(the same streamable-HTTP client a worker uses), one call in flight at a time, like a
worker. A `ClientPool` starts the K processes once (64 Python processes take a while to
import the SDK on 2 cores) and then runs phases on them: each phase is armed in every
child, started at once with a go-file, and run for `duration` seconds; each child reports
its calls, latencies and own CPU time as one JSON line. calls/s = all calls / duration:
the ceiling any MCP coordinator on this machine reaches with K clients.

Besides `ping`, a phase can run `cycle`: a worker's two calls per task
(`request_next_task`, then `report_task_progress(completed)`) straight on the SDK client,
without pm_worker's Worker loop or typed client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import REPO_ROOT, CpuMeter, MachineMeter, Stub, base_env, log, stop_process, summary_ms

CYCLE = "cycle"  # pseudo-tool: request_next_task + report_task_progress(completed), as a worker does


async def _phase(
    conn: Any, agent: str, tool: str, args: dict[str, Any], go: Path, duration: float
) -> dict[str, Any]:
    print("armed", flush=True)
    while not go.exists():  # noqa: ASYNC110, ASYNC240 - another process creates it; a stat takes µs
        await asyncio.sleep(0.002)
    latencies: list[float] = []
    cpu0 = time.process_time()
    start = time.monotonic()
    end = start + duration
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        if tool == CYCLE:
            answer = await conn.call("request_next_task", {"agent_id": agent, "wait_seconds": 1}, 30.0)
            latencies.append(time.monotonic() - t0)
            assignment = answer.answer.get("assignment")
            if assignment is None:
                continue
            t0 = time.monotonic()
            await conn.call(
                "report_task_progress",
                {
                    "agent_id": agent,
                    "task_id": assignment["task_id"],
                    "status": "completed",
                    "progress": 100,
                    "message": "done",
                },
                30.0,
            )
            latencies.append(time.monotonic() - t0)
            continue
        await conn.call(tool, args, 30.0)
        latencies.append(time.monotonic() - t0)
    return {
        "calls": len(latencies),
        "elapsed": time.monotonic() - start,
        "latency": summary_ms(latencies),
        "cpu_s": time.process_time() - cpu0,
        "pid": os.getpid(),
    }


async def _child(url: str) -> None:
    from bench._harness import worker_settings
    from pm_worker.connection import Connection

    conn = Connection(worker_settings(url, poll_wait_seconds=0))
    await conn.open()
    agent = f"raw-{os.getpid()}"
    try:
        await conn.call(
            "register_agent", {"agent_id": agent, "name": "raw", "role": "steps", "skills": ["steps"]}, 30.0
        )
        await conn.call("ping", {}, 30.0)  # warm: the first request pays the connection set-up
        print("ready", flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or line.strip() == "quit":
                return
            cmd = json.loads(line)
            out = await _phase(
                conn, agent, cmd["tool"], cmd.get("args", {}), Path(cmd["go"]), cmd["duration"]
            )
            print(json.dumps(out), flush=True)
    finally:
        await conn.close()


class ClientPool:
    """K client processes on one stub, reused across phases."""

    def __init__(self, stub: Stub, k: int, workdir: Path) -> None:
        self.stub = stub
        self.k = k
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.floor", "--child", "--url", stub.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=base_env(),
                cwd=REPO_ROOT,
                text=True,
                bufsize=1,
            )
            for _ in range(k)
        ]
        self.ready = self._expect("ready", 60 + 3.0 * k)
        if self.ready < k:
            log(f"client pool: only {self.ready}/{k} clients became ready")

    def _expect(self, word: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        got = 0
        for p in self.procs:
            assert p.stdout is not None
            while time.monotonic() < deadline and p.poll() is None:
                line = p.stdout.readline()
                if not line:
                    break
                if line.strip() == word:
                    got += 1
                    break
        return got

    def measure(self, tool: str, duration: float, args: dict[str, Any] | None = None) -> dict[str, Any]:
        go = self.workdir / f"go-{self.k}-{time.monotonic_ns()}"
        live = [p for p in self.procs if p.poll() is None]
        for p in live:
            assert p.stdin is not None
            p.stdin.write(
                json.dumps({"tool": tool, "args": args or {}, "go": str(go), "duration": duration}) + "\n"
            )
            p.stdin.flush()
        self._expect("armed", 30 + self.k)
        outs: list[dict[str, Any]] = []
        with (
            CpuMeter([self.stub.proc.pid]) as stub_cpu,
            MachineMeter([self.stub.proc.pid, os.getpid(), *(p.pid for p in live)]) as machine,
        ):
            go.touch()
            deadline = time.monotonic() + duration + 60
            for p in live:
                assert p.stdout is not None
                while time.monotonic() < deadline and p.poll() is None:
                    line = p.stdout.readline()
                    if not line:
                        break
                    if line.startswith("{"):
                        outs.append(json.loads(line))
                        break
        go.unlink(missing_ok=True)
        calls = sum(o["calls"] for o in outs)
        wall = max((o["elapsed"] for o in outs), default=duration)
        p50s = sorted(o["latency"]["p50_ms"] for o in outs if o["latency"]["p50_ms"] is not None)
        result = {
            "clients": self.k,
            "clients_reporting": len(outs),
            "tool": tool,
            "duration_s": round(wall, 2),
            "calls": calls,
            "calls_per_s": round(calls / wall, 1) if wall else 0.0,
            "latency_p50_ms_median_client": p50s[len(p50s) // 2] if p50s else None,
            "stub_cpu_pct": round(stub_cpu.percent, 1),
            "stub_cpu_ms_per_call": round(1000 * stub_cpu.cpu / calls, 3) if calls else None,
            "client_cpu_ms_per_call": round(1000 * sum(o["cpu_s"] for o in outs) / calls, 3)
            if calls
            else None,
            "others_cpu_pct": round(machine.others_pct, 1),
        }
        log(
            f"{tool} K={self.k}: {result['calls_per_s']} calls/s, stub {result['stub_cpu_pct']}% of a core, "
            f"{result['stub_cpu_ms_per_call']} ms stub CPU/call, {result['client_cpu_ms_per_call']} ms client CPU/call; "
            f"others {result['others_cpu_pct']}%"
        )
        return result

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None and p.stdin is not None:
                try:
                    p.stdin.write("quit\n")
                    p.stdin.flush()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                stop_process(p, 5)

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure(
    stub: Stub, k: int, duration: float, workdir: Path, tool: str = "ping", args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One phase on a fresh pool of K clients."""
    with ClientPool(stub, k, workdir) as pool:
        return pool.measure(tool, duration, args)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--url", required=True)
    ns = p.parse_args()
    asyncio.run(_child(ns.url))


if __name__ == "__main__":
    main()
