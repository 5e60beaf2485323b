"""8. A big `load` next to a serving stub: what the stub's clients wait for meanwhile.

`python -m pm_agent_stub load big.yaml` (another process) adds N tasks to the board file of
a running stub in one transaction. Meanwhile one MCP client calls `ping` (touches no
table) and another `heartbeat` (a board transaction) back to back, each call timed. The
stub's own calls wait for the database's write lock while the load holds it; `ping` and
`/healthz` must not (the board runs on its own thread, board_thread.py). Reported: the
CLI's whole time, ping and heartbeat latency (p50/max) during it, and the longest
heartbeat, which is how long the load held the write lock as the stub saw it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import base_env, loadavg, log, start_stub, summary_ms

SKILL = "lockwait"


def _write_project(path: Path, n: int) -> None:
    """A project file of `n` tasks (every third depends on the one before), written as YAML text."""
    lines = ["project: lockwait", "tasks:"]
    for i in range(n):
        lines.append(f"  - id: big{i:06d}")
        lines.append(f"    name: big task {i}")
        lines.append(f"    required_skills: [{SKILL}-other]")
        if i % 3 == 0 and i:
            lines.append(f"    dependencies: [big{i - 1:06d}]")
    path.write_text("\n".join(lines) + "\n")


async def _caller(
    url: str, tool: str, args: dict[str, Any], stop: threading.Event, out: list[tuple[float, float]]
) -> None:
    import mcp

    from pm_agent_stub.testing import call_tool

    async with mcp.Client(url) as client:
        await call_tool(client, tool, args)
        while not stop.is_set():
            t0 = time.monotonic()
            await call_tool(client, tool, args)
            out.append((t0, time.monotonic() - t0))
            await asyncio.sleep(0.01)


async def _callers(
    url: str, stop: threading.Event, pings: list[tuple[float, float]], beats: list[tuple[float, float]]
) -> None:
    import mcp

    from pm_agent_stub.testing import call_tool

    async with mcp.Client(url) as client:
        await call_tool(
            client, "register_agent", {"agent_id": "beater", "name": "b", "role": "r", "skills": [SKILL]}
        )
    await asyncio.gather(
        _caller(url, "ping", {}, stop, pings), _caller(url, "heartbeat", {"agent_id": "beater"}, stop, beats)
    )


def run(workdir: Path, sizes: list[int]) -> dict[str, Any]:
    rows = []
    for n in sizes:
        wd = workdir / f"lockwait-{n}"
        wd.mkdir(parents=True, exist_ok=True)
        project = wd / "big.yaml"
        _write_project(project, n)
        stub = start_stub(wd, env={"LOG_LEVEL": "warning"})
        stop = threading.Event()
        pings: list[tuple[float, float]] = []
        beats: list[tuple[float, float]] = []
        callers = threading.Thread(
            target=asyncio.run, args=(_callers(stub.url, stop, pings, beats),), daemon=True
        )
        try:
            callers.start()
            deadline = time.monotonic() + 60
            while (len(pings) < 20 or len(beats) < 20) and time.monotonic() < deadline:
                time.sleep(0.05)
            load0 = loadavg()
            t0 = time.monotonic()
            cli = subprocess.run(
                [sys.executable, "-m", "pm_agent_stub", "load", str(project), "--db", str(stub.db)],
                capture_output=True,
                text=True,
                env=base_env(),
                timeout=1800,
                check=False,
            )
            t1 = time.monotonic()
            time.sleep(0.5)
        finally:
            stop.set()
            callers.join(timeout=60)
            stub.stop()
        during_p = [d for t, d in pings if t0 <= t <= t1 or t < t0 < t + d]
        during_b = [d for t, d in beats if t0 <= t <= t1 or t < t0 < t + d]
        row = {
            "tasks": n,
            "cli_exit": cli.returncode,
            "cli_seconds": round(t1 - t0, 2),
            "loadavg_1m": [load0, loadavg()],
            "ping": summary_ms(during_p),
            "heartbeat": summary_ms(during_b),
            "cli_stderr_tail": cli.stderr.strip().splitlines()[-1:] if cli.stderr else [],
        }
        log(
            f"lockwait {n} tasks: CLI {row['cli_seconds']} s; ping p50/max {row['ping']['p50_ms']}/"
            f"{row['ping']['max_ms']} ms, heartbeat p50/max {row['heartbeat']['p50_ms']}/{row['heartbeat']['max_ms']} ms"
        )
        rows.append(row)
    return {"rows": rows}
