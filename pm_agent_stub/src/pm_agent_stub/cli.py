"""`python -m pm_agent_stub serve|status|load|add-task|show|rerun|resolve`: the options, and
which command runs (serve.py serves; commands.py holds the operator's commands).

`serve` runs the stub. Every other command is an operator's call to a board:

- by default the running stub, over HTTP (`--url`, else `PM_AGENT_URL`, else
  `http://127.0.0.1:$PM_AGENT_PORT/mcp`), with the token of `PM_AGENT_TOKEN` or
  `PM_AGENT_TOKEN_FILE` — what `make load`, `make show` ... use, wherever the stub runs;
- with `--db FILE`, that board file served in this process and called through the same tool
  router in memory (operator_link.py; safe next to a running stub); `load --db` loads the file
  as `serve --project` does. Only `load --create` makes a new file; every other command
  refuses a missing one.

Files named on the command line (`load FILE`) are read here, on the machine the CLI runs
on, and their text is sent to the stub: the stub never needs to see your filesystem.
Exit codes: 0 done; 1 refused, not found or unreachable; 2 bad input (a project file or
an option the stub or the CLI refuses).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pm_agent_stub.commands import (
    COMMANDS,
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    STATUS_TASK_LIMIT,
    UsageError,
    explain,
    watch_status,
)
from pm_agent_stub.db import BoardFileError
from pm_agent_stub.logs import configure_logging
from pm_agent_stub.operator_link import OperatorError
from pm_agent_stub.settings import StubSettings, load_settings
from pm_protocol.literals import PRIORITIES

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


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.command == "serve":
        settings = _serve_settings(ns)
        configure_logging(settings.log_format, settings.log_level)
        from pm_agent_stub.serve import serve

        try:
            return serve(settings, ns.transport)
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
