"""One task's history grown by its own agent, against a real stub, measured (issue 24 item 4).

    python -m tests.reliability.task_history blockers [--count 1023] [--env PM_X=Y ...]
    python -m tests.reliability.task_history progress [--seconds 20] [--env PM_X=Y ...]
    python -m tests.reliability.task_history cost [--count 20000]

`blockers`: agent `va` blocks task `victim` with one critical blocker; then agent `sa` blocks
task `spam` and adds `count` more blockers to it, one call after another on one connection.
Prints how many the stub recorded and its first refusal, the time taken, and what the
dashboard's snapshot (`GET /dashboard/api/board`, the page's data) holds: blocker cards per
task, whether `victim`'s is among them, its size.

`progress`: one agent reports progress on its task with a 10,000-character message (the most
a message may hold), as fast as one connection goes, for `seconds`; prints the reports made,
the board file and its WAL before and after, and how many progress rows the task kept.

`cost`: what the cap costs a report: `count` `report_task_progress` calls (100-character
messages) on one task of a board in this process (no HTTP), three rounds; prints the CPU time
per call of each round (CPU, not wall time: it reads true on a busy machine). Past the cap
every report also drops the task's oldest entry.

Only tools every stub version serves are called, so running it with an older checkout's
sources first on PYTHONPATH gives the "before" figures. Times are printed, never asserted;
tests/stub/test_stub_task_history.py and tests/dashboard/test_dashboard_blockers.py assert.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pm_agent_stub.testing import StubProcess, http_get_json, load_tasks, start_stub, task
from tests.reliability.board_size import MIB, Rpc

MESSAGE = "p" * 10_000


def work_on(rpc: Rpc, agent_id: str, skill: str, task_id: str) -> None:
    rpc.call("register_agent", {"agent_id": agent_id, "name": agent_id, "role": "r", "skills": [skill]})
    offer = rpc.call("request_next_task", {"agent_id": agent_id})
    assert offer["assignment"]["task_id"] == task_id, offer


def block(rpc: Rpc, agent_id: str, task_id: str, text: str, severity: str) -> dict[str, Any]:
    return rpc.call(
        "report_blocker",
        {"agent_id": agent_id, "task_id": task_id, "blocker_description": text, "severity": severity},
    )


def measure_blockers(stub: StubProcess, count: int) -> dict[str, Any]:
    rpc = Rpc(stub)
    work_on(rpc, "va", "v", "victim")
    work_on(rpc, "sa", "s", "spam")
    assert block(rpc, "va", "victim", "the database is gone", "critical")["success"]
    assert block(rpc, "sa", "spam", "first", "low")["success"]
    recorded, refusal = 0, None
    began = time.monotonic()
    for i in range(count):
        answer = block(rpc, "sa", "spam", f"detail {i}", "low")
        if answer["success"]:
            recorded += 1
        elif refusal is None:
            refusal = answer["message"]
    seconds = time.monotonic() - began
    rpc.close()
    _, snapshot = http_get_json(f"{stub.base_url}/dashboard/api/board", timeout=30)
    cards = Counter(b["task_id"] for b in snapshot["blockers"])
    return {
        "recorded": recorded,
        "refused": count - recorded,
        "first_refusal": refusal,
        "seconds": round(seconds, 2),
        "page_cards_per_task": dict(cards),
        "victim_on_page": "victim" in cards,
        "snapshot_bytes": len(json.dumps(snapshot).encode()),
    }


def measure_progress(stub: StubProcess, seconds: float) -> dict[str, Any]:
    rpc = Rpc(stub)
    work_on(rpc, "ca", "c", "chatty")
    db, wal = stub.db, stub.db.with_name(stub.db.name + "-wal")

    def sizes() -> tuple[float, float]:
        return stub.db.stat().st_size / MIB, (wal.stat().st_size if wal.exists() else 0) / MIB

    before = sizes()
    reports = 0
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        report = {"agent_id": "ca", "task_id": "chatty", "status": "in_progress"}
        rpc.call("report_task_progress", {**report, "progress": reports % 100, "message": MESSAGE})
        reports += 1
    after = sizes()
    context = rpc.call("get_task_context", {"task_id": "chatty", "limit": 1})
    rpc.close()
    conn = sqlite3.connect(str(db))
    try:
        kept = conn.execute("SELECT count(*) FROM progress_log WHERE task_id = 'chatty'").fetchone()[0]
    finally:
        conn.close()
    return {
        "seconds": seconds,
        "reports": reports,
        "board_mib_before": round(before[0], 1),
        "wal_mib_before": round(before[1], 1),
        "board_mib_after": round(after[0], 1),
        "wal_mib_after": round(after[1], 1),
        "rows_kept": kept,
        "progress_dropped": context.get("progress_dropped"),
    }


def measure_cost(workdir: Path, count: int) -> dict[str, Any]:
    import logging

    import structlog

    from pm_agent_stub.board import Board
    from pm_agent_stub.db import connect

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    cpu = []
    for round_ in range(3):
        db = workdir / f"cost-{round_}.db"
        load_tasks(db, task("t", "s"))
        board = Board(connect(db))
        board.register_agent("a", "A", "r", ["s"])
        board.request_next_task("a")
        began = time.process_time()
        for i in range(count):
            board.report_task_progress("a", "t", "in_progress", i % 100, "m" * 100)
        cpu.append(round(1e6 * (time.process_time() - began) / count, 1))
        board.close()
    return {"reports": count, "cpu_microseconds_per_report": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.task_history")
    parser.add_argument("what", choices=("blockers", "progress", "cost"))
    parser.add_argument("--count", type=int, help="blockers: 1023, cost: 20000")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--env", action="append", default=[], help="PM_X=Y for the stub")
    ns = parser.parse_args(argv)
    env = dict(pair.split("=", 1) for pair in ns.env)
    with tempfile.TemporaryDirectory(prefix="task-history-") as tmp:
        if ns.what == "cost":
            json.dump(measure_cost(Path(tmp), ns.count or 20_000), sys.stdout, indent=2)
            print()
            return 0
        db = Path(tmp) / "board.db"
        load_tasks(db, task("victim", "v"), task("spam", "s"), task("chatty", "c"))
        stub = start_stub(db, env=env)
        try:
            found = (
                measure_blockers(stub, ns.count)
                if ns.what == "blockers"
                else measure_progress(stub, ns.seconds)
            )
        finally:
            stub.stop()
    json.dump(found, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
