"""The stub's tool table: `pm_protocol.tools.TOOLS` (names, argument models, descriptions)
bound to the stub's handlers, plus one `call` that never raises.

Handlers return `pm_protocol.results` models; `call` turns them into JSON (`.wire()`) in
one place. Every result is one JSON object, as `content[0].text` and as
`structured_content`; failures carry `ErrorResult` (`{"success": false, "error": code,
"message": ...}`) with `is_error` set.

Every handler that touches the board runs it on the board thread (board_thread.py) and
awaits the answer; `ping` never touches the board, so it answers even while the database
is locked. `request_next_task` with `wait_seconds` long-polls through the notifier
(notify.py), which wakes it only when a task it can take became offerable.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import mcp.types as mcp_types
from pydantic import ValidationError

from pm_agent_stub.board import UNSET, Board
from pm_agent_stub.board.board import no_task, parsed_project
from pm_agent_stub.board_thread import BoardThread
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import get_logger
from pm_agent_stub.notify import Notifier, Waiter
from pm_protocol import args as a
from pm_protocol import results as r
from pm_protocol.errors import ErrorCode, ErrorResult
from pm_protocol.limits import dumps
from pm_protocol.results import WireModel
from pm_protocol.tools import TOOLS, Tool

log = get_logger("pm_agent_stub.tools")

Handler = Callable[[Any, Any], Awaitable[WireModel]]


def _disconnect_waiter(request: Any) -> Callable[[], Awaitable[None]] | None:
    """For an HTTP request: a coroutine factory that returns when the client disconnects."""
    receive = getattr(request, "receive", None)
    if receive is None:
        return None

    async def wait_for_disconnect() -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                request._is_disconnected = True  # Starlette's own flag, read by _is_gone
                return

    return wait_for_disconnect


def _is_gone(request: Any) -> bool:
    return bool(getattr(request, "_is_disconnected", False))


@dataclass(frozen=True)
class ToolSpec:
    """A tool of `pm_protocol.tools.TOOLS` bound to the stub's handler for it."""

    tool: Tool
    handler: Handler

    @property
    def name(self) -> str:
        return self.tool.name


def result(obj: dict[str, Any], *, is_error: bool = False) -> mcp_types.CallToolResult:
    """The one result shape: JSON text and the same object as structured content."""
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=dumps(obj))],
        structured_content=obj,
        is_error=is_error,
    )


def error(code: ErrorCode, message: str) -> mcp_types.CallToolResult:
    return result(ErrorResult(error=code, message=message).model_dump(mode="json"), is_error=True)


def _usage(tool: Tool) -> str:
    parts = []
    for fname, finfo in tool.args.model_fields.items():
        optional = "" if finfo.is_required() else " (optional)"
        parts.append(f"{fname}{optional}: {a.HINTS.get(fname, 'see the input schema')}")
    return f"{tool.name} takes " + ("; ".join(parts) if parts else "no arguments") + "."


def _invalid(tool: Tool, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        field = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        if err["type"] == "missing":
            problems.append(f"argument '{field}' is missing")
        elif err["type"] == "extra_forbidden":
            problems.append(f"argument '{field}' is not accepted")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"argument '{field}': {msg} (got {type(err.get('input')).__name__})")
    return f"{tool.name}: " + "; ".join(problems) + ". " + _usage(tool)


