"""`list_tasks`: the board's tasks a page at a time in board order, and the cursor that goes on.

Board order is in progress, blocked, todo, done; each by priority, then load order. The
cursor keeps the last task's key in that order (`store.tasks_page` seeks to it through an
index), so a page costs its own rows however deep into the board it is. Each task carries
its load-time warnings (checks.py), computed against the workers registered now, and a todo
task the dependencies it still waits on, by id.
"""

from __future__ import annotations

from pm_agent_stub.board import checks, rows
from pm_agent_stub.board.paging import decode_cursor, encode_cursor, fitting, refuse_cursor, wire_size
from pm_agent_stub.board.store import Store
from pm_protocol import results as r

TOOL = "list_tasks"
KIND = "tasks"


def page(store: Store, limit: int, cursor: str | None) -> r.TaskList:
    """One page after `cursor` (None: the first page)."""
    after: tuple[int, int, int] | None = None
    if cursor is not None:
        at = decode_cursor(TOOL, KIND, cursor)
        key = (at.get("r"), at.get("p"), at.get("s"))
        if not all(type(part) is int for part in key):
            raise refuse_cursor(TOOL, "is not a position on the board")
        after = (int(at["r"]), int(at["p"]), int(at["s"]))
    found = store.tasks_page(after, limit + 1)
    pool = checks.takers(store.registered_roles())
    waiting: dict[str, list[str]] = {}
    waits = [row["task_id"] for row in found[:limit] if row["status"] == "todo" and row["pending_deps"]]
    for dep in store.unfinished_dependencies(waits):
        waiting.setdefault(dep["task_id"], []).append(dep["depends_on"])
    tasks = [
        rows.task_summary(row, warnings=checks.of_row(row, pool), waiting_on=waiting.get(row["task_id"], []))
        for row in found[:limit]
    ]
    count = fitting([wire_size(t) for t in tasks], limit)
    answer = r.TaskList(success=True, total=sum(store.status_counts().values()), tasks=tasks[:count])
    if count < len(found):
        last = found[count - 1]
        answer.next_cursor = encode_cursor(
            KIND, {"r": last["board_rank"], "p": last["priority_rank"], "s": last["created_seq"]}
        )
    return answer
