"""`get_task_context` a page at a time: the task's four lists and the one cursor that goes on.

Each list is paged by its own id: the progress log and blockers back in time (the first
page holds the newest, so the open blocker and the latest progress are always on it; the
cursor keeps the smallest id shown), the task's and its dependencies' artifacts forward from
the oldest (the cursor keeps the largest id shown). One cursor carries the position of every
list that has more, with the task it belongs to; a list it does not name comes back empty.
An assignment's `dependency_artifacts` is the first page of `d`, and its
`dependency_artifacts_next` a cursor naming only `d`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from pm_agent_stub.board import rows
from pm_agent_stub.board.artifacts import Artifacts
from pm_agent_stub.board.paging import decode_cursor, encode_cursor, fitting, refuse_cursor, wire_size
from pm_agent_stub.board.store import Row, Store
from pm_protocol import results as r

M = TypeVar("M", bound=r.WireModel)

TOOL: Final = "get_task_context"
KIND: Final = "context"
LISTS: Final = ("p", "b", "a", "d")  # progress log, blockers, artifacts, dependency artifacts


@dataclass
class ContextPages:
    progress_log: list[r.ProgressEntry] = field(default_factory=list)
    blockers: list[r.BlockerInfo] = field(default_factory=list)
    artifacts: list[r.Artifact] = field(default_factory=list)
    dependency_artifacts: list[r.Artifact] = field(default_factory=list)
    more: dict[str, int] = field(default_factory=dict)  # list key -> where its next page starts

    def next_cursor(self, task_id: str) -> str | None:
        return encode_cursor(KIND, {"t": task_id, **self.more}) if self.more else None


def position(task_id: str, cursor: str | None) -> dict[str, int | None]:
    """Where each list starts: every list from its start, or the lists a cursor names, where it says."""
    if cursor is None:
        return dict.fromkeys(LISTS)
    found = decode_cursor(TOOL, KIND, cursor)
    if found.pop("t", None) != task_id:
        raise refuse_cursor(TOOL, f"was given out for another task, not '{task_id}'")
    if not found or any(key not in LISTS or type(value) is not int for key, value in found.items()):
        raise refuse_cursor(TOOL, "is not a position in this task's lists")
    return dict(found)


def pages(
    store: Store, artifacts: Artifacts, task_id: str, limit: int, at: dict[str, int | None]
) -> ContextPages:
    """One page of each list `at` names, from where it says."""
    out = ContextPages()
    if "p" in at:
        found = store.progress_before(task_id, at["p"], limit + 1)
        out.progress_log = _backward(found, limit, "id", rows.progress_entry, "p", out.more)
    if "b" in at:
        found = store.blockers_before(task_id, at["b"], limit + 1)
        out.blockers = _backward(found, limit, "blocker_id", rows.blocker_info, "b", out.more)
    if "a" in at:
        page = artifacts.page(store.artifacts_after(task_id, at["a"] or 0, limit + 1), limit)
        out.artifacts = page.items
        if page.last_id is not None:
            out.more["a"] = page.last_id
    if "d" in at:
        page = artifacts.page(store.dependency_artifacts_after(task_id, at["d"] or 0, limit + 1), limit)
        out.dependency_artifacts = page.items
        if page.last_id is not None:
            out.more["d"] = page.last_id
    return out


def _backward(
    found: list[Row], limit: int, id_column: str, model: Callable[[Row], M], key: str, more: dict[str, int]
) -> list[M]:
    """A page of a newest-first list, shown oldest first; where the next page starts goes in `more`."""
    items = [model(row) for row in found[:limit]]
    count = fitting([wire_size(item) for item in items], limit)
    if count < len(found):
        more[key] = found[count - 1][id_column]
    return list(reversed(items[:count]))
