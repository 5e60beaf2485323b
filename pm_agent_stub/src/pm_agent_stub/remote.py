"""`status --watch` against a running stub: its dashboard's board, redrawn until Ctrl-C.

Not a tool call: the live view reads `GET /dashboard/api/board` (the same token as /mcp), the
`BoardSnapshot` the web page shows, and draws it as dashboard/terminal.py does for a board file.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx2

from pm_agent_stub.operator_link import OperatorError, http_client, unauthorized

if TYPE_CHECKING:
    from rich.console import Console


async def watch_remote(url: str, token: str | None, console: Console, interval: float) -> int:
    """The stub at `url` (its /mcp URL), redrawn every `interval` seconds until Ctrl-C."""
    from rich.live import Live

    from pm_agent_stub.dashboard.snapshot import BoardSnapshot
    from pm_agent_stub.dashboard.terminal import render

    board_url = url.rsplit("/mcp", 1)[0] + "/dashboard/api/board"
    async with http_client(token) as http:
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
                        raise unauthorized(url)
                    if answer.status_code != 200:
                        raise OperatorError("unreachable", f"{board_url} answered HTTP {answer.status_code}")
                    live.update(render(BoardSnapshot.model_validate(answer.json()), console), refresh=True)
                    await asyncio.sleep(interval)
        except (KeyboardInterrupt, asyncio.CancelledError):
            return 0
