"""Artifacts: how much a task may keep, and how lists of them stay small.

- Caps per task (`PM_MAX_ARTIFACTS_PER_TASK`, `PM_MAX_ARTIFACT_BYTES_PER_TASK`): a
  `log_artifact` past either is refused whole with `invalid_argument` naming the cap and
  what to do instead (keep big data in the workspace, log its location). Bytes count what
  the artifact stores: its data as JSON, its description and its location.
- Lists (an assignment's `dependency_artifacts`, a task context's two artifact lists) carry
  metadata always and data only when small: inline when the data is at most
  `INLINE_DATA_BYTES` and the page's inline data stays within `INLINE_BUDGET_BYTES`, else
  `data: null, data_included: false`, and `get_artifact` returns it. Why keep small data
  inline at all: clients written before this (our devops worker's image tag, a tutorial-style
  worker reading `dependency_artifacts[i].data`) read it in place, and small data is most of
  what workers share (counts, tags, paths), so they keep working unchanged; only data big
  enough to make answers heavy moves behind `get_artifact`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pm_agent_stub.board import rows
from pm_agent_stub.board.paging import fitting, wire_size
from pm_agent_stub.board.store import Row, Store
from pm_agent_stub.errors import BoardError
from pm_protocol import results as r
from pm_protocol.limits import INLINE_BUDGET_BYTES, INLINE_DATA_BYTES


@dataclass(frozen=True)
class ArtifactPage:
    items: list[r.Artifact]
    last_id: int | None  # the id the next page starts after; None when there is no next page


class Artifacts:
    """The artifact rules on one store, with the per-task caps."""

    def __init__(self, store: Store, *, max_per_task: int, max_bytes_per_task: int) -> None:
        self.store = store
        self.max_per_task = max_per_task
        self.max_bytes_per_task = max_bytes_per_task

    def check_room(self, task_id: str, description: str, location: str | None, data_json: str | None) -> None:
        """Refuse an artifact that would take the task past a cap (nothing is stored then)."""
        count, used = self.store.artifact_totals(task_id)
        if count >= self.max_per_task:
            raise BoardError(
                "invalid_argument",
                f"log_artifact: task '{task_id}' already has {count} artifacts, the most a task may have "
                f"(PM_MAX_ARTIFACTS_PER_TASK={self.max_per_task}); nothing was stored. Keep many outputs in "
                "the workspace (or another store) and log one artifact whose location names them, with a "
                "short summary as its data.",
            )
        adding = sum(len(text.encode()) for text in (description, location or "", data_json or ""))
        if used + adding > self.max_bytes_per_task:
            raise BoardError(
                "invalid_argument",
                f"log_artifact: this artifact ({adding:,} bytes of data, description and location) would "
                f"take task '{task_id}' to {used + adding:,} bytes of artifacts, over "
                f"PM_MAX_ARTIFACT_BYTES_PER_TASK={self.max_bytes_per_task:,}; nothing was stored. Store big "
                "data in the workspace (or another store) and log an artifact whose location names it, "
                "with a short summary as its data.",
            )

    def page(self, found: list[Row], limit: int) -> ArtifactPage:
        """One page of artifacts from `found` (up to limit + 1 metadata rows, in list order)."""
        inline: list[int] = []
        budget = INLINE_BUDGET_BYTES
        for row in found[:limit]:
            if 0 < row["size"] <= min(INLINE_DATA_BYTES, budget):
                inline.append(row["artifact_id"])
                budget -= row["size"]
        data = self.store.artifact_data(inline)
        chosen = set(inline)
        items = [
            rows.artifact(
                row,
                data.get(row["artifact_id"]),
                included=row["size"] == 0 or row["artifact_id"] in chosen,
            )
            for row in found[:limit]
        ]
        count = fitting([wire_size(item) for item in items], limit)
        more = count < len(found)
        return ArtifactPage(items[:count], items[count - 1].artifact_id if more and count else None)

    def one(self, artifact_id: int) -> r.Artifact:
        row = self.store.artifact(artifact_id)
        if row is None:
            raise BoardError(
                "artifact_not_found",
                f"get_artifact: there is no artifact {artifact_id} on the board; use an artifact_id from "
                "an assignment's dependency_artifacts or from get_task_context.",
            )
        return rows.artifact(row, row["data"], included=True)
