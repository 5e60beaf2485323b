"""The stub's tool table: `pm_protocol.tools.TOOLS` (names, argument models, descriptions)
bound to the stub's handlers, plus one `call` that never raises.

Handlers return `pm_protocol.results` models; `call` turns them into JSON (`.wire()`) in
one place, shaped by tool_results.py: a success as `structured_content` (described by the
tool's `outputSchema`) and the same JSON as `content[0].text`; a failure as the
`ErrorResult` JSON text with `is_error` set.

Every handler that touches the board runs it on the board thread (board_thread.py) and
awaits the answer; `ping` never touches the board, so it answers even while the database
is locked. `request_next_task` with `wait_seconds` long-polls through the notifier
(notify.py), which wakes it only when a task it can take became offerable; a newer call of the
same agent, a disconnect or the client's `notifications/cancelled` (cancels.py) ends it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, get_type_hints

import mcp.types as mcp_types
from pydantic import ValidationError

from pm_agent_stub.board import UNSET, Board
from pm_agent_stub.board.board import no_task
from pm_agent_stub.board.loading import parsed_project
from pm_agent_stub.board.sql import locked
from pm_agent_stub.board_thread import BoardThread
from pm_agent_stub.cancels import CallCancels
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import get_logger
from pm_agent_stub.notify import Notifier, Waiter
from pm_agent_stub.tool_results import failure, success
from pm_protocol import args as a
from pm_protocol import results as r
from pm_protocol.results import WireModel
from pm_protocol.tools import TOOLS, TOOLS_BY_NAME, Tool

log = get_logger("pm_agent_stub.tools")


@dataclass(frozen=True, slots=True)
class Caller:
    """Where a tool call came from, as far as the transport says: its HTTP request (None over
    stdio or in memory) and its JSON-RPC id (None when not known)."""

    request: Any = None
    request_id: str | int | None = None


@dataclass(eq=False)
class _Poll:
    """One long-poll in progress: its waiter, and what ended it early (`why`), if anything."""

    waiter: Waiter
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    why: str = ""


Handler = Callable[[Any, Caller], Awaitable[WireModel]]


def bind(board: Board, tool: Tool[Any, Any]) -> Callable[[a.ToolArgs], WireModel]:
    """The board's method named after `tool`, called with the tool's arguments by name.

    Checked here, once, so a board and a contract that drifted apart stop the stub at start
    instead of failing a call: the method takes exactly the argument model's fields and
    returns the tool's result model, and a default it declares is the model's. A field the
    caller left out is passed with the model's default, except where the method's default is
    `UNSET` ("not given", e.g. a checkpoint, unlike an explicit null): then it is not passed.
    """
    method = getattr(board, tool.name, None)
    if method is None:
        raise RuntimeError(
            f"the board has no method {tool.name}() for the tool of that name (pm_protocol.TOOLS)"
        )
    params = inspect.signature(method).parameters
    fields = tool.args.model_fields
    wrong = []
    if set(params) != set(fields):
        wrong.append(
            f"takes ({', '.join(params)}), the tool's {tool.args.__name__} has ({', '.join(fields)})"
        )
    for name, param in params.items():
        field = fields.get(name)
        if field is not None and param.default not in (inspect.Parameter.empty, UNSET, field.default):
            wrong.append(f"defaults {name} to {param.default!r}, the contract to {field.default!r}")
    returns = get_type_hints(method).get("return")
    if returns is not tool.result:
        wrong.append(f"returns {getattr(returns, '__name__', returns)}, the tool {tool.result.__name__}")
    if wrong:
        raise RuntimeError(f"Board.{tool.name} is out of step with pm_protocol.TOOLS: {'; '.join(wrong)}")
    unless_given = frozenset(n for n, p in params.items() if p.default is UNSET)

    def run(x: a.ToolArgs) -> WireModel:
        given = x.model_fields_set
        answer: WireModel = method(
            **{n: getattr(x, n) for n in fields if n in given or n not in unless_given}
        )
        return answer

    return run


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


def listed(tool: Tool[Any, Any]) -> mcp_types.Tool:
    """The tool as `tools/list` shows it: its argument and result models' JSON schemas, and what
    calling it does (MCP annotations: hints for clients, from the contract's own flags)."""
    return mcp_types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.args.model_json_schema(),
        output_schema=tool.result.model_json_schema(mode="serialization"),
        annotations=mcp_types.ToolAnnotations(
            read_only_hint=tool.read_only,
            destructive_hint=tool.destructive,
            idempotent_hint=tool.read_only or tool.idempotent,
            open_world_hint=False,  # the board is all it touches
        ),
    )


