"""Stub vs Marcus, same tasks, same machine, one run each: the figures in docs/marcus.md.

    MARCUS_SOURCE=../shared/upstream/marcus python -m tests.marcus.figures [--skip-kill]

Prints, for the stub (default settings: 60 s lease, 25 s long-poll) and for Marcus 0.3.8
(its own timings): the time 3 step workers take to drain 20 one-step tasks; the pickup
latency of a task put on an idle board (3 samples); and what SIGKILLing a worker mid-task
costs: how long until another worker has the task, and from which step it resumes.
Takes about 10 minutes, most of it waiting for Marcus to recover the killed worker's lease.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import load_tasks, start_stub, task, wait_until
from tests.integration.workerproc import STEP_WORKER, WorkerProcess, start_worker
from tests.marcus.host import start_marcus


def received_at(proc: WorkerProcess, task_id: str) -> float | None:
    for event in proc.events():
        if event.get("event") == "task_received" and event.get("task_id") == task_id:
            return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    return None


def completed_message(proc: WorkerProcess, task_id: str) -> str | None:
    for event in proc.events():
        if event.get("event") == "task_completed" and event.get("task_id") == task_id:
            return str(event.get("message"))
    return None


class Server:
    """What the three measurements need of a server: put tasks on it, count done ones, worker env."""

    def __init__(
        self,
        name: str,
        add: Callable[[list[tuple[str, dict[str, Any]]]], list[str]],
        done: Callable[[list[str]], int],
        env: dict[str, str],
        stop: Callable[[], None],
    ) -> None:
        self.name, self.add, self.done, self.env, self.stop = name, add, done, env, stop


def stub_server(run: Path) -> Server:
    db = run / "board.db"
    stub = start_stub(db)
    counter = iter(range(10_000))

    def add(tasks: list[tuple[str, dict[str, Any]]]) -> list[str]:
        ids = [f"{name}-{next(counter)}" for name, _ in tasks]
        load_tasks(db, *(task(i, "steps", payload=p) for i, (_, p) in zip(ids, tasks, strict=True)))
        return ids

    def done(ids: list[str]) -> int:
        import sqlite3

        conn = sqlite3.connect(db, timeout=15)
        try:
            marks = ",".join("?" * len(ids))
            return int(
                conn.execute(
                    f"SELECT COUNT(*) FROM tasks WHERE status = 'done' AND task_id IN ({marks})", ids
                ).fetchone()[0]
            )
        finally:
            conn.close()

    return Server(
        "stub",
        add,
        done,
        {
            "PM_AGENT_URL": stub.url,
            "PM_PROTOCOL": "stub",
            "POLL_WAIT_SECONDS": "25",
            "HEARTBEAT_SECONDS": "10",
        },
        stub.stop,
    )


def marcus_server(run: Path) -> Server:
    marcus = start_marcus(run / "marcus")

    def add(tasks: list[tuple[str, dict[str, Any]]]) -> list[str]:
        spec = [
            {
                "key": str(n),
                "name": f"Step task {name}",
                "labels": ["steps"],
                "project_id": "steps",
                "priority": "medium",
                "estimated_hours": 0.1,
                "description": f"{name}\n\n```json pm-payload\n{json.dumps(p)}\n```\n",
            }
            for n, (name, p) in enumerate(tasks)
        ]
        ids = marcus.seed(spec)
        return [ids[str(n)] for n in range(len(tasks))]

    def done(ids: list[str]) -> int:
        board = marcus.board()
        return sum(1 for i in ids if board[i]["status"] == "done")

    return Server(
        "marcus",
        add,
        done,
        {
            "PM_AGENT_URL": marcus.url,
            "PM_PROTOCOL": "marcus",
            "PM_PROJECT_ID": "steps",
            "POLL_WAIT_SECONDS": "25",
            "HEARTBEAT_SECONDS": "10",
        },
        marcus.stop,
    )


def workers(server: Server, run: Path, workspace: Path, names: list[str]) -> list[WorkerProcess]:
    return [
        start_worker(
            [str(STEP_WORKER)],
            run / f"{n}.log",
            AGENT_ID=n,
            WORKSPACE=str(workspace),
            SHUTDOWN_GRACE_SECONDS="5",
            **server.env,
        )
        for n in names
    ]


def stop(procs: list[WorkerProcess]) -> None:
    for p in procs:
        if p.alive():
            p.terminate(timeout=60)


def drain(server: Server, run: Path, workspace: Path) -> float:
    ids = server.add([(f"drain{i}", {"steps": 1}) for i in range(20)])
    start = time.monotonic()
    procs = workers(server, run, workspace, [f"{server.name}-drain-{n}" for n in range(3)])
    try:
        wait_until(lambda: server.done(ids) == 20, 600, message="20 tasks done")
        return time.monotonic() - start
    finally:
        stop(procs)


def pickup(server: Server, run: Path, workspace: Path, samples: int) -> list[float]:
    [proc] = workers(server, run, workspace, [f"{server.name}-pickup"])
    out = []
    try:
        wait_until(
            lambda: any(e.get("event") == "registered" for e in proc.events()), 60, message="registered"
        )
        for n in range(samples):
            time.sleep(random.uniform(2.0, 8.0))  # land anywhere in the worker's wait
            put = time.time()
            [task_id] = server.add([(f"pickup{n}", {"steps": 1})])
            wait_until(
                lambda task_id=task_id: received_at(proc, task_id) is not None, 120, message="picked up"
            )
            got = received_at(proc, task_id)
            assert got is not None
            out.append(got - put)
            wait_until(lambda task_id=task_id: server.done([task_id]) == 1, 60, message="pickup task done")
    finally:
        stop([proc])
    return out


def sigkill(server: Server, run: Path, workspace: Path) -> tuple[float, str]:
    [task_id] = server.add([("kill", {"steps": 40, "step_seconds": 0.5})])
    [victim] = workers(server, run, workspace, [f"{server.name}-victim"])
    wait_until(lambda: received_at(victim, task_id) is not None, 120, message="victim has the task")
    time.sleep(3)
    [rescuer] = workers(server, run, workspace, [f"{server.name}-rescuer"])
    try:
        wait_until(
            lambda: any(e.get("event") == "registered" for e in rescuer.events()), 60, message="rescuer up"
        )
        killed = time.time()
        victim.kill()
        wait_until(
            lambda: received_at(rescuer, task_id) is not None, 900, message="task back to another worker"
        )
        back = received_at(rescuer, task_id)
        assert back is not None
        wait_until(lambda: completed_message(rescuer, task_id) is not None, 120, message="rescued task done")
        return back - killed, str(completed_message(rescuer, task_id))
    finally:
        stop([rescuer, victim])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.marcus.figures", description=__doc__)
    parser.add_argument(
        "--skip-kill", action="store_true", help="leave out the SIGKILL figure (saves ~7 min)"
    )
    parser.add_argument("--pickup-samples", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    root = Path(tempfile.mkdtemp(prefix="marcus-figures-"))
    try:
        for name, make in (("stub", stub_server), ("marcus", marcus_server)):
            run = root / name
            run.mkdir()
            workspace = run / "ws"
            workspace.mkdir()
            server = make(run)
            try:
                res: dict[str, Any] = {"drain_20_tasks_3_workers_s": round(drain(server, run, workspace), 1)}
                lat = pickup(server, run, workspace, args.pickup_samples)
                res["pickup_latency_s"] = [round(x, 2) for x in lat]
                res["pickup_latency_median_s"] = round(statistics.median(lat), 2)
                if not args.skip_kill:
                    seconds, message = sigkill(server, run, workspace)
                    res["sigkill_task_back_after_s"] = round(seconds, 1)
                    res["sigkill_rescuer_says"] = message
            finally:
                server.stop()
            results[name] = res
            print(name, json.dumps(res), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
