"""The assignment order: which ready task an agent gets next.

Offered: `todo` tasks with no pending dependency whose required skills are all among the
agent's (case-insensitive). Order: priority, then skill overlap (how many of the agent's
skills the task requires), then load order. Each distinct skill signature is one probe of
the partial index `tasks_ready` (store.READY_PROBE_SQL), so the cost grows with the few
signatures, never with the tasks the agent lacks skills for.
"""

from __future__ import annotations

from pm_agent_stub.board import signature
from pm_agent_stub.board.store import Row, Store


class AssignmentOrder:
    def __init__(self, store: Store) -> None:
        self.store = store

    def best_for(self, skills: frozenset[str]) -> Row | None:
        """The first task in offer order for an agent with these (lower-cased) skills."""
        best: Row | None = None
        for sig_row in self.store.skill_sigs():
            sig, count = sig_row["sig"], sig_row["skill_count"]
            if count > len(skills):
                continue
            if not skills.issuperset(signature.from_column(sig)):
                continue
            row = self.store.ready_head(sig)
            if row is not None and (
                best is None
                or (row["priority_rank"], row["skill_count"], -row["created_seq"])
                > (best["priority_rank"], best["skill_count"], -best["created_seq"])
            ):
                best = row
        return best
