"""`python -m pm_agent_stub serve|status|load|add-task|show|rerun|resolve`.

`serve` runs the stub. Every other command is an operator's call to a board:

- by default the running stub, over HTTP (`--url`, else `PM_AGENT_URL`, else
  `http://127.0.0.1:$PM_AGENT_PORT/mcp`), with the token of `PM_AGENT_TOKEN` or
  `PM_AGENT_TOKEN_FILE` — what `make load`, `make show` ... use, wherever the stub runs;
- with `--db FILE`, a board file opened in this process (offline; safe next to a running
  stub). Only `load --create` makes a new file; every other command refuses a missing one.

Files named on the command line (`load FILE`) are read here, on the machine the CLI runs
on, and their text is sent to the stub: the stub never needs to see your filesystem.
Exit codes: 0 done; 1 refused, not found or unreachable; 2 bad input (a project file or
an option the stub or the CLI refuses).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any, Final

from pm_agent_stub import project_folder
from pm_agent_stub.board import Board
from pm_agent_stub.board_access import BoardAccess, FileBoard, OperatorError
from pm_agent_stub.db import BoardFileError
from pm_agent_stub.logs import configure_logging, get_logger
from pm_agent_stub.project_file import ProjectFileError, load_project_file
from pm_agent_stub.settings import StubSettings, load_settings
from pm_protocol.endpoint import normalize_agent_url, read_token_file
from pm_protocol.limits import MAX_PROJECT_TEXT, PRIORITIES
from pm_protocol.results import LoadResult

log = get_logger("pm_agent_stub.cli")

STATUS_TASK_LIMIT = 200  # tasks, and agents, shown by `status` without --all
EXIT_REFUSED, EXIT_BAD_INPUT = 1, 2


class UsageError(Exception):
    """Bad input the CLI catches itself before calling anything (exit 2)."""


# ---------------------------------------------------------------------------- options


def _target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--url",
        help="the running stub (default: PM_AGENT_URL, else http://127.0.0.1:$PM_AGENT_PORT/mcp); "
        "token from PM_AGENT_TOKEN or PM_AGENT_TOKEN_FILE",
    )
    where.add_argument(
        "--db",
        type=Path,
        help="a board file instead, opened offline (never created, except by load --create)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pm_agent_stub",
        description="The PM Agent stub, and an operator's commands for the board it serves.",
        epilog="Commands other than serve talk to the running stub over HTTP unless given --db.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the MCP server (HTTP or stdio)")
    serve.add_argument("--host", help="bind address (PM_AGENT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (PM_AGENT_PORT, default 8000)")
    serve.add_argument("--db", type=Path, help="SQLite board file (PM_AGENT_DB)")
    serve.add_argument("--project", type=Path, help="project YAML to load at start (PM_PROJECT_FILE)")
    serve.add_argument("--transport", choices=("http", "stdio"), default="http")

    status = sub.add_parser("status", help="the board and the workers (ids shown whole)")
    _target(status)
    status.add_argument("--json", action="store_true", help="one JSON document for scripts (every task)")
    status.add_argument(
        "--all", action="store_true", help=f"every task and agent, not the first {STATUS_TASK_LIMIT} of each"
    )
    status.add_argument(
        "--watch", action="store_true", help="a live view: redraws on every change until Ctrl-C"
    )
    status.add_argument("--interval", type=float, default=1.0, help="--watch redraws at least this often (s)")

    load = sub.add_parser("load", help="add a project file's tasks to the board (idempotent by task id)")
    load.add_argument("file", help="the project file on this machine (`-` reads stdin); its text is sent")
    _target(load)
    load.add_argument("--create", action="store_true", help="with --db: create the board file if missing")
    load.add_argument(
        "--default-path",
        metavar="FOLDER",
        help="the folder (in the workspace) a task runs in when its payload names none (`path`, or "
        "`context` for docker tasks); default: the name of the folder holding FILE, e.g. `shop` for "
        "~/src/shop/fleet.yaml; `.` leaves such tasks at the top of the workspace",
    )

    add = sub.add_parser("add-task", help="add one task without writing a project file")
    add.add_argument("--id", required=True, help="task id: letters, digits and . _ : @ / -")
    add.add_argument("--name", required=True, help="what the task is, for people")
    add.add_argument("--skills", default="", help="required skills, comma-separated (who may take it)")
    add.add_argument("--priority", choices=PRIORITIES, default="medium")
    add.add_argument("--depends-on", default="", help="task ids it waits for, comma-separated")
    add.add_argument(
        "--payload", default="{}", help='what the worker gets, as a JSON object, e.g. \'{"path": "app"}\''
    )
    add.add_argument("--description", default="")
    add.add_argument("--instructions", default="")
    add.add_argument("--labels", default="", help="comma-separated")
    add.add_argument("--project", help="project name recorded with the task")
    _target(add)

    show = sub.add_parser(
        "show", help="one task: why it is blocked (with suggestions), artifacts, progress log"
    )
    show.add_argument("task_id", metavar="TASK")
    show.add_argument("--json", action="store_true", help="the task's context as JSON")
    show.add_argument(
        "--log", type=int, default=20, metavar="N", help="progress log lines to show (default 20)"
    )
    _target(show)

    rerun = sub.add_parser(
        "rerun", help="a done or blocked task back to the queue as a fresh run (history kept)"
    )
    rerun.add_argument("task_id", metavar="TASK")
    rerun.add_argument("--reason", default="", help="why, kept in the task's history")
    rerun.add_argument(
        "--with-dependents", action="store_true", help="also rerun every done or blocked task depending on it"
    )
    _target(rerun)

    resolve = sub.add_parser(
        "resolve",
        help="close a task's blockers and put it back in the queue (it resumes from its checkpoint)",
    )
    resolve.add_argument("task_id", metavar="TASK")
    resolve.add_argument("--resolution", required=True, help="what was done about it, kept in its history")
    _target(resolve)
    return p


def _serve_settings(ns: argparse.Namespace) -> StubSettings:
    settings = load_settings()
    update: dict[str, Any] = {}
    for attr, key in (("host", "host"), ("port", "port"), ("db", "db"), ("project", "project_file")):
        value = getattr(ns, attr, None)
        if value is not None:
            update[key] = value
    if "port" in update and not 0 <= update["port"] <= 65535:
        print(f"--port: must be 0-65535, got {update['port']}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)
    return settings.model_copy(update=update)


def default_url() -> str:
    """PM_AGENT_URL, else the stub's own port on this machine."""
    given = os.environ.get("PM_AGENT_URL", "").strip()
    if given:
        return given
    return f"http://127.0.0.1:{os.environ.get('PM_AGENT_PORT', '').strip() or '8000'}/mcp"


