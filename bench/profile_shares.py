"""Where a task's CPU goes, in the parts issue 26 names: the stub's HTTP stack, the MCP SDK,
the hand-off to the board thread, our code, and SQLite; the worker's SDK client, its log
lines and pm_worker.

Two sources, put together per task (a no-op task is two MCP calls):
- the pyinstrument sessions of bench/profile.py (the stub's event-loop thread under a
  drain; one worker alone). Each sample goes to one part: to the hand-off if any frame
  above it is board_thread.py's, otherwise by the package of its innermost Python frame
  (C builtins count for the Python code that called them);
- the board alone (`board_alone`): the work the board thread does per task —
  `poll_next_task` + `report_task_progress(completed)` on a real board file, in this
  process under pyinstrument, with every SQL statement counted (`set_trace_callback`).
  Its SQLite share (time inside sqlite3's C calls) splits the board thread's CPU (/proc)
  into SQLite and our board code.

Wall-clock sampling on a busy machine charges preempted time to the code that was running;
the CPU per call (from /proc) is what the shares are applied to.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HANDOFF_FILE = "pm_agent_stub/board_thread.py"
STUB_PARTS: tuple[tuple[str, str], ...] = (
    ("/uvicorn/", "HTTP stack (uvicorn, h11, starlette)"),
    ("/h11/", "HTTP stack (uvicorn, h11, starlette)"),
    ("/httptools/", "HTTP stack (uvicorn, h11, starlette)"),
    ("/starlette/", "HTTP stack (uvicorn, h11, starlette)"),
    ("/sse_starlette/", "HTTP stack (uvicorn, h11, starlette)"),
    ("/mcp/", "MCP SDK"),
    ("/mcp_types/", "MCP SDK"),
    ("/pm_agent_stub/", "our code (pm_agent_stub, pm_protocol)"),
    ("/pm_protocol/", "our code (pm_agent_stub, pm_protocol)"),
    ("/pydantic", "pydantic (validation, models)"),
    ("/anyio/", "event loop (asyncio, anyio)"),
    ("/asyncio/", "event loop (asyncio, anyio)"),
    ("/uvloop/", "event loop (asyncio, anyio)"),
    ("/sniffio/", "event loop (asyncio, anyio)"),
    ("/json/", "JSON"),
    ("/structlog/", "logging"),
    ("/logging/", "logging"),
)
WORKER_PARTS: tuple[tuple[str, str], ...] = (
    ("/httpx2/", "SDK client HTTP (httpx2, httpcore2, h11)"),
    ("/httpcore2/", "SDK client HTTP (httpx2, httpcore2, h11)"),
    ("/h11/", "SDK client HTTP (httpx2, httpcore2, h11)"),
    ("/mcp/", "MCP SDK"),
    ("/mcp_types/", "MCP SDK"),
    ("/pm_worker/", "our code (pm_worker, pm_protocol, the step worker)"),
    ("/pm_protocol/", "our code (pm_worker, pm_protocol, the step worker)"),
    ("step_worker.py", "our code (pm_worker, pm_protocol, the step worker)"),
    ("/structlog/", "logging (per-task lines)"),
    ("/logging/", "logging (per-task lines)"),
    ("/pydantic", "pydantic (validation, models)"),
    ("/anyio/", "event loop (asyncio, anyio)"),
    ("/asyncio/", "event loop (asyncio, anyio)"),
    ("/uvloop/", "event loop (asyncio, anyio)"),
    ("/sniffio/", "event loop (asyncio, anyio)"),
    ("/json/", "JSON"),
)
IDLE = {"select", "poll", "epoll.poll", "select.epoll.poll", "epoll_wait"}
SEND = "send: the write that wakes the peer (preemption on a busy machine lands here)"


def is_idle(name: str, path: str) -> bool:
    """The event loop waiting (epoll), not working; uvloop waits inside the runner's own time."""
    if name in IDLE and (path in ("", "<built-in>") or "selectors" in path or "asyncio" in path):
        return True
    return name == "run" and path.endswith("asyncio/runners.py")


def _is_send(name: str, path: str) -> bool:
    return name == "socket.send" or (name == "send" and path.endswith("uvicorn/protocols/http/h11_impl.py"))


def _python(path: str) -> bool:
    return bool(path) and not path.startswith("<")


def _part(path: str, parts: tuple[tuple[str, str], ...]) -> str:
    for needle, name in parts:
        if needle in path:
            return name
    return "other"


def split_session(root: Any, parts: tuple[tuple[str, str], ...], handoff: bool) -> dict[str, float]:
    """Busy seconds of a pyinstrument frame tree by part (idle waits left out)."""
    out: dict[str, float] = defaultdict(float)

    def walk(frame: Any, inherited: str, in_handoff: bool) -> None:
        if frame.is_synthetic:
            return
        path = frame.file_path or ""
        name = frame.function or "?"
        in_handoff = in_handoff or (handoff and path.endswith(HANDOFF_FILE))
        part = _part(path, parts) if _python(path) else inherited
        own = frame.time - sum(c.time for c in frame.children if not c.is_synthetic)
        if own > 0 and not is_idle(name, path):
            out["board-thread hand-off" if in_handoff else SEND if _is_send(name, path) else part] += own
        for child in frame.children:
            walk(child, part, in_handoff)

    if root is not None:
        walk(root, "other", False)
    return dict(out)


def shares(seconds: dict[str, float]) -> dict[str, float]:
    busy = sum(seconds.values()) or 1.0
    return {k: round(v / busy, 3) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])}


