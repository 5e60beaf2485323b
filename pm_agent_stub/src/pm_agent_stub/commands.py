"""The operator's commands (`status`, `load`, `add-task`, `show`, `rerun`, `resolve`): each a call
to a board through an `OperatorLink`, and what it prints.

The board is the running stub (`--url`, else `PM_AGENT_URL`, else
`http://127.0.0.1:$PM_AGENT_PORT/mcp`, with the token of `PM_AGENT_TOKEN` or
`PM_AGENT_TOKEN_FILE`), or with `--db FILE` that file served in this process. Files named on
the command line are read here, on the machine the CLI runs on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pm_agent_stub import project_folder
from pm_agent_stub.board import open_board
from pm_agent_stub.errors import BoardError
from pm_agent_stub.operator_link import OperatorError, OperatorLink, existing_board
from pm_agent_stub.project_file import ProjectFileError, ProjectSpec, load_project_file, parse_project
from pm_agent_stub.settings import load_settings
from pm_protocol import tools
from pm_protocol.endpoint import bearer_token, normalize_agent_url
from pm_protocol.limits import MAX_PROJECT_TEXT
from pm_protocol.results import LoadResult

if TYPE_CHECKING:
    from pm_agent_stub.server import PMAgentServer

STATUS_TASK_LIMIT = 200  # tasks, and agents, shown by `status` without --all
EXIT_REFUSED, EXIT_BAD_INPUT = 1, 2


class UsageError(Exception):
    """Bad input the CLI catches itself before calling anything (exit 2)."""


# ---------------------------------------------------------------------------- where the board is


def default_url() -> str:
    """PM_AGENT_URL, else the stub's own port on this machine."""
    given = os.environ.get("PM_AGENT_URL", "").strip()
    if given:
        return given
    return f"http://127.0.0.1:{os.environ.get('PM_AGENT_PORT', '').strip() or '8000'}/mcp"


