"""Profile the stub under a drain: the stub process runs under pyinstrument (wall-clock
sampling of its event-loop thread) while N step workers drain M no-op tasks. The board's
own work runs on the board thread (pm_agent_stub/board_thread.py), which pyinstrument does
not sample: its share comes from /proc per-thread CPU time (`stub_thread_ms_per_call`).

The session is reduced to two views: self time per function (top entries) and self time
per package (the MCP SDK and its HTTP stack vs pydantic vs the stub's own board code vs
SQLite vs logging), with idle time (the event loop waiting in `select`) kept apart so the
shares are shares of the work the stub did.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import drain, profile_shares
from bench._harness import log, start_stub, stop_process

# Inclusive time of these frames splits a request into "the tool's own work" and the rest
# (the SDK's JSON-RPC/HTTP handling around it).
INCLUSIVE: tuple[tuple[str, str, str], ...] = (
    ("ToolRouter.call", "call", "pm_agent_stub/tools.py"),
    ("hand-off to the board thread (BoardThread.submit)", "submit", "pm_agent_stub/board_thread.py"),
    ("argument validation (pydantic)", "model_validate", "pydantic/main.py"),
    ("structlog event lines", "meth", "structlog/_native.py"),
    ("socket.send", "socket.send", ""),
    ("pm_worker: PMClient.call (typed call, retries)", "call", "pm_worker/client.py"),
    ("pm_worker: Connection.call", "call", "pm_worker/connection.py"),
    ("pm_worker: Worker._handle (one task, incl. its completion call)", "_handle", "pm_worker/worker.py"),
)

PACKAGES: tuple[tuple[str, str], ...] = (
    ("/pm_agent_stub/", "pm_agent_stub (stub code)"),
    ("/pm_worker/", "pm_worker (worker package)"),
    ("/httpx2/", "httpx2 / httpcore2 (SDK client HTTP)"),
    ("/httpcore2/", "httpx2 / httpcore2 (SDK client HTTP)"),
    ("/mcp/", "mcp SDK"),
    ("/mcp_types/", "mcp SDK"),
    ("/starlette/", "starlette"),
    ("/sse_starlette/", "starlette"),
    ("/uvicorn/", "uvicorn"),
    ("/h11/", "h11 (HTTP/1.1 parser)"),
    ("/httptools/", "uvicorn / h11"),
    ("/pydantic/", "pydantic"),
    ("/pydantic_core/", "pydantic"),
    ("/anyio/", "anyio"),
    ("/structlog/", "structlog (logging)"),
    ("/logging/", "stdlib logging"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/sqlite3/", "sqlite3"),
    ("/jsonschema", "jsonschema"),
)


def _package(path: str) -> str:
    for needle, name in PACKAGES:
        if needle in path:
            return name
    if "site-packages" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    return "other (stdlib / builtins)"


def summarise(
    session_path: Path,
    top: int = 25,
    serving: tuple[str, str] = ("run", "uvicorn/main.py"),
    parts: tuple[tuple[str, str], ...] = profile_shares.STUB_PARTS,
    handoff: bool = True,
) -> dict[str, Any]:
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    root = session.root_frame()
    loop_frame = _find(root, *serving) if root is not None else None
    if loop_frame is not None:  # leave out start-up imports: only the serving loop counts
        root = loop_frame
    self_time: dict[tuple[str, str, int], float] = defaultdict(float)
    by_pkg: dict[str, float] = defaultdict(float)
    idle = 0.0

    def walk(frame: Any) -> None:
        nonlocal idle
        if frame.is_synthetic:  # "[self]", "[await]": their time belongs to the parent
            return
        own = frame.time - sum(c.time for c in frame.children if not c.is_synthetic)
        name = frame.function or "?"
        path = frame.file_path or ""
        if own > 0:
            if profile_shares.is_idle(name, path):
                idle += own
            else:
                self_time[(name, path, frame.line_no or 0)] += own
                by_pkg[_package(path)] += own
        for child in frame.children:
            walk(child)

    if root is not None:
        walk(root)
    inclusive = {label: round(_inclusive(root, fn, path), 3) for label, fn, path in INCLUSIVE} if root else {}
    inclusive = {k: v for k, v in inclusive.items() if v}
    busy = sum(self_time.values())
    total = busy + idle
    entries = sorted(self_time.items(), key=lambda kv: kv[1], reverse=True)[:top]

    def short(path: str) -> str:
        if "site-packages/" in path:
            return path.split("site-packages/", 1)[1]
        if "/src/" in path:
            return path.split("/src/", 1)[1]
        return path.rsplit("/lib/", 1)[-1]

    return {
        "parts": profile_shares.shares(profile_shares.split_session(root, parts, handoff)),
        "sampled_seconds": round(total, 2),
        "busy_seconds": round(busy, 2),
        "idle_seconds": round(idle, 2),
        "inclusive_seconds": inclusive,
        "by_package": [
            {"package": k, "seconds": round(v, 3), "share_of_busy": round(v / busy, 3) if busy else None}
            for k, v in sorted(by_pkg.items(), key=lambda kv: kv[1], reverse=True)
        ],
        "top_self": [
            {
                "function": f"{name} ({short(path)}:{line})",
                "seconds": round(t, 3),
                "share_of_busy": round(t / busy, 3) if busy else None,
            }
            for (name, path, line), t in entries
        ],
    }


def _find(frame: Any, function: str, path_part: str) -> Any:
    if frame.function == function and path_part in (frame.file_path or ""):
        return frame
    for child in frame.children:
        hit = _find(child, function, path_part)
        if hit is not None:
            return hit
    return None


def _inclusive(frame: Any, function: str, path_part: str) -> float:
    """Total time of frames of `function` (outermost occurrences only)."""
    if frame.function == function and path_part in (frame.file_path or ""):
        return float(frame.time)
    return sum(_inclusive(c, function, path_part) for c in frame.children)


def run(workdir: Path, n: int, m: int, results_dir: Path) -> dict[str, Any]:
    if importlib.util.find_spec("pyinstrument") is None:
        log("profile: pyinstrument is not installed (uv sync --group bench); skipped")
        return {"skipped": "pyinstrument not installed"}
    wd = workdir / "profile"
    session_path = wd / "stub.pyisession"
    wrap = ("-m", "pyinstrument", "-i", "0.001", "-r", "pyisession", "-o", str(session_path))
    stub = start_stub(wd, wrap=wrap)
    try:
        row = drain.drain(stub, n, m, wd, label="p")
    finally:
        # SIGINT: uvicorn re-raises the signal it caught after its graceful shutdown; SIGINT
        # becomes KeyboardInterrupt, after which pyinstrument still writes the session.
        code = stop_process(stub.proc, timeout=30.0, sig=signal.SIGINT)
    if not session_path.exists():
        log(f"profile: no session written (stub exit {code})")
        return {"skipped": f"no pyinstrument session (stub exit {code})", "drain": row}
    summary = summarise(session_path)
    _tree(session_path, results_dir / "profile_tree.txt")
    log(
        f"profile: busy {summary['busy_seconds']} s of {summary['sampled_seconds']} s; top package "
        f"{summary['by_package'][0] if summary['by_package'] else None}"
    )
    out: dict[str, Any] = {"workers": n, "tasks": m, "drain": row, **summary}
    out["stub_parts"] = summary.pop("parts")

    # The other end of each call: one worker (pm_worker + the SDK client) under the profiler.
    wsession = wd / "worker.pyisession"
    stub = start_stub(wd / "worker-side")
    try:
        wrow = drain.drain(
            stub,
            1,
            max(10, m // 3),
            wd / "worker-side",
            label="w",
            worker_wrap=("-m", "pyinstrument", "-i", "0.001", "-r", "pyisession", "-o", str(wsession)),
        )
    finally:
        stub.stop()
    if wsession.exists():
        wsum = summarise(
            wsession, serving=("run", "asyncio/runners.py"), parts=profile_shares.WORKER_PARTS, handoff=False
        )
        _tree(wsession, results_dir / "profile_worker_tree.txt")
        out["worker"] = {"tasks": wrow["tasks"], "drain": wrow, **wsum}
    # The board thread's own work per task, alone (pyinstrument samples only the event loop).
    out["board_alone"] = profile_shares.board_alone(wd / "alone", max(20, min(m, 1000)))
    out["per_task"] = profile_shares.per_task(out)
    return out


def _tree(session_path: Path, target: Path) -> None:
    try:
        from pyinstrument.renderers import ConsoleRenderer
        from pyinstrument.session import Session

        text = ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=True).render(
            Session.load(str(session_path))
        )
        target.write_text(text)
    except Exception as exc:  # the tree is a convenience; the summary is the result
        print(f"profile tree not rendered: {exc}", file=sys.stderr)