def board_alone(workdir: Path, tasks: int) -> dict[str, Any]:
    """The board thread's work per task, alone in this process: time, SQLite share, statements."""
    from pyinstrument import Profiler

    from pm_agent_stub.board import Board
    from pm_agent_stub.db import connect
    from pm_agent_stub.project_file import ProjectSpec

    db = workdir / "board-alone.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(db)
    board = Board(conn)
    try:
        board.register_agent("alone", "alone", "steps", ["steps"])
        ids = [f"alone-{i:06d}" for i in range(tasks)]
        spec = ProjectSpec.model_validate(
            {"project": "alone", "tasks": [{"id": t, "name": t, "required_skills": ["steps"]} for t in ids]}
        )
        board.load_project(spec, "alone")
        statements = 0

        def count(_sql: str) -> None:
            nonlocal statements
            statements += 1

        conn.set_trace_callback(count)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        c0, w0 = time.process_time(), time.perf_counter()
        profiler.start()
        done = 0
        for _ in ids:
            offer = board.poll_next_task("alone").offer
            if offer.assignment is None:
                break
            board.report_task_progress("alone", offer.assignment.task_id, "completed", 100, "done")
            done += 1
        profiler.stop()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        conn.set_trace_callback(None)
    finally:
        board.close()
    sqlite = 0.0
    total = 0.0

    def walk(frame: Any) -> None:
        nonlocal sqlite, total
        if frame.is_synthetic:
            return
        own = frame.time - sum(c.time for c in frame.children if not c.is_synthetic)
        total += own
        if not _python(frame.file_path or "") and _is_sqlite(frame):
            sqlite += own
        for child in frame.children:
            walk(child)

    session_root = profiler.last_session.root_frame() if profiler.last_session else None
    if session_root is not None:
        walk(session_root)
    return {
        "tasks": done,
        "cpu_us_per_task": round(1e6 * cpu / done, 1) if done else None,
        "wall_us_per_task": round(1e6 * wall / done, 1) if done else None,
        "statements_per_task": round(statements / done, 2) if done else None,
        "sqlite_share": round(sqlite / total, 3) if total else None,
    }


def _is_sqlite(frame: Any) -> bool:
    """A C call into sqlite3: pyinstrument names builtins `Connection.execute`, `Cursor.fetchone` ..."""
    return str(frame.function or "").split(".", 1)[0] in ("Connection", "Cursor")


def per_task(profile: dict[str, Any]) -> dict[str, Any]:
    """The stub's and the worker's CPU per task (ms), split into parts, from bench/profile.py's section."""
    drain = profile.get("drain", {})
    calls = drain.get("calls_per_task") or 2.0
    threads = drain.get("stub_thread_ms_per_call") or {}
    loop_ms = (threads.get("event_loop") or 0.0) * calls
    board_ms = (threads.get("board") or 0.0) * calls
    other_ms = (threads.get("other_threads") or 0.0) * calls
    stub: dict[str, float] = {k: round(v * loop_ms, 3) for k, v in (profile.get("stub_parts") or {}).items()}
    alone = profile.get("board_alone") or {}
    sql = alone.get("sqlite_share")
    if sql is not None:
        stub["SQLite (board thread)"] = round(sql * board_ms, 3)
        stub["our board code (board thread)"] = round((1 - sql) * board_ms, 3)
    else:
        stub["board thread (SQLite + our board code)"] = round(board_ms, 3)
    stub["other threads"] = round(other_ms, 3)
    stub_total = loop_ms + board_ms + other_ms
    worker_ms = (drain.get("workers_cpu_ms_per_call") or 0.0) * calls
    wshares = (profile.get("worker") or {}).get("parts") or {}
    return {
        "calls_per_task": calls,
        "stub_ms_per_task": round(stub_total, 3),
        "stub": {
            k: {"ms": v, "share": round(v / stub_total, 3) if stub_total else None} for k, v in stub.items()
        },
        "worker_ms_per_task": round(worker_ms, 3),
        "worker": {k: {"ms": round(v * worker_ms, 3), "share": v} for k, v in wshares.items()},
    }


def markdown(profile: dict[str, Any]) -> list[str]:
    t = profile.get("per_task")
    if not t:
        return []
    alone = profile.get("board_alone") or {}
    lines = [
        "## CPU per task, by part",
        "",
        f"A no-op task is {json.dumps(t['calls_per_task'])} MCP calls. The stub: {t['stub_ms_per_task']} ms of CPU "
        "per task (/proc, the profiled drain), split by the event loop's samples and, for the board "
        f"thread, by the board alone ({alone.get('cpu_us_per_task')} µs of CPU per task in-process, "
        f"{alone.get('statements_per_task')} SQL statements per task, SQLite "
        f"{round(100 * (alone.get('sqlite_share') or 0))} % of it):",
        "",
        "| stub part | ms per task | share |",
        "|---|---:|---:|",
        *[f"| {k} | {v['ms']:.3f} | {100 * (v['share'] or 0):.1f} % |" for k, v in t["stub"].items()],
        "",
        f"One worker: {t['worker_ms_per_task']} ms of CPU per task (the profiled drain's workers), split by "
        "the worker profile's samples:",
        "",
        "| worker part | ms per task | share |",
        "|---|---:|---:|",
        *[f"| {k} | {v['ms']:.3f} | {100 * v['share']:.1f} % |" for k, v in t["worker"].items()],
        "",
    ]
    return lines
