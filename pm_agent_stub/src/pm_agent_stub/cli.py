"""`python -m pm_agent_stub serve|status|load|resolve`.

`status`, `load` and `resolve` open the database file directly: WAL plus `BEGIN IMMEDIATE`
make that safe next to a running stub, and the stub's watcher wakes its long-pollers when
they commit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
from pathlib import Path
from typing import Any, Final

from pm_agent_stub.board import Board, open_board
from pm_agent_stub.board.views import status_report
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import configure_logging, get_logger
from pm_agent_stub.project_file import ProjectFileError, load_project_file
from pm_agent_stub.settings import StubSettings, load_settings

log = get_logger("pm_agent_stub.cli")

STATUS_TASK_LIMIT = 200  # tasks, and agents, shown by `status` without --all


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pm_agent_stub", description="PM Agent stub coordinator")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the MCP server (HTTP or stdio)")
    serve.add_argument("--host", help="bind address (PM_AGENT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (PM_AGENT_PORT, default 8000)")
    serve.add_argument("--db", type=Path, help="SQLite board file (PM_AGENT_DB)")
    serve.add_argument("--project", type=Path, help="project YAML to load at start (PM_PROJECT_FILE)")
    serve.add_argument("--transport", choices=("http", "stdio"), default="http")
    status = sub.add_parser("status", help="print the board and the workers")
    status.add_argument("--db", type=Path)
    status.add_argument("--json", action="store_true", help="one JSON document for scripts")
    status.add_argument(
        "--all", action="store_true", help=f"every task and agent, not the first {STATUS_TASK_LIMIT} of each"
    )
    status.add_argument("--watch", action="store_true", help="a live view: redraws on every change until Ctrl-C")
    status.add_argument("--interval", type=float, default=1.0, help="--watch redraws at least this often (s)")
    load = sub.add_parser("load", help="add a project file's tasks to the board (idempotent by task id)")
    load.add_argument("file", type=Path)
    load.add_argument("--db", type=Path)
    resolve = sub.add_parser("resolve", help="resolve a task's blockers and put it back in the queue")
    resolve.add_argument("task_id")
    resolve.add_argument("--resolution", required=True)
    resolve.add_argument("--db", type=Path)
    return p


def _settings(ns: argparse.Namespace) -> StubSettings:
    settings = load_settings()
    update: dict[str, Any] = {}
    for attr, key in (("host", "host"), ("port", "port"), ("db", "db"), ("project", "project_file")):
        value = getattr(ns, attr, None)
        if value is not None:
            update[key] = value
    if "port" in update and not 0 <= update["port"] <= 65535:
        print(f"--port: must be 0-65535, got {update['port']}", file=sys.stderr)
        raise SystemExit(2)
    return settings.model_copy(update=update)


def _load_file(board: Board, path: Path) -> int:
    try:
        spec = load_project_file(path)
        outcome = board.load_project(spec, str(path))
    except ProjectFileError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(
        f"{path}: loaded {outcome.added} new task(s), {outcome.skipped} already on the board",
        file=sys.stderr,
    )
    return 0


def _lift_descriptor_limit() -> int:
    """Each long-poll holds a socket: lift the soft descriptor limit to the hard one.

    Docker's and many distributions' default soft limit is 1,024, which 1,000 long-polling
    agents plus the database and the listener exceed; the hard limit (compose `ulimits`,
    or the host's) is the real bound. Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            log.warning("descriptor_limit_not_raised", soft=soft, hard=hard)
    return int(soft)


GC_FULL_EVERY: Final = 100  # generation-1 collections per full collection (CPython's default: 10)


def _tune_gc() -> None:
    """Make full garbage collections rare, and keep start-up's objects out of them.

    Each waiting long-poll holds about a thousand objects (the SDK's per-request transport,
    its streams and tasks). With 1,000 agents waiting, a full (generation 2) collection
    took 125-370 ms here and came every few seconds while polls expired and were re-asked:
    every call waited meanwhile (crowd pickup p99 207 ms, max 1.7 s; bench/README). Now a
    full collection runs at most every 100 generation-1 collections (about once a minute
    under that load; generations 0 and 1 stay as they are, under 12 ms each), and
    `gc.freeze()` moves the ~100,000 objects of start-up (modules, the app) where no
    collection looks again. Idle CPU with 1,000 waiting agents: 5.2-5.9 % -> 3.7 %.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_EVERY)


def _serve(settings: StubSettings, transport: str) -> int:
    from pm_agent_stub.server import build_server

    descriptors = _lift_descriptor_limit()

    server = build_server(settings)
    project = settings.project_file
    if project is not None and server.db.call_sync(_load_file, server.board, project) != 0:
        server.close()
        return 2
    try:
        if transport == "stdio":
            asyncio.run(_serve_stdio(server))
        else:
            import uvicorn

            from pm_agent_stub.http_app import build_http_app
            from pm_agent_stub.http_limits import uvicorn_limits

            log.info("descriptor_limit", soft=descriptors)
            app = build_http_app(server)
            _tune_gc()
            uvicorn.run(
                app,
                **uvicorn_limits(settings),
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,
                # uvloop where installed (a dependency off Windows): ~20 % less CPU per request.
                loop="auto",
                # A listen backlog that takes a whole crowd (re)connecting at once (every waiting
                # agent holds a connection: see PM_HTTP_MAX_CONNECTIONS for the cap).
                backlog=4096,
            )
    finally:
        server.close()
    return 0


async def _serve_stdio(server: Any) -> None:
    async with server.background():
        log.info("serving", transport="stdio", db=str(server.stub_settings.db))
        await server.run_stdio_async()


def _status(settings: StubSettings, as_json: bool, show_all: bool) -> int:
    limit = None if show_all or as_json else STATUS_TASK_LIMIT
    report = status_report(open_board(settings), db=str(settings.db), limit=limit)
    if as_json:
        json.dump(report.wire(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from pm_agent_stub.status_view import render

        render(report, Console())
    return 0


def _watch(settings: StubSettings, ns: argparse.Namespace) -> int:
    if ns.json or ns.all:
        print("--watch draws a live view; use --json/--all without --watch for one document", file=sys.stderr)
        return 2
    if not ns.interval > 0:
        print(f"--interval: must be above 0, got {ns.interval}", file=sys.stderr)
        return 2
    from rich.console import Console

    from pm_agent_stub.dashboard.terminal import watch

    return watch(open_board(settings), Console(), ns.interval)


def _resolve(settings: StubSettings, task_id: str, resolution: str) -> int:
    try:
        outcome = open_board(settings).resolve_blocker(task_id, resolution)
    except BoardError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(outcome.message, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    settings = _settings(ns)
    configure_logging(settings.log_format, settings.log_level)
    if ns.command == "serve":
        return _serve(settings, ns.transport)
    if ns.command == "status" and ns.watch:
        return _watch(settings, ns)
    if ns.command == "status":
        return _status(settings, ns.json, ns.all)
    if ns.command == "load":
        return _load_file(open_board(settings), ns.file)
    return _resolve(settings, ns.task_id, ns.resolution)
