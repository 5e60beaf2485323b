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
from typing import Any

import mcp.types as mcp_types
from mcp.server.mcpserver import Context, MCPServer

from pm_agent_stub import __version__
from pm_agent_stub.board import open_board
from pm_agent_stub.metrics import BoardMetrics
from pm_agent_stub.notify import Notifier
from pm_agent_stub.settings import StubSettings
from pm_agent_stub.tools import ToolRouter

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
        self.conn = self.board.conn
        self.notifier = Notifier(self.board)
        self.router = ToolRouter(self.board, self.notifier, self.started_at)
        self.metrics = BoardMetrics(self.board, waiters=lambda: self.notifier.waiters)

    async def list_tools(self) -> list[mcp_types.Tool]:
        return self.router.list_tools()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> mcp_types.CallToolResult:
        request = None
        if context is not None:
            try:
                request = context.request_context.request  # the Starlette request over HTTP
            except ValueError:
                request = None
        started = time.perf_counter()
        answer = await self.router.call(name, arguments, request)
        self.metrics.tool_called(name, time.perf_counter() - started, answer)
        return answer

    @asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Run the sweep timer and the cross-process watcher for as long as the server serves."""
        tasks = [
            asyncio.create_task(self.notifier.run_sweeper(), name="pm-agent-sweeper"),
            asyncio.create_task(self.notifier.watch_other_processes(), name="pm-agent-watcher"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self.board.close()


def build_server(settings: StubSettings) -> PMAgentServer:
    return PMAgentServer(settings)
