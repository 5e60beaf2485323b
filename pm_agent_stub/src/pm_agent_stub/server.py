"""`build_server(settings)`: the MCP server bound to one board file.

`PMAgentServer` overrides `call_tool`/`list_tools` so argument checking and error shapes are
ours (JSON errors, no "Error executing tool ..." prefix from the SDK) and the advertised
input schemas are generated from the very models that do the checking.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import mcp.types as mcp_types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.types import INVALID_PARAMS

from pm_agent_stub import __version__
from pm_agent_stub.board import open_board
from pm_agent_stub.board_thread import BoardThread
from pm_agent_stub.metrics import BoardMetrics
from pm_agent_stub.notify import Notifier
from pm_agent_stub.project_file import ProjectSpec
from pm_agent_stub.settings import StubSettings
from pm_agent_stub.sweeper import Sweeper
from pm_agent_stub.tools import ToolRouter
from pm_protocol import results as r

INSTRUCTIONS = (
    "PM Agent coordinator. register_agent first, then loop: request_next_task (wait_seconds to long-poll), "
    "report_task_progress while working (renews your lease), completed when done; report_blocker when stuck."
)


class PMAgentServer(MCPServer[Any]):
    """The MCP face of the board."""

    def __init__(self, settings: StubSettings) -> None:
        super().__init__(name="pm-agent", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
        self.stub_settings = settings
        self.started_at = time.time()
        self.board = open_board(settings)
        self.db = BoardThread(self.board)  # from here on, only this thread uses the connection
        self.sweeper = Sweeper(self.board, self.db)
        self.notifier = Notifier(self.board, self.db, on_foreign=self.sweeper.reaim)
        self.router = ToolRouter(self.board, self.db, self.notifier, self.started_at)
        # Its commit listener runs on the board thread; /metrics collects on the board thread.
        self.metrics = BoardMetrics(
            self.board, waiters=lambda: self.notifier.waiters, max_skill_sets=settings.metrics_max_skill_sets
        )
        self.middleware.append(self._see_cancellations)

    async def _see_cancellations(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """A client's `notifications/cancelled` ends the call it names if that call still waits:
        served stateless, the SDK cannot match it to the call (each POST has its own session),
        so the router does (cancels.py). Everything goes on to the SDK unchanged."""
        if ctx.method == "notifications/cancelled" and ctx.request_id is None:
            request_id = cancelled_request_id_from_params(ctx.params)
            if request_id is not None:
                self.router.cancelled(ctx.request, request_id)
        return await call_next(ctx)

    async def list_tools(self) -> list[mcp_types.Tool]:
        return self.router.list_tools()

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> Any:
        """An unknown prompt is the client's mistake (-32602), not a server error: the SDK's
        ValueError became JSON-RPC code 0 and a logged traceback on every call (issue 24 item 8)."""
        if self._prompt_manager.get_prompt(name) is None:
            raise MCPError(
                INVALID_PARAMS,
                f"Unknown prompt: {name[:200]!r}; this server has no prompts (prompts/list is empty)",
            )
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> mcp_types.CallToolResult:
        request = request_id = None
        if context is not None:
            try:
                request = context.request_context.request  # the Starlette request over HTTP
                request_id = context.request_context.request_id
            except ValueError:
                request = None
        started = time.perf_counter()
        answer = await self.router.call(name, arguments, request, request_id)
        self.metrics.tool_called(name, time.perf_counter() - started, answer)
        return answer

    @asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Run the notifier (wake-ups, cross-process watch) and the sweep timer while serving."""
        await self.notifier.start()
        sweeper = asyncio.create_task(self.sweeper.run(), name="pm-agent-sweeper")
        try:
            yield
        finally:
            self.notifier.stop()
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    def load(self, spec: ProjectSpec, source: str) -> r.LoadResult:
        """A project file read and checked in this process, loaded on the board thread before serving
        (`serve --project`) or instead (`load --db`): no request carries it, so no request-size limit."""
        return self.db.call_sync(self.board.load_spec, spec, source)

    def health(self) -> dict[str, Any]:
        """What /healthz shows; never waits on the database."""
        busy = self.db.busy_since
        return {
            "board_thread": {
                "native_id": self.db.native_id,
                "calls": self.db.calls,
                "queued": self.db.queued,
                "busy_seconds": round(time.monotonic() - busy, 3) if busy is not None else 0.0,
            },
            "assignment": asdict(self.board.counters),
            "wakeups": self.notifier.snapshot(),
        }

    def close(self) -> None:
        """Finish queued board calls and close the board (on its own thread)."""
        self.db.close()


def build_server(settings: StubSettings) -> PMAgentServer:
    return PMAgentServer(settings)