def client_token() -> str | None:
    """The bearer token for the stub: PM_AGENT_TOKEN or the file PM_AGENT_TOKEN_FILE names (not both)."""
    token = os.environ.get("PM_AGENT_TOKEN", "").strip() or None
    token_file = os.environ.get("PM_AGENT_TOKEN_FILE", "").strip() or None
    if token and token_file:
        raise UsageError("PM_AGENT_TOKEN and PM_AGENT_TOKEN_FILE are both set; set only one")
    if token_file:
        try:
            return read_token_file(Path(token_file))
        except ValueError as exc:
            raise UsageError(f"PM_AGENT_TOKEN_FILE: {exc}") from None
    return token


async def _open(ns: argparse.Namespace, *, create: bool = False) -> BoardAccess:
    if ns.db is not None:
        settings = load_settings().model_copy(update={"db": ns.db})
        return FileBoard.open(settings, create=create)
    from pm_agent_stub.remote import RemoteBoard

    try:
        url = normalize_agent_url(ns.url or default_url())
    except ValueError as exc:
        raise UsageError(f"--url/PM_AGENT_URL: {exc}") from None
    return await RemoteBoard(url, client_token()).open()


# ---------------------------------------------------------------------------- commands


def _print_load(result: LoadResult) -> None:
    print(result.message, file=sys.stderr)
    for w in result.warnings:
        print(f"warning: task '{w.task_id}': {w.warning}", file=sys.stderr)