def _usage(tool: Tool[Any, Any]) -> str:
    parts = []
    for fname, finfo in tool.args.model_fields.items():
        optional = "" if finfo.is_required() else " (optional)"
        parts.append(f"{fname}{optional}: {a.HINTS.get(fname, 'see the input schema')}")
    return f"{tool.name} takes " + ("; ".join(parts) if parts else "no arguments") + "."


def _invalid(tool: Tool[Any, Any], exc: ValidationError) -> str:
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

    Every tool of `pm_protocol.TOOLS` is answered by the `Board` method of the same name, called
    with the tool's arguments by name on the board thread (`bind`, checked when the router is
    built), except the three the event loop answers itself: `request_next_task` (its long-poll),
    `ping` (never touches the board) and `load_project` (parses the file off the board thread).
    (The llm worker's `Toolbox` is another thing: the tools a model may call.)
    """

    def __init__(self, board: Board, db: BoardThread, notifier: Notifier, started_at: float) -> None:
        self.board = board
        self.db = db
        self.notifier = notifier
        self.started_at = started_at
        own: dict[str, Handler] = {
            "request_next_task": self._request_next_task,
            "ping": self._ping,
            "load_project": self._load_project,
        }
        self.handlers: Final[dict[str, Handler]] = {
            t.name: own.get(t.name) or self._on_board(bind(board, t)) for t in TOOLS
        }
        self._tools: list[mcp_types.Tool] | None = None
        self._polls: dict[str, list[_Poll]] = {}
        self.cancels = CallCancels()

    def _on_board(self, fn: Callable[[a.ToolArgs], WireModel]) -> Handler:
        """A handler that runs `fn(args)` on the board thread."""
        db = self.db

        async def handler(x: a.ToolArgs, caller: Caller) -> WireModel:
            return await db.call(fn, x)

        return handler

    async def _load_project(self, x: a.LoadProjectArgs, caller: Caller) -> r.LoadResult:
        """Parse the file off the board thread (1 MB of YAML takes ~1.2 s here, which every
        board call would otherwise wait out), then load it on the board thread."""
        spec = await asyncio.to_thread(parsed_project, x.text, x.source)
        return await self.db.call(self.board.load_spec, spec, x.source)

    def _supersede(self, agent_id: str) -> None:
        """End this agent's pending long-polls: a newer call means the old caller is gone."""
        for poll in self._polls.pop(agent_id, []):
            self._end(poll, "superseded")

    def _end(self, poll: _Poll, why: str) -> None:
        if not poll.ended.is_set():
            poll.why = why
            poll.ended.set()
            self.notifier.interrupt(poll.waiter)

    def cancelled(self, request: Any, request_id: object) -> int:
        """A client's `notifications/cancelled` for its call `request_id` (server.py's middleware):
        end that call's long-poll if it is still waiting (cancels.py); how many were ended."""
        return self.cancels.cancel(request, request_id)

    async def _request_next_task(self, x: a.RequestNextTaskArgs, caller: Caller) -> r.TaskOffer:
        """Answer at once, or long-poll; an abandoned poll must never be handed a task.

        A poll ends without assigning when the same agent sends another call (a stopping
        worker cancels its poll, then heartbeats or releases), when its HTTP client
        disconnects, or when its client cancels it (`notifications/cancelled`: the TypeScript
        SDK's own timeout keeps the request open and sends one); otherwise a wake-up would
        assign a task to an agent that has left. A poll cancelled while its look was handing
        it a task releases that task at once.
        A poll that runs out of time without a wake-up answers without another look: had
        anything it can take become offerable, it would have been woken.
        """
        deadline = time.monotonic() + x.wait_seconds
        poll = _Poll(self.notifier.enter(x.agent_id))
        waiter = poll.waiter
        self._polls.setdefault(x.agent_id, []).append(poll)
        answered = False
        try:
            with self.cancels.watch(caller.request, caller.request_id, lambda: self._end(poll, "cancelled")):
                while True:
                    found = await self.notifier.look(waiter)
                    if poll.why == "cancelled":  # during the look: what it handed out goes back
                        self.notifier.give_back(waiter)
                        answered = True
                        return self._abandoned(x.agent_id, poll.why)
                    remaining = deadline - time.monotonic()
                    if found.offer.has_task or remaining <= 0:
                        answered = True
                        return found.offer
                    woken = await self.notifier.sleep(
                        waiter, remaining, poll.ended, disconnected=_disconnect_waiter(caller.request)
                    )
                    if poll.ended.is_set() or _is_gone(caller.request):
                        answered = True
                        return self._abandoned(x.agent_id, poll.why or "disconnected")
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
            if polls is not None and poll in polls:
                polls.remove(poll)
                if not polls:
                    del self._polls[x.agent_id]

    def _abandoned(self, agent_id: str, why: str) -> r.TaskOffer:
        log.info("long_poll_abandoned", agent_id=agent_id, why=why)
        if why == "cancelled":
            self.notifier.counters.cancelled += 1
            message = (
                "This long-poll was cancelled by its client (notifications/cancelled); no task was "
                "assigned to it."
            )
        else:
            message = (
                "This long-poll was superseded by a newer call from the same agent (or its client went "
                "away); no task was assigned to it."
            )
        return r.TaskOffer(success=True, has_task=False, message=message, retry_after_seconds=0)

    async def _ping(self, x: a.PingArgs, caller: Caller) -> r.Pong:
        return r.Pong(
            success=True,
            pong=True,
            status="online",
            uptime_seconds=round(time.time() - self.started_at, 3),
            echo=x.echo,
        )

    def list_tools(self) -> list[mcp_types.Tool]:
        # Built once: generating the JSON schemas of 18 tools' arguments and results costs tens
        # of ms of the event loop, and every client connection asks (the SDK client fetches
        # tools/list to learn the output schemas it validates answers with).
        if self._tools is None:
            self._tools = [listed(t) for t in TOOLS]
        return list(self._tools)

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        request: Any = None,
        request_id: str | int | None = None,
    ) -> mcp_types.CallToolResult:
        """Validate, run, and wrap; never raises except for cancellation. `request` and
        `request_id` say where the call came from (HTTP; None in memory and over stdio)."""
        tool = TOOLS_BY_NAME.get(name)
        if tool is None:
            return failure(
                "invalid_argument", f"unknown tool {name!r}; the tools are: {', '.join(self.handlers)}."
            )
        try:
            parsed = tool.args.model_validate(arguments or {})
        except ValidationError as exc:
            return failure("invalid_argument", _invalid(tool, exc))
        agent_id = getattr(parsed, "agent_id", None)
        if isinstance(agent_id, str):
            self._supersede(agent_id)
        try:
            answer = await self.handlers[name](parsed, Caller(request, request_id))
        except BoardError as exc:
            return failure(exc.code, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if locked(exc):
                log.warning("board_locked", tool=name, error=str(exc))
                return failure(
                    "internal_error",
                    f"{name}: the board file stayed locked by another process for longer than the "
                    "stub waits (15 s; a very large `load`, or a process stuck inside a transaction); "
                    "nothing was written. Retry in a few seconds.",
                )
            log.exception("tool_failed", tool=name)
            return failure(
                "internal_error",
                f"{name} failed inside the stub ({type(exc).__name__}: {exc}); nothing was "
                "written. Retry once; if it persists, report it with the stub's log.",
            )
        # The one place a result model becomes JSON: every answer leaves through here.
        return success(answer.wire())