class ToolRouter:
    """Routes each MCP tool call to the board: validates it, runs its handler, wraps the answer.

    (The llm worker's `Toolbox` is another thing: the tools a model may call.)
    """

    def __init__(self, board: Board, db: BoardThread, notifier: Notifier, started_at: float) -> None:
        self.board = board
        self.db = db
        self.notifier = notifier
        self.started_at = started_at
        handlers = self._handlers()
        missing = [t.name for t in TOOLS if t.name not in handlers]
        extra = sorted(set(handlers) - {t.name for t in TOOLS})
        if missing or extra:
            raise RuntimeError(
                f"stub handlers out of step with pm_protocol.TOOLS: missing {missing}, extra {extra}"
            )
        self.specs: Final[dict[str, ToolSpec]] = {t.name: ToolSpec(t, handlers[t.name]) for t in TOOLS}
        self._tools: list[mcp_types.Tool] | None = None
        self._polls: dict[str, list[tuple[asyncio.Event, Waiter]]] = {}

    def _handlers(self) -> dict[str, Handler]:
        """The stub's answer to each tool of `pm_protocol.TOOLS`, by name."""
        b = self.board
        sync = self._on_board
        return {
            "register_agent": sync(lambda x: b.register_agent(x.agent_id, x.name, x.role, x.skills)),
            "request_next_task": self._request_next_task,
            "report_task_progress": sync(self._report_task_progress),
            "report_blocker": sync(
                lambda x: b.report_blocker(x.agent_id, x.task_id, x.blocker_description, x.severity)
            ),
            "get_project_status": sync(lambda _: b.get_project_status()),
            "get_agent_status": sync(lambda x: b.get_agent_status(x.agent_id)),
            "list_registered_agents": sync(lambda x: b.list_registered_agents(x.limit, x.cursor)),
            "ping": self._here(self._ping),
            "heartbeat": sync(lambda x: b.heartbeat(x.agent_id)),
            "release_task": sync(lambda x: b.release_task(x.agent_id, x.task_id, x.reason, x.count_attempt)),
            "log_artifact": sync(
                lambda x: b.log_artifact(
                    x.agent_id, x.task_id, x.artifact_type, x.description, x.location, x.data
                )
            ),
            "get_task_context": sync(lambda x: b.get_task_context(x.task_id, x.limit, x.cursor)),
            "get_artifact": sync(lambda x: b.get_artifact(x.artifact_id)),
            "deregister_agent": sync(lambda x: b.deregister_agent(x.agent_id)),
            "resolve_blocker": sync(lambda x: b.resolve_blocker(x.task_id, x.resolution)),
            "load_project": self._load_project,
            "list_tasks": sync(lambda x: b.list_tasks(x.limit, x.cursor)),
            "rerun_task": sync(lambda x: b.rerun_task(x.task_id, x.reason, x.dependents)),
        }

    def _on_board(self, fn: Callable[[Any], WireModel]) -> Handler:
        """A handler that runs `fn(args)` on the board thread."""
        db = self.db

        async def handler(x: Any, request: Any = None) -> WireModel:
            return await db.call(fn, x)

        return handler

    async def _load_project(self, x: a.LoadProjectArgs, request: Any = None) -> r.LoadResult:
        """Parse the file off the board thread (1 MB of YAML takes ~1.2 s here, which every
        board call would otherwise wait out), then load it on the board thread."""
        spec = await asyncio.to_thread(parsed_project, x.text, x.source)
        return await self.db.call(self.board.load_spec, spec, x.source)

    @staticmethod
    def _here(fn: Callable[[Any], WireModel]) -> Handler:
        """A handler that never touches the board: answered on the event loop."""

        async def handler(x: Any, request: Any = None) -> WireModel:
            return fn(x)

        return handler

    def _supersede(self, agent_id: str) -> None:
        """End this agent's pending long-polls: a newer call means the old caller is gone."""
        for ended, waiter in self._polls.pop(agent_id, []):
            ended.set()
            self.notifier.interrupt(waiter)

    async def _request_next_task(self, x: a.RequestNextTaskArgs, request: Any = None) -> r.TaskOffer:
        """Answer at once, or long-poll; an abandoned poll must never be handed a task.

        A poll ends without assigning when the same agent sends another call (a stopping
        worker cancels its poll, then heartbeats or releases) or when its HTTP client
        disconnects; otherwise a wake-up would assign a task to an agent that has left. A
        poll cancelled while its look was handing it a task releases that task at once.
        A poll that runs out of time without a wake-up answers without another look: had
        anything it can take become offerable, it would have been woken.
        """
        deadline = time.monotonic() + x.wait_seconds
        ended = asyncio.Event()
        waiter = self.notifier.enter(x.agent_id)
        poll_entry = (ended, waiter)
        self._polls.setdefault(x.agent_id, []).append(poll_entry)
        answered = False
        try:
            while True:
                poll = await self.notifier.look(waiter)
                remaining = deadline - time.monotonic()
                if poll.offer.has_task or remaining <= 0:
                    answered = True
                    return poll.offer
                woken = await self.notifier.sleep(
                    waiter, remaining, ended, disconnected=_disconnect_waiter(request)
                )
                if ended.is_set() or _is_gone(request):
                    log.info("long_poll_abandoned", agent_id=x.agent_id)
                    answered = True
                    return r.TaskOffer(
                        success=True,
                        has_task=False,
                        message="This long-poll was superseded by a newer call from the same agent "
                        "(or its client went away); no task was assigned to it.",
                        retry_after_seconds=0,
                    )
                if not woken:
                    answered = True
                    return no_task(x.agent_id)
        except asyncio.CancelledError:
            if not answered:
                self.notifier.give_back(waiter)
            raise
        finally:
            self.notifier.leave(waiter)
            polls = self._polls.get(x.agent_id)
            if polls is not None and poll_entry in polls:
                polls.remove(poll_entry)
                if not polls:
                    del self._polls[x.agent_id]

    def _report_task_progress(self, x: a.ReportTaskProgressArgs) -> r.ProgressAck:
        checkpoint = x.checkpoint if "checkpoint" in x.model_fields_set else UNSET
        return self.board.report_task_progress(
            x.agent_id, x.task_id, x.status, x.progress, x.message, checkpoint
        )

    def _ping(self, x: a.PingArgs) -> r.Pong:
        return r.Pong(
            success=True,
            pong=True,
            status="online",
            uptime_seconds=round(time.time() - self.started_at, 3),
            echo=x.echo,
        )

    def list_tools(self) -> list[mcp_types.Tool]:
        # Built once: generating the 13 JSON schemas costs ~10 ms of the event loop, and every
        # client connection asks (the SDK client fetches tools/list to learn output schemas).
        if self._tools is None:
            self._tools = [
                mcp_types.Tool(
                    name=t.name, description=t.description, input_schema=t.args.model_json_schema()
                )
                for t in TOOLS
            ]
        return list(self._tools)

    async def call(
        self, name: str, arguments: dict[str, Any] | None, request: Any = None
    ) -> mcp_types.CallToolResult:
        """Validate, run, and wrap; never raises except for cancellation."""
        spec = self.specs.get(name)
        if spec is None:
            return error(
                "invalid_argument", f"unknown tool {name!r}; the tools are: {', '.join(self.specs)}."
            )
        try:
            parsed = spec.tool.args.model_validate(arguments or {})
        except ValidationError as exc:
            return error("invalid_argument", _invalid(spec.tool, exc))
        agent_id = getattr(parsed, "agent_id", None)
        if isinstance(agent_id, str):
            self._supersede(agent_id)
        try:
            answer = await spec.handler(parsed, request)
        except BoardError as exc:
            return error(exc.code, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                log.warning("board_locked", tool=name, error=str(exc))
                return error(
                    "internal_error",
                    f"{name}: the board file stayed locked by another process for longer than the "
                    "stub waits (15 s; a very large `load`, or a process stuck inside a transaction); "
                    "nothing was written. Retry in a few seconds.",
                )
            log.exception("tool_failed", tool=name)
            return error(
                "internal_error",
                f"{name} failed inside the stub ({type(exc).__name__}: {exc}); nothing was "
                "written. Retry once; if it persists, report it with the stub's log.",
            )
        # The one place a result model becomes JSON: every answer leaves through here.
        return result(answer.wire())