def _read_project_text(file: str, *, over_http: bool) -> tuple[str, str]:
    """(text, name for messages) of the file on this machine; checked here first, so a bad file
    is refused with its host path and nothing is sent. Over HTTP a file must also fit one request."""
    if file == "-":
        text, label = sys.stdin.read(), "<stdin>"
    else:
        path = Path(file).expanduser()
        label = str(path)
        if not path.is_file():
            raise UsageError(f"{label}: no such file on this machine ({path.absolute()})")
        if over_http and path.stat().st_size > MAX_PROJECT_TEXT:
            raise UsageError(_too_big(label, path.stat().st_size))
        try:
            load_project_file(path)  # the same checks the stub runs (those needing the board aside)
        except ProjectFileError as exc:
            raise UsageError(str(exc)) from None
        text = path.read_text(encoding="utf-8")
    size = len(text.encode("utf-8"))
    if over_http and size > MAX_PROJECT_TEXT:
        raise UsageError(_too_big(label, size))
    return text, label


def _too_big(label: str, size: int) -> str:
    return (
        f"{label}: {size // 1024} KiB is more than the {MAX_PROJECT_TEXT // 1024} KiB one load may send; "
        "split it into several files (a task may depend on tasks already on the board), or load it "
        "offline with --db on the stub's board file"
    )


def _check_create(ns: argparse.Namespace) -> None:
    """`load --db` makes a new board file only when asked to, and says so."""
    if ns.create and ns.db is None:
        raise UsageError("--create only applies with --db (a board file)")
    if ns.db is not None and not Path(ns.db).expanduser().exists():
        if not ns.create:
            raise OperatorError(
                "board_not_found",
                f"there is no board at {ns.db}; add --create to make a new board file there",
            )
        print(f"creating a new board file at {ns.db}", file=sys.stderr)


async def cmd_load(ns: argparse.Namespace) -> int:
    text, label = _read_project_text(ns.file, over_http=ns.db is None)
    try:
        text, folder_notes = project_folder.fill_in(text, label, ns.file, ns.default_path)
    except ProjectFileError as exc:
        raise UsageError(str(exc)) from None
    if ns.db is None and len(text.encode("utf-8")) > MAX_PROJECT_TEXT:
        raise UsageError(_too_big(label, len(text.encode("utf-8"))))
    _check_create(ns)
    access = await _open(ns, create=ns.create)
    try:
        result = await access.load_text(text, label)
        _print_load(result)
    finally:
        await access.close()
    if result.added:
        for task_id, note in folder_notes:
            print(f"warning: task '{task_id}': {note}", file=sys.stderr)
    return 0


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def new_task(ns: argparse.Namespace) -> dict[str, Any]:
    """The task `add-task` describes, as a project file's task entry."""
    try:
        payload = json.loads(ns.payload)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--payload is not JSON ({exc.msg} at character {exc.pos}): {ns.payload!r}"
        ) from None
    if not isinstance(payload, dict):
        raise UsageError(f"--payload must be a JSON object ({{...}}), got {type(payload).__name__}")
    task: dict[str, Any] = {"id": ns.id, "name": ns.name, "priority": ns.priority, "payload": payload}
    for key, value in (
        ("required_skills", _csv(ns.skills)),
        ("dependencies", _csv(ns.depends_on)),
        ("labels", _csv(ns.labels)),
        ("description", ns.description),
        ("instructions", ns.instructions),
    ):
        if value:
            task[key] = value
    return task


