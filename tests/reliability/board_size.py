"""The board's growth against a real stub, measured (issue 17, Medium 5).

    python -m tests.reliability.board_size artifacts [--count 400] [--worker] [--env PM_X=Y ...]
    python -m tests.reliability.board_size agents [--count 22000] [--env PM_X=Y ...]

`artifacts`: one task logs `count` artifacts of 256 KiB (the most one artifact may hold);
prints how many the stub kept and its first refusal, the board file's size, the HTTP body
of the dependent task's assignment and of `get_task_context` for both tasks, how long a
`ping` waited while the big context was being answered, and (`--worker`) the peak RSS of a
real testing worker handed the dependent task.

`agents`: `count` `register_agent` calls with fresh ids, one after another on one
connection (no token, the compose default); prints how many were registered and the first
refusal, the HTTP body of `list_registered_agents` (every page, if it pages) and of
`get_project_status`, and the time and output size of `python -m pm_agent_stub status`
and `status --json`.

Only tools every stub version serves are called, so running it with an older checkout's
sources first on PYTHONPATH gives the "before" figures. Times are printed, never asserted;
tests/stub/test_stub_board_size.py asserts the sizes and counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2

from pm_agent_stub.testing import StubProcess, free_port, load_tasks, run_cli, start_stub, task
from tests.reliability.rpc import post, tool_answer, tool_body

KIB = 1024
MIB = 1024 * KIB
ARTIFACT_DATA = "x" * (256 * KIB - 2)  # a JSON string of exactly 256 KiB with its quotes


class Rpc:
    """Tool calls over one HTTP connection, keeping the size of each answer's body."""

    def __init__(self, stub: StubProcess) -> None:
        self.url = stub.url
        self.http = httpx2.Client(timeout=300)
        self.last_bytes = 0

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        response = post(self.http, self.url, tool_body(name, arguments))
        self.last_bytes = len(response.content)
        return tool_answer(response)

    def close(self) -> None:
        self.http.close()


def board_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def timed_ping_during(stub: StubProcess, name: str, arguments: dict[str, Any]) -> tuple[float, int]:
    """Start `name` on one connection, ping on another while it runs: (ping seconds, its body bytes)."""
    big = Rpc(stub)
    result: dict[str, int] = {}
    started = threading.Event()

    def run() -> None:
        started.set()
        big.call(name, arguments)
        result["bytes"] = big.last_bytes

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    time.sleep(0.05)  # a measurement, not a synchronisation: let the big call reach the stub first
    pinger = Rpc(stub)
    begun = time.monotonic()
    pinger.call("ping", {})
    waited = time.monotonic() - begun
    thread.join()
    big.close()
    pinger.close()
    return waited, result["bytes"]


def measure_artifacts(stub: StubProcess, count: int, worker: bool, workdir: Path) -> dict[str, Any]:
    load_tasks(
        stub.db,
        task("producer", "blobs"),
        task("consumer", "testing", dependencies=["producer"], payload={"command": "python -c pass"}),
    )
    rpc = Rpc(stub)
    rpc.call("register_agent", {"agent_id": "producer-agent", "name": "P", "role": "r", "skills": ["blobs"]})
    assert rpc.call("request_next_task", {"agent_id": "producer-agent"})["has_task"]
    kept, refusal = 0, None
    for i in range(count):
        answer = rpc.call(
            "log_artifact",
            {
                "agent_id": "producer-agent",
                "task_id": "producer",
                "artifact_type": "blob",
                "description": f"blob {i}",
                "data": ARTIFACT_DATA,
            },
        )
        if answer["success"]:
            kept += 1
        elif refusal is None:
            refusal = answer["message"]
    rpc.call(
        "report_task_progress",
        {
            "agent_id": "producer-agent",
            "task_id": "producer",
            "status": "completed",
            "progress": 100,
            "message": "done",
        },
    )
    out: dict[str, Any] = {
        "artifacts logged": count,
        "kept": kept,
        "first refusal": refusal,
        "board file MiB": round(board_bytes(stub.db) / MIB, 1),
    }
    out["get_task_context(producer) bytes"] = _sized(rpc, "get_task_context", {"task_id": "producer"})
    waited, size = timed_ping_during(stub, "get_task_context", {"task_id": "consumer"})
    out["get_task_context(consumer) bytes"] = size
    out["ping during it, s"] = round(waited, 3)
    rpc.call(
        "register_agent", {"agent_id": "consumer-agent", "name": "C", "role": "r", "skills": ["testing"]}
    )
    begun = time.monotonic()
    offer = rpc.call("request_next_task", {"agent_id": "consumer-agent"})
    out["assignment s"] = round(time.monotonic() - begun, 3)
    out["assignment bytes"] = rpc.last_bytes
    out["dependency artifacts in it"] = len(offer["assignment"]["dependency_artifacts"])
    rpc.call("release_task", {"agent_id": "consumer-agent", "task_id": "consumer", "reason": "measured"})
    if worker:
        out["testing worker peak RSS MiB"] = _worker_peak_rss(stub, workdir)
        out["consumer status after the worker"] = rpc.call("get_task_context", {"task_id": "consumer"})[
            "task"
        ]["status"]
    rpc.close()
    return out