def client_token() -> str | None:
    """The bearer token for the stub, by the rule workers follow too (`pm_protocol.endpoint.bearer_token`)."""
    token = os.environ.get("PM_AGENT_TOKEN", "").strip() or None
    token_file = os.environ.get("PM_AGENT_TOKEN_FILE", "").strip() or None
    try:
        return bearer_token(token, Path(token_file) if token_file else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _link(ns: argparse.Namespace, *, create: bool = False) -> OperatorLink:
    """The board the command names: `--db FILE` served in this process, else the running stub."""
    if ns.db is not None:
        return OperatorLink.on_file(load_settings().model_copy(update={"db": ns.db}), create=create)
    try:
        url = normalize_agent_url(ns.url or default_url())
    except ValueError as exc:
        raise UsageError(f"--url/PM_AGENT_URL: {exc}") from None
    return OperatorLink.over_http(url, client_token())


# ---------------------------------------------------------------------------- commands


def print_loaded(result: LoadResult) -> None:
    """What a load added, and its warnings, on stderr (`load`, the demo)."""
    print(result.message, file=sys.stderr)
    for w in result.warnings:
        print(f"warning: task '{w.task_id}': {w.warning}", file=sys.stderr)


def _project_file(file: str, *, over_http: bool) -> tuple[str, ProjectSpec, str]:
    """(text, checked spec, name for messages) of the file on this machine; checked here first, so
    a bad file is refused with its host path and nothing is sent. Over HTTP a file must also fit
    one request."""
    if file == "-":
        text, label = sys.stdin.read(), "<stdin>"
    else:
        path = Path(file).expanduser()
        label = str(path)
        if not path.is_file():
            raise UsageError(f"{label}: no such file on this machine ({path.absolute()})")
        if over_http and path.stat().st_size > MAX_PROJECT_TEXT:
            raise UsageError(_too_big(label, path.stat().st_size))
        text = ""
    try:  # the same checks the stub runs (those needing the board aside)
        spec = parse_project(text, label) if file == "-" else load_project_file(label)
    except ProjectFileError as exc:
        raise UsageError(str(exc)) from None
    if over_http:
        text = text or Path(label).read_text(encoding="utf-8")
        if len(text.encode("utf-8")) > MAX_PROJECT_TEXT:
            raise UsageError(_too_big(label, len(text.encode("utf-8"))))
    return text, spec, label


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


def load_here(server: PMAgentServer, spec: ProjectSpec, label: str) -> int:
    """A project file read and checked on this machine, loaded into the server's board with no
    request in between (`serve --project`, `load --db`), so no request-size limit; its exit code."""
    try:
        result = server.load(spec, label)
    except BoardError as exc:  # e.g. a dependency on a task that is not on the board
        print(exc.message, file=sys.stderr)
        return EXIT_BAD_INPUT
    print_loaded(result)
    return 0


async def cmd_load(ns: argparse.Namespace) -> int:
    text, spec, label = _project_file(ns.file, over_http=ns.db is None)
    text, spec, folder_notes = _default_folder(ns, text, spec, label)
    _check_create(ns)
    if ns.db is not None:
        from pm_agent_stub.server import build_server

        server = build_server(load_settings().model_copy(update={"db": ns.db}))
        try:
            code = load_here(server, spec, label)
        finally:
            server.close()
        added = code == 0
    else:
        async with _link(ns) as link:
            result = await link.call(tools.load_project, {"text": text, "source": label})
        print_loaded(result)
        code, added = 0, result.added > 0
    if added:
        for task_id, note in folder_notes:
            print(f"warning: task '{task_id}': {note}", file=sys.stderr)
    return code


def _default_folder(
    ns: argparse.Namespace, text: str, spec: ProjectSpec, label: str
) -> tuple[str, ProjectSpec, list[tuple[str, str]]]:
    """The file with the project's folder filled in where a task names none (project_folder.py),
    and the warning for each such task, printed once the load is through."""
    source = text or (Path(label).read_text(encoding="utf-8") if ns.file != "-" else "")
    try:
        filled, notes = project_folder.fill_in(source, label, ns.file, ns.default_path)
    except ProjectFileError as exc:
        raise UsageError(str(exc)) from None
    if not notes:
        return text, spec, []
    if ns.db is None and len(filled.encode("utf-8")) > MAX_PROJECT_TEXT:
        raise UsageError(_too_big(label, len(filled.encode("utf-8"))))
    return filled, parse_project(filled, label), notes


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
    async with _link(ns) as link:
        text = json.dumps(document, ensure_ascii=False)
        result = await link.call(tools.load_project, {"text": text, "source": "add-task"})
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
    from pm_agent_stub.status_report import collect

    async with _link(ns) as link:
        report = await collect(link, None if ns.all or ns.json else STATUS_TASK_LIMIT)
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

        settings = load_settings().model_copy(update={"db": ns.db})
        existing_board(settings)
        return watch(open_board(settings), Console(), ns.interval)
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
    async with _link(ns) as link:
        ctx = await link.call(tools.get_task_context, {"task_id": ns.task_id})
    if ns.json:
        json.dump(ctx.wire(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console

    from pm_agent_stub.task_view import render_task

    render_task(ctx, Console(), log_lines=ns.log)
    return 0


async def cmd_rerun(ns: argparse.Namespace) -> int:
    async with _link(ns) as link:
        arguments = {"task_id": ns.task_id, "reason": ns.reason, "dependents": ns.with_dependents}
        result = await link.call(tools.rerun_task, arguments)
    print(result.message, file=sys.stderr)
    return 0 if result.requeued else EXIT_REFUSED


async def cmd_resolve(ns: argparse.Namespace) -> int:
    async with _link(ns) as link:
        result = await link.call(tools.resolve_blocker, {"task_id": ns.task_id, "resolution": ns.resolution})
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