async def cmd_add_task(ns: argparse.Namespace) -> int:
    task = new_task(ns)
    document: dict[str, Any] = {"tasks": [task]}
    if ns.project:
        document["project"] = ns.project
    access = await _open(ns)
    try:
        result = await access.load_text(json.dumps(document, ensure_ascii=False), "add-task")
    finally:
        await access.close()
    if result.skipped:
        print(
            f"task '{ns.id}' is already on the board; nothing added (`rerun {ns.id}` runs it again)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    print(f"added task '{ns.id}'", file=sys.stderr)
    for w in result.warnings:
        print(f"warning: task '{w.task_id}': {w.warning}", file=sys.stderr)
    return 0


async def cmd_status(ns: argparse.Namespace) -> int:
    from pm_agent_stub.board.views import collect

    access = await _open(ns)
    try:
        report = await collect(access, None if ns.all or ns.json else STATUS_TASK_LIMIT)
    finally:
        await access.close()
    if ns.json:
        json.dump(report.wire(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        from pm_agent_stub.status_view import render

        render(report, Console())
    return 0


def watch_status(ns: argparse.Namespace) -> int:
    """`status --watch`: the dashboard's live board (dashboard/terminal.py) until Ctrl-C, from the
    running stub's `/dashboard/api/board` or, with --db, from the board file itself."""
    if ns.json or ns.all:
        raise UsageError("--watch draws a live view; use --json/--all without --watch for one document")
    if not ns.interval > 0:
        raise UsageError(f"--interval: must be above 0, got {ns.interval}")
    from rich.console import Console

    if ns.db is not None:
        from pm_agent_stub.dashboard.terminal import watch

        local = FileBoard.open(load_settings().model_copy(update={"db": ns.db}), create=False)
        return watch(local.board, Console(), ns.interval)
    from pm_agent_stub.remote import watch_remote

    try:
        url = normalize_agent_url(ns.url or default_url())
    except ValueError as exc:
        raise UsageError(f"--url/PM_AGENT_URL: {exc}") from None
    try:
        return asyncio.run(watch_remote(url, client_token(), Console(), ns.interval))
    except KeyboardInterrupt:
        return 0


async def cmd_show(ns: argparse.Namespace) -> int:
    access = await _open(ns)
    try:
        ctx = await access.task_context(ns.task_id)
    finally:
        await access.close()
    if ns.json:
        json.dump(ctx.wire(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console

    from pm_agent_stub.task_view import render_task

    render_task(ctx, Console(), log_lines=ns.log)
    return 0


async def cmd_rerun(ns: argparse.Namespace) -> int:
    access = await _open(ns)
    try:
        result = await access.rerun(ns.task_id, ns.reason, ns.with_dependents)
    finally:
        await access.close()
    print(result.message, file=sys.stderr)
    return 0 if result.requeued else EXIT_REFUSED


async def cmd_resolve(ns: argparse.Namespace) -> int:
    access = await _open(ns)
    try:
        result = await access.resolve(ns.task_id, ns.resolution)
    finally:
        await access.close()
    print(result.message, file=sys.stderr)
    return 0


COMMANDS = {
    "status": cmd_status,
    "load": cmd_load,
    "add-task": cmd_add_task,
    "show": cmd_show,
    "rerun": cmd_rerun,
    "resolve": cmd_resolve,
}


def explain(exc: OperatorError, ns: argparse.Namespace) -> str:
    """The refusal in the CLI's terms (the stub words some codes for workers)."""
    task_id = getattr(ns, "task_id", None)
    if exc.code == "task_not_found" and task_id is not None:
        return (
            f"task '{task_id}' is not on the board; ids are case-sensitive: "
            f"`python -m pm_agent_stub status{' --db ' + str(ns.db) if ns.db else ''}` lists them whole"
        )
    return exc.message if exc.code in ("unreachable", "board_not_found", "invalid_argument") else str(exc)


# ---------------------------------------------------------------------------- serve


def _load_file(board: Board, path: Path) -> int:
    try:
        spec = load_project_file(path)
        outcome = board.load_project(spec, str(path))
    except ProjectFileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"{path}: loaded {outcome.added} new task(s), {outcome.skipped} already on the board",
        file=sys.stderr,
    )
    for task_id, warning in outcome.warnings:
        print(f"warning: task '{task_id}': {warning}", file=sys.stderr)
    return 0


def _lift_descriptor_limit() -> int:
    """Each long-poll holds a socket: lift the soft descriptor limit to the hard one.

    Docker's and many distributions' default soft limit is 1,024, which 1,000 long-polling
    agents plus the database and the listener exceed; the hard limit (the engine's, a
    compose `ulimits`, or the host's) is the real bound. Returns the soft limit now in force.
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
        return EXIT_BAD_INPUT
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


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.command == "serve":
        settings = _serve_settings(ns)
        configure_logging(settings.log_format, settings.log_level)
        try:
            return _serve(settings, ns.transport)
        except BoardFileError as exc:  # damaged or foreign board file (db.py): one line
            print(str(exc), file=sys.stderr)
            return EXIT_BAD_INPUT
    configure_logging(None, "warning")
    try:
        if ns.command == "status" and ns.watch:
            return watch_status(ns)
        return asyncio.run(COMMANDS[ns.command](ns))
    except (UsageError, BoardFileError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OperatorError as exc:
        print(explain(exc, ns), file=sys.stderr)
        refused_input = exc.code == "invalid_argument" and ns.command in ("load", "add-task")
        return EXIT_BAD_INPUT if refused_input else EXIT_REFUSED