def _sized(rpc: Rpc, name: str, arguments: dict[str, Any]) -> int:
    rpc.call(name, arguments)
    return rpc.last_bytes


def _worker_peak_rss(stub: StubProcess, workdir: Path) -> float:
    """Run one real testing worker until it has handled one task; its peak RSS in MiB."""
    import subprocess

    (workdir / "workspace").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "LOG_", "AGENT_"))}
    env.update(
        {
            "PM_AGENT_URL": stub.url,
            "AGENT_ID": "testing-measured",
            "WORKSPACE": str(workdir / "workspace"),
            "MAX_TASKS": "1",
            "POLL_WAIT_SECONDS": "1",
            "HEALTH_DIR": str(workdir / "health"),
            "LOG_FORMAT": "json",
        }
    )
    with (workdir / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "testing_worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped by wait4; keeps Popen from waiting again
    return round(usage.ru_maxrss / KIB, 1)


def measure_agents(stub: StubProcess, count: int) -> dict[str, Any]:
    rpc = Rpc(stub)
    registered, refusal = 0, None
    begun = time.monotonic()
    for i in range(count):
        answer = rpc.call(
            "register_agent",
            {"agent_id": f"flood-{i:06d}", "name": "F", "role": "flood", "skills": ["nothing"]},
        )
        if answer["success"]:
            registered += 1
        elif refusal is None:
            refusal = answer["message"]
    out: dict[str, Any] = {
        "register_agent calls": count,
        "registered": registered,
        "first refusal": refusal,
        "flood s": round(time.monotonic() - begun, 1),
    }
    begun = time.monotonic()
    listed = rpc.call("list_registered_agents", {})
    out["list_registered_agents first page: s"] = round(time.monotonic() - begun, 3)
    out["list_registered_agents first page: bytes"] = rpc.last_bytes
    out["list_registered_agents first page: agents"] = len(listed["agents"])
    out["agent_count"] = listed["agent_count"]
    pages, seen, total_bytes = 1, len(listed["agents"]), rpc.last_bytes
    largest = rpc.last_bytes
    while listed.get("next_cursor"):
        listed = rpc.call("list_registered_agents", {"cursor": listed["next_cursor"]})
        pages, seen, total_bytes = pages + 1, seen + len(listed["agents"]), total_bytes + rpc.last_bytes
        largest = max(largest, rpc.last_bytes)
    out["every page: pages / agents / largest bytes"] = (pages, seen, largest)
    out["get_project_status bytes"] = _sized(rpc, "get_project_status", {})
    rpc.close()
    for args in (("status",), ("status", "--json")):
        begun = time.monotonic()
        done = run_cli(*args, "--db", str(stub.db), env={"COLUMNS": "120"}, timeout=600)
        out[f"{' '.join(args)}: s / bytes / exit"] = (
            round(time.monotonic() - begun, 1),
            len(done.stdout),
            done.returncode,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.board_size", description=__doc__)
    parser.add_argument("what", choices=("artifacts", "agents"))
    parser.add_argument("--count", type=int, help="artifacts to log (400) or agents to register (22000)")
    parser.add_argument(
        "--worker", action="store_true", help="also hand the dependent to a real testing worker"
    )
    parser.add_argument("--env", action="append", default=[], metavar="PM_X=Y", help="stub setting")
    ns = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in ns.env)
    with tempfile.TemporaryDirectory(prefix="board-size-") as tmp:
        stub = start_stub(Path(tmp) / "board.db", port=free_port(), env=env)
        try:
            if ns.what == "artifacts":
                out = measure_artifacts(stub, ns.count or 400, ns.worker, Path(tmp))
            else:
                out = measure_agents(stub, ns.count or 22000)
        finally:
            stub.stop()
    for key, value in out.items():
        print(f"{key}: {json.dumps(value) if isinstance(value, str) else value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
