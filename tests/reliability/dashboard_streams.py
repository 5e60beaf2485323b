"""Many dashboard event streams against a real stub, and what they cost a worker (issue 24, item 3).

    python -m tests.reliability.dashboard_streams [--streams 390] [--seconds 20] [--env PM_X=Y ...]

Starts a stub on a fresh board file and fills it so that one dashboard snapshot is big
(200 agents and 200 tasks, each with 64 skills of 100 characters: ~1.9 MB of JSON), then

1. times `heartbeat` calls of a registered worker with no page open (the baseline);
2. opens `--streams` `GET /dashboard/api/stream` connections from a child process (real
   sockets, each read as fast as the child can), while the worker keeps heartbeating and
   `/metrics` is scraped once a second, for `--seconds`;
3. prints, as JSON: the snapshot's size, heartbeat p50 / p99 / max before and during, the
   slowest scrape, how the streams were answered (200 or 503 with its reason), how many
   board events they received, and the stub's CPU seconds and RSS.

Only endpoints every stub version serves are used, so running it with an older checkout's
sources first on PYTHONPATH gives the "before" figures. Times are printed, never asserted;
tests/reliability/test_dashboard_streams.py asserts the behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2

from pm_agent_stub.testing import StubProcess, load_tasks, start_stub
from tests.reliability.rpc import post, tool_answer, tool_body
from tests.reliability.slow_clients import rss_mib

BIG_SKILLS = [f"skill-{i:02d}-" + "s" * 91 for i in range(64)]  # 64 skills of 100 characters
FILL = 200


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill_board(stub: StubProcess) -> None:
    """200 tasks and 200 agents that each carry 64 skills of 100 characters."""
    load_tasks(
        stub.db,
        *(
            {"id": f"t{i:03d}", "name": f"Task {i} " + "n" * 180, "required_skills": BIG_SKILLS}
            for i in range(FILL)
        ),
    )
    with httpx2.Client(timeout=60) as client:
        for i in range(FILL):
            tool_answer(
                post(
                    client,
                    stub.url,
                    tool_body(
                        "register_agent",
                        {
                            "agent_id": f"viewer-fill-{i:03d}",
                            "name": "n" * 200,
                            "role": "r" * 200,
                            "skills": BIG_SKILLS,
                        },
                    ),
                )
            )
        tool_answer(
            post(
                client,
                stub.url,
                tool_body(
                    "register_agent", {"agent_id": "worker", "name": "W", "role": "w", "skills": ["w"]}
                ),
            )
        )


def time_heartbeats(stub: StubProcess, until: float, out: list[float]) -> None:
    """One `heartbeat` after another until `until` (monotonic); each call's seconds into `out`."""
    body = tool_body("heartbeat", {"agent_id": "worker"})
    with httpx2.Client(timeout=120) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            tool_answer(post(client, stub.url, body))
            out.append(time.perf_counter() - started)
            time.sleep(0.05)


def time_scrapes(stub: StubProcess, until: float, out: list[float]) -> None:
    """`GET /metrics` once a second; each scrape's seconds (a timeout counts as its 30 s)."""
    with httpx2.Client(timeout=30) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                client.get(f"{stub.base_url}/metrics").raise_for_status()
                out.append(time.perf_counter() - started)
            except httpx2.TimeoutException:
                out.append(30.0)
            time.sleep(1.0)


def summary(times: list[float]) -> dict[str, float]:
    if not times:
        return {}
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


# ---------------------------------------------------------------------------- the viewers' process


async def _one_stream(port: int, seconds: float, out: Counter[str], events: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16 * 1024 * 1024)
    except OSError as exc:
        out[f"connect failed: {type(exc).__name__}"] += 1
        return
    try:
        writer.write(f"GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        deadline = asyncio.get_running_loop().time() + seconds
        async with asyncio.timeout_at(deadline):
            status = (await reader.readline()).decode(errors="replace").strip()
            if " 200 " not in status + " ":
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode(errors="replace").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                reason = json.loads(body).get("message", "") if body.startswith(b"{") else body.decode()
                out[f"{status}: {reason}"] += 1
                return
            out["200"] += 1
            count = 0
            while True:
                line = await reader.readline()
                if not line:
                    out["ended by the stub"] += 1
                    break
                if line.startswith(b"event: board"):
                    count += 1
                    events.append(count)
    except TimeoutError:
        out["open at the end"] += 1
    except OSError as exc:
        out[f"reset: {type(exc).__name__}"] += 1
    finally:
        writer.close()


async def _viewers(port: int, streams: int, seconds: float) -> dict[str, Any]:
    out: Counter[str] = Counter()
    events: list[int] = []
    await asyncio.gather(*(_one_stream(port, seconds, out, events) for _ in range(streams)))
    return {"answers": dict(out), "board_events": len(events)}


def viewers_main(port: int, streams: int, seconds: float) -> int:
    json.dump(asyncio.run(_viewers(port, streams, seconds)), sys.stdout)
    return 0


# ---------------------------------------------------------------------------- the measurement


def measure(stub: StubProcess, streams: int, seconds: float) -> dict[str, Any]:
    fill_board(stub)
    with httpx2.Client(timeout=120) as client:
        snapshot_bytes = len(client.get(f"{stub.base_url}/dashboard/api/board").content)
    before: list[float] = []
    time_heartbeats(stub, time.monotonic() + 5, before)
    pid = stub.proc.pid
    cpu_before, rss_before = cpu_seconds(pid), rss_mib(pid)
    viewers = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.dashboard_streams",
            "viewers",
            "--port",
            str(stub.port),
            "--streams",
            str(streams),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
    )
    during: list[float] = []
    scrapes: list[float] = []
    until = time.monotonic() + seconds
    scraper = threading.Thread(target=time_scrapes, args=(stub, until, scrapes))
    scraper.start()
    time_heartbeats(stub, until, during)
    scraper.join()
    out, _ = viewers.communicate(timeout=seconds + 120)
    rss_during = rss_mib(pid)
    return {
        "streams": streams,
        "seconds": seconds,
        "snapshot_bytes": snapshot_bytes,
        "heartbeat_before": summary(before),
        "heartbeat_during": summary(during),
        "metrics_scrape": summary(scrapes),
        "viewers": json.loads(out or b"{}"),
        "stub_cpu_seconds_during": round(cpu_seconds(pid) - cpu_before, 2),
        "stub_rss_mib": {"before": round(rss_before, 1), "during": round(rss_during, 1)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.dashboard_streams", description=__doc__
    )
    parser.add_argument("mode", nargs="?", default="measure", choices=["measure", "viewers"])
    parser.add_argument("--streams", type=int, default=390, help="event streams to open (default 390)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long they stay open (default 20)")
    parser.add_argument("--port", type=int, help="(viewers) the stub's port")
    parser.add_argument("--env", action="append", default=[], help="PM_X=Y for the stub (repeatable)")
    ns = parser.parse_args(argv)
    if ns.mode == "viewers":
        return viewers_main(ns.port, ns.streams, ns.seconds)
    env = dict(item.split("=", 1) for item in ns.env)
    with tempfile.TemporaryDirectory() as tmp:
        stub = start_stub(Path(tmp) / "board.db", env=env)
        try:
            result = measure(stub, ns.streams, ns.seconds)
        finally:
            stub.stop()
    result["env"] = env
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
