"""6. Scaling of cost with work: drain time for M = 1k, 10k, 50k tasks with a fixed N.

Linear growth means a constant cost per task; a full-table scan in assignment would show
as per-task cost growing with M. Two checks besides the end-to-end drain:

- the SQL the board really runs (captured with SQLite's trace callback while one worker
  cycle — register, assignment, completion, heartbeat, status — runs on a copy of the
  M-task board) with its `EXPLAIN QUERY PLAN`; any plain `SCAN` of a big table is flagged;
- the board's own time per assignment+completion on boards of each size (in process, no
  MCP), which isolates the database from the transport.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench import drain
from bench._harness import Loader, log, start_stub, step_tasks

BIG_TABLES = (
    "tasks",
    "events",
    "progress_log",
    "task_skills",
    "task_deps",
    "agents",
    "artifacts",
    "blockers",
)


def _board(db: Path) -> Any:
    from pm_agent_stub.board import Board
    from pm_agent_stub.db import connect

    return Board(connect(db))


def build_board(db: Path, m: int) -> float:
    """A board file with M ready tasks; seconds the load took."""
    loader = Loader(db)
    try:
        t0 = time.monotonic()
        loader.load(step_tasks([f"s{i:06d}" for i in range(m)]), label=f"scaling-{m}")
        return time.monotonic() - t0
    finally:
        loader.close()


HOT = ("request_next_task", "report_task_progress", "heartbeat", "next_lease_expiry")


def query_plans(db: Path) -> list[dict[str, Any]]:
    """Every distinct statement of one worker cycle, with the call it came from, its plan, and
    the plain scans of a board-sized table in it (`SCAN t`, with or without a covering index)."""
    work = db.with_name(db.stem + "-plans.db")
    shutil.copy(db, work)
    board = _board(work)
    seen: dict[str, tuple[str, str]] = {}
    phase = [""]

    def trace(sql: str) -> None:
        if sql.split(None, 1)[0].upper() in ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH"):
            seen.setdefault(re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", " ".join(sql.split())), (phase[0], sql))

    def step(name: str, fn: Any, *args: Any) -> Any:
        phase[0] = name
        return fn(*args)

    board.conn.set_trace_callback(trace)
    step("register_agent", board.register_agent, "plan-agent", "plans", "steps", ["steps"])
    offer = step("request_next_task", board.request_next_task, "plan-agent")
    tid = offer.assignment.task_id
    step(
        "report_task_progress",
        board.report_task_progress,
        "plan-agent",
        tid,
        "in_progress",
        50,
        "half",
        {"next_step": 1},
    )
    step("heartbeat", board.heartbeat, "plan-agent")
    step("report_task_progress", board.report_task_progress, "plan-agent", tid, "completed", 100, "done")
    step("next_lease_expiry", board.next_lease_expiry)
    step("get_project_status", board.get_project_status)
    board.conn.set_trace_callback(None)
    out = []
    for shape, (call, sql) in seen.items():
        try:
            plan = [r[3] for r in board.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        except sqlite3.Error as exc:
            plan = [f"(no plan: {exc})"]
        scans = []
        for line in plan:
            m = re.match(r"SCAN (\w+)", line)
            if m and m.group(1) in BIG_TABLES and m.group(1) != "agents":
                scans.append(line)
        out.append(
            {
                "call": call,
                "hot_path": call in HOT,
                "sql": shape if len(shape) < 400 else shape[:400] + "…",
                "plan": plan,
                "full_scan": scans,
            }
        )
    board.conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(work) + suffix).unlink(missing_ok=True)
    return out


def board_cost(db: Path, cycles: int) -> dict[str, Any]:
    """Board-only time (µs) per assignment + completion on this board (no MCP, no HTTP)."""
    work = db.with_name(db.stem + "-cost.db")
    shutil.copy(db, work)
    board = _board(work)
    board.register_agent("cost-agent", "cost", "steps", ["steps"])
    assign: list[float] = []
    complete: list[float] = []
    for _ in range(cycles):
        t0 = time.perf_counter()
        offer = board.request_next_task("cost-agent")
        t1 = time.perf_counter()
        if offer.assignment is None:
            break
        board.report_task_progress("cost-agent", offer.assignment.task_id, "completed", 100, "done")
        t2 = time.perf_counter()
        assign.append(t1 - t0)
        complete.append(t2 - t1)
    board.conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(work) + suffix).unlink(missing_ok=True)
    assign.sort()
    complete.sort()
    return {
        "cycles": len(assign),
        "assign_us_median": round(1e6 * assign[len(assign) // 2], 1) if assign else None,
        "complete_us_median": round(1e6 * complete[len(complete) // 2], 1) if complete else None,
    }


def run(workdir: Path, sizes: list[int], n: int, cycles: int = 300) -> dict[str, Any]:
    rows = []
    plans: list[dict[str, Any]] = []
    for m in sizes:
        wd = workdir / f"scaling-{m}"
        probe_db = wd / "probe" / "board.db"
        probe_db.parent.mkdir(parents=True, exist_ok=True)
        build_board(probe_db, m)
        cost = board_cost(probe_db, min(cycles, m))
        if m == max(sizes):
            plans = query_plans(probe_db)
        stub = start_stub(wd)
        try:
            row = drain.drain(stub, n, m, wd, label=f"s{m}", drain_timeout=max(120.0, m / 20.0))
        finally:
            stub.stop()
        row["board_cost"] = cost
        row["ms_per_task"] = (
            round(1000 * row["drain_seconds"] / row["completed"], 3) if row["completed"] else None
        )
        rows.append(row)
        log(
            f"scaling M={m}: {row['drain_seconds']} s, {row['ms_per_task']} ms/task, board "
            f"{cost['assign_us_median']}+{cost['complete_us_median']} µs/cycle"
        )
    base = rows[0]["ms_per_task"] if rows and rows[0]["ms_per_task"] else None
    for row in rows:
        row["per_task_vs_smallest"] = (
            round(row["ms_per_task"] / base, 3) if base and row["ms_per_task"] else None
        )
    return {
        "workers": n,
        "rows": rows,
        "query_plans_on_largest": plans,
        "full_scans": [p for p in plans if p["full_scan"]],
        "full_scans_on_hot_path": [p for p in plans if p["full_scan"] and p["hot_path"]],
    }
