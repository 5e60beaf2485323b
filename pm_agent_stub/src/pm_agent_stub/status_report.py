"""The board as the operator sees it (`python -m pm_agent_stub status`); read-only.

Not part of the wire contract: `status --json` prints `StatusReport` for scripts and
status_view.py renders it for people. It is gathered from answers every board gives
(`get_project_status`, then pages of `list_tasks` and `list_registered_agents`) through an
`OperatorLink`, so it reads the same from the running stub over HTTP as from a board file.
Tasks and agents are both limited (the CLI shows 200 of each unless `--all`), so `status`
stays quick on a board of any size.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pm_agent_stub.operator_link import OperatorLink
from pm_protocol import results as r
from pm_protocol import tools
from pm_protocol.limits import MAX_PAGE_LIMIT

AGENT_ORDER = {"working": 0, "idle": 1, "offline": 2}
T = TypeVar("T")


class StatusReport(r.WireModel):
    source: str
    """Where the board was read: the stub's URL, or the board file."""
    project_status: r.ProjectCounts
    workers: r.WorkerCounts
    agents: list[r.AgentInfo]
    agents_truncated: bool
    tasks: list[r.TaskSummary]
    tasks_truncated: bool


async def gather(
    fetch: Callable[[int, str | None], Awaitable[tuple[list[T], str | None]]], limit: int | None
) -> tuple[list[T], bool]:
    """Up to `limit` items (None: all) from pages `fetch(size, cursor)`; (items, whether more were left)."""
    items: list[T] = []
    cursor: str | None = None
    while True:
        size = MAX_PAGE_LIMIT if limit is None else min(MAX_PAGE_LIMIT, limit - len(items))
        found, cursor = await fetch(size, cursor)
        items += found
        if cursor is None:
            return items, False
        if limit is not None and len(items) >= limit:
            return items, True


def _page(size: int, cursor: str | None) -> dict[str, object]:
    return {"limit": size} | ({"cursor": cursor} if cursor else {})


async def collect(link: OperatorLink, limit: int | None) -> StatusReport:
    """The board with at most `limit` tasks and `limit` agents (None: all of them); agents
    working first, then idle, then offline, each in registration order."""

    async def task_page(size: int, cursor: str | None) -> tuple[list[r.TaskSummary], str | None]:
        page = await link.call(tools.list_tasks, _page(size, cursor))
        return page.tasks, page.next_cursor

    async def agent_page(size: int, cursor: str | None) -> tuple[list[r.AgentInfo], str | None]:
        page = await link.call(tools.list_registered_agents, _page(size, cursor))
        return page.agents, page.next_cursor

    status = await link.call(tools.get_project_status, {})
    tasks, more_tasks = await gather(task_page, limit)
    agents, more_agents = await gather(agent_page, limit)
    return StatusReport(
        source=link.source,
        project_status=status.project_status,
        workers=status.workers,
        agents=sorted(agents, key=lambda a: AGENT_ORDER[a.status]),
        agents_truncated=more_agents,
        tasks=tasks,
        tasks_truncated=more_tasks,
    )
