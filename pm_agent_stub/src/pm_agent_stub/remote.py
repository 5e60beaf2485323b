"""`RemoteBoard`: the operator CLI's calls to the running stub, over MCP streamable HTTP.

A client like any worker: `PM_AGENT_URL` in any form workers accept, the same bearer token
(`PM_AGENT_TOKEN` or `PM_AGENT_TOKEN_FILE`), the tools of `pm_protocol.TOOLS`. Arguments are
built with the protocol's argument models and answers read with its result models; an error
answer becomes `OperatorError(code, message)`, and a stub that cannot be reached one
`OperatorError("unreachable", ...)` saying where the CLI looked and how to point it elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from pm_agent_stub.board_access import OperatorError
from pm_agent_stub.tool_results import answer_object
from pm_protocol import InvalidCall, UnexpectedAnswer, call
from pm_protocol import results as r
from pm_protocol import tools as T
from pm_protocol.errors import refusal
from pm_protocol.tools import A, R, Tool

if TYPE_CHECKING:
    from rich.console import Console


CALL_TIMEOUT_SECONDS = 60.0


def _causes(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [c for e in exc.exceptions for c in _causes(e)]
    return [exc]


class RemoteBoard:
    """Calls to the stub at `url`; `async with` opens the connection, closing it ends it."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.source = url
        self._token = token
        self._stack = contextlib.AsyncExitStack()
        self._client: Client | None = None

    async def open(self) -> RemoteBoard:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            http = await self._stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=headers, timeout=httpx2.Timeout(CALL_TIMEOUT_SECONDS, connect=10.0)
                )
            )
            self._client = await self._stack.enter_async_context(
                Client(streamable_http_client(self.url, http_client=http))
            )
        except BaseException as exc:
            await self._stack.aclose()
            raise self._unreachable(exc) from None
        return self

    def _unreachable(self, exc: BaseException) -> BaseException:
        causes = _causes(exc)
        for cause in causes:
            if isinstance(cause, (KeyboardInterrupt, SystemExit)):
                return cause
        for cause in causes:
            text = str(cause.error.message) if isinstance(cause, MCPError) else str(cause)
            status = cause.response.status_code if isinstance(cause, httpx2.HTTPStatusError) else None
            if status == 401 or "unauthorized" in text.lower():
                return OperatorError(
                    "unauthorized",
                    f"the stub at {self.url} refused the token: set PM_AGENT_TOKEN (or PM_AGENT_TOKEN_FILE) "
                    "to the stub's token",
                )
        reason = "; ".join(f"{type(c).__name__}: {c}" for c in causes)
        return OperatorError(
            "unreachable",
            f"no stub answers at {self.url} ({reason}). Start one (`make up`, or `make demo PROJECT_DIR=...`), "
            "or point the CLI at yours with --url or PM_AGENT_URL (or at a board file with --db)",
        )

    async def close(self) -> None:
        await self._stack.aclose()

    async def call(self, tool: Tool[A, R], args: A | dict[str, Any]) -> R:
        """Call `tool` with `args` (checked by its argument model first); its result, or OperatorError."""
        try:
            return await call(self._send, tool, args)
        except InvalidCall as exc:
            raise OperatorError("invalid_argument", f"not sent to the stub: {exc.message}") from None
        except UnexpectedAnswer as exc:
            raise OperatorError(
                "unreachable",
                f"{self.url} answered {tool.name} in an unknown shape ({exc.message}): "
                "is it a PM Agent stub of this version?",
            ) from None

    async def _send(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]:
        if self._client is None:
            await self.open()
        assert self._client is not None
        try:
            answer = await self._client.call_tool(tool, arguments)
        except Exception as exc:  # the stub went away mid-call, or refused us
            raise self._unreachable(exc) from None
        obj = answer_object(answer)
        if obj is None:
            raise OperatorError(
                "unreachable", f"{self.url} answered {tool} with no JSON object: is it a PM Agent stub?"
            )
        if answer.is_error:
            refused = refusal(tool, obj)
            raise OperatorError(refused.code, refused.message)
        return obj

    async def load_text(self, text: str, source: str) -> r.LoadResult:
        return await self.call(T.load_project, {"text": text, "source": source})

    async def list_tasks(self, limit: int, cursor: str | None = None) -> r.TaskList:
        page = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return await self.call(T.list_tasks, page)

    async def project_status(self) -> r.ProjectStatus:
        return await self.call(T.get_project_status, {})

    async def agents(self, limit: int, cursor: str | None = None) -> r.AgentList:
        page = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return await self.call(T.list_registered_agents, page)

    async def task_context(self, task_id: str) -> r.TaskContextResult:
        return await self.call(T.get_task_context, {"task_id": task_id})

    async def rerun(self, task_id: str, reason: str, dependents: bool) -> r.RerunResult:
        return await self.call(T.rerun_task, {"task_id": task_id, "reason": reason, "dependents": dependents})

    async def resolve(self, task_id: str, resolution: str) -> r.ResolveResult:
        return await self.call(T.resolve_blocker, {"task_id": task_id, "resolution": resolution})


async def watch_remote(url: str, token: str | None, console: Console, interval: float) -> int:
    """`status --watch` against a running stub: its dashboard's board (`GET /dashboard/api/board`,
    same token) redrawn every `interval` seconds until Ctrl-C, as dashboard/terminal.py draws it."""
    from rich.live import Live

    from pm_agent_stub.dashboard.snapshot import BoardSnapshot
    from pm_agent_stub.dashboard.terminal import render

    board_url = url.rsplit("/mcp", 1)[0] + "/dashboard/api/board"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(
        headers=headers, timeout=httpx2.Timeout(CALL_TIMEOUT_SECONDS, connect=10.0)
    ) as http:
        try:
            with Live(console=console, auto_refresh=False, transient=False) as live:
                while True:
                    try:
                        answer = await http.get(board_url)
                    except httpx2.HTTPError as exc:
                        raise OperatorError(
                            "unreachable", f"no stub answers at {board_url} ({type(exc).__name__}: {exc})"
                        ) from None
                    if answer.status_code == 401:
                        raise OperatorError(
                            "unauthorized",
                            f"the stub at {url} refused the token: set "
                            "PM_AGENT_TOKEN (or PM_AGENT_TOKEN_FILE) to the stub's token",
                        )
                    if answer.status_code != 200:
                        raise OperatorError("unreachable", f"{board_url} answered HTTP {answer.status_code}")
                    live.update(render(BoardSnapshot.model_validate(answer.json()), console), refresh=True)
                    await asyncio.sleep(interval)
        except (KeyboardInterrupt, asyncio.CancelledError):
            return 0
