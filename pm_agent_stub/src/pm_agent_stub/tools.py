"""The tool table: name → (argument model, description, handler), plus one `call` that never raises.

Every result is one JSON object, as `content[0].text` and as `structured_content`;
failures carry `{"success": false, "error": code, "message": ...}` with `is_error` set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import mcp.types as mcp_types
from pydantic import ValidationError

from pm_agent_stub.board import UNSET, Board
from pm_agent_stub.errors import BoardError
from pm_agent_stub.logs import get_logger
from pm_agent_stub.notify import Notifier
from pm_protocol import args as a
from pm_protocol.limits import dumps

log = get_logger("pm_agent_stub.tools")

Handler = Callable[[Any], Awaitable[dict[str, Any]]]


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
    name: str
    model: type[a.ToolArgs]
    description: str
    handler: Handler


def result(obj: dict[str, Any], *, is_error: bool = False) -> mcp_types.CallToolResult:
    """The one result shape: JSON text and the same object as structured content."""
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=dumps(obj))],
        structured_content=obj,
        is_error=is_error,
    )


def _usage(spec: ToolSpec) -> str:
    parts = []
    for fname, finfo in spec.model.model_fields.items():
        optional = "" if finfo.is_required() else " (optional)"
        parts.append(f"{fname}{optional}: {a.HINTS.get(fname, 'see the input schema')}")
    return f"{spec.name} takes " + ("; ".join(parts) if parts else "no arguments") + "."


def _invalid(spec: ToolSpec, exc: ValidationError) -> dict[str, Any]:
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
    return {
        "success": False,
        "error": "invalid_argument",
        "message": f"{spec.name}: " + "; ".join(problems) + ". " + _usage(spec),
    }


class ToolBox:
    """Binds the tools to one board and notifier."""

    def __init__(self, board: Board, notifier: Notifier, started_at: float) -> None:
        self.board = board
        self.notifier = notifier
        self.started_at = started_at
        self.specs: Final[dict[str, ToolSpec]] = {s.name: s for s in self._specs()}
        self._tools: list[mcp_types.Tool] | None = None
        self._polls: dict[str, list[asyncio.Event]] = {}

    def _specs(self) -> list[ToolSpec]:
        b = self.board
        return [
            ToolSpec(
                "register_agent",
                a.RegisterAgentArgs,
                "Register (or re-register) this worker with its skills. Do this first; re-registering keeps a held task.",
                self._register_agent,
            ),
            ToolSpec(
                "request_next_task",
                a.RequestNextTaskArgs,
                "Get your assignment: the task you hold (lease renewed) or the best eligible one. "
                "wait_seconds long-polls until a task is ready.",
                self._request_next_task,
            ),
            ToolSpec(
                "report_task_progress",
                a.ReportTaskProgressArgs,
                "Report progress (renews the lease), completion, or a block on the task you hold; "
                "checkpoint stores resume state.",
                self._report_task_progress,
            ),
            ToolSpec(
                "report_blocker",
                a.ReportBlockerArgs,
                "Report that the task you hold is blocked; returns a resolution_suggestion and frees you.",
                self._report_blocker,
            ),
            ToolSpec(
                "get_project_status",
                a.NoArgs,
                "Task counts by status and worker counts.",
                self._sync(lambda _: b.get_project_status()),
            ),
            ToolSpec(
                "get_agent_status",
                a.AgentOnlyArgs,
                "One agent's status and current task.",
                self._sync(lambda x: b.get_agent_status(x.agent_id)),
            ),
            ToolSpec(
                "list_registered_agents",
                a.NoArgs,
                "All registered agents with their status.",
                self._sync(lambda _: b.list_registered_agents()),
            ),
            ToolSpec("ping", a.PingArgs, "Liveness check; echoes `echo`.", self._ping),
            ToolSpec(
                "heartbeat",
                a.AgentOnlyArgs,
                "Renew the lease of your current task and your last-seen time.",
                self._sync(lambda x: b.heartbeat(x.agent_id)),
            ),
            ToolSpec(
                "release_task",
                a.ReleaseTaskArgs,
                "Give a held task back to the queue now (keeps its checkpoint; not a failed attempt).",
                self._sync(lambda x: b.release_task(x.agent_id, x.task_id, x.reason)),
            ),
            ToolSpec(
                "log_artifact",
                a.LogArtifactArgs,
                "Record an artifact of a task you hold or completed; dependents see it in their assignment.",
                self._sync(
                    lambda x: b.log_artifact(
                        x.agent_id, x.task_id, x.artifact_type, x.description, x.location, x.data
                    )
                ),
            ),
            ToolSpec(
                "get_task_context",
                a.TaskOnlyArgs,
                "A task with its progress log, blockers, artifacts and its dependencies' artifacts.",
                self._sync(lambda x: b.get_task_context(x.task_id)),
            ),
            ToolSpec(
                "resolve_blocker",
                a.ResolveBlockerArgs,
                "Close a task's open blockers and put it back in the queue with its attempts reset.",
                self._sync(lambda x: b.resolve_blocker(x.task_id, x.resolution)),
            ),
        ]

    @staticmethod
    def _sync(fn: Callable[[Any], dict[str, Any]]) -> Handler:
        async def handler(x: Any) -> dict[str, Any]:
            return fn(x)

        return handler

    async def _register_agent(self, x: a.RegisterAgentArgs) -> dict[str, Any]:
        return self.board.register_agent(x.agent_id, x.name, x.role, x.skills)

    def _supersede(self, agent_id: str) -> None:
        """End this agent's pending long-polls: a newer call means the old caller is gone."""
        for event in self._polls.pop(agent_id, []):
            event.set()

    async def _request_next_task(self, x: a.RequestNextTaskArgs, request: Any = None) -> dict[str, Any]:
        """Answer at once, or long-poll; an abandoned poll must never be handed a task.

        A poll ends without assigning when the same agent sends another call (a stopping
        worker cancels its poll, then heartbeats or releases) or when its HTTP client
        disconnects; otherwise a wake-up would assign a task to an agent that has left.
        """
        deadline = time.monotonic() + x.wait_seconds
        ended = asyncio.Event()
        self._polls.setdefault(x.agent_id, []).append(ended)
        try:
            while True:
                ticket = self.notifier.ticket()
                answer = self.board.request_next_task(x.agent_id)
                remaining = deadline - time.monotonic()
                if answer["has_task"] or remaining <= 0:
                    return answer
                await self.notifier.wait(ticket, remaining, ended, disconnected=_disconnect_waiter(request))
                if ended.is_set() or _is_gone(request):
                    log.info("long_poll_abandoned", agent_id=x.agent_id)
                    return {
                        "success": True,
                        "has_task": False,
                        "message": "This long-poll was superseded by a newer call from the same agent "
                        "(or its client went away); no task was assigned to it.",
                        "retry_after_seconds": 0,
                    }
        finally:
            polls = self._polls.get(x.agent_id)
            if polls is not None and ended in polls:
                polls.remove(ended)
                if not polls:
                    del self._polls[x.agent_id]

    async def _report_task_progress(self, x: a.ReportTaskProgressArgs) -> dict[str, Any]:
        checkpoint = x.checkpoint if "checkpoint" in x.model_fields_set else UNSET
        return self.board.report_task_progress(
            x.agent_id, x.task_id, x.status, x.progress, x.message, checkpoint
        )

    async def _report_blocker(self, x: a.ReportBlockerArgs) -> dict[str, Any]:
        return self.board.report_blocker(x.agent_id, x.task_id, x.blocker_description, x.severity)

    async def _ping(self, x: a.PingArgs) -> dict[str, Any]:
        return {
            "success": True,
            "pong": True,
            "status": "online",
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "echo": x.echo,
        }

    def list_tools(self) -> list[mcp_types.Tool]:
        # Built once: generating the 13 JSON schemas costs ~10 ms of the event loop, and every
        # client connection asks (the SDK client fetches tools/list to learn output schemas).
        if self._tools is None:
            self._tools = [
                mcp_types.Tool(name=s.name, description=s.description, input_schema=s.model.model_json_schema())
                for s in self.specs.values()
            ]
        return list(self._tools)

    async def call(
        self, name: str, arguments: dict[str, Any] | None, request: Any = None
    ) -> mcp_types.CallToolResult:
        """Validate, run, and wrap; never raises except for cancellation."""
        spec = self.specs.get(name)
        if spec is None:
            return result(
                {
                    "success": False,
                    "error": "invalid_argument",
                    "message": f"unknown tool {name!r}; the tools are: {', '.join(self.specs)}.",
                },
                is_error=True,
            )
        try:
            parsed = spec.model.model_validate(arguments or {})
        except ValidationError as exc:
            return result(_invalid(spec, exc), is_error=True)
        agent_id = getattr(parsed, "agent_id", None)
        if isinstance(agent_id, str):
            self._supersede(agent_id)
        try:
            if isinstance(parsed, a.RequestNextTaskArgs):
                return result(await self._request_next_task(parsed, request))
            return result(await spec.handler(parsed))
        except BoardError as exc:
            return result(exc.to_json(), is_error=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool_failed", tool=name)
            return result(
                {
                    "success": False,
                    "error": "internal_error",
                    "message": f"{name} failed inside the stub ({type(exc).__name__}: {exc}); nothing was "
                    "written. Retry once; if it persists, report it with the stub's log.",
                },
                is_error=True,
            )
