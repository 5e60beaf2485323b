"""The roster of registered agents: how big it may grow, who is forgotten, and its pages.

Registrations cost a row each and, without a token, anyone who reaches the stub may make
them, so the roster is bounded two ways:

- Forgetting: an agent not seen for `PM_AGENT_FORGET_SECONDS` (default 24 h) is removed at
  the start of any call, a batch at a time, never one holding a task. It loses nothing it
  needs: a worker that comes back is told `agent_not_registered`, and `pm_worker`
  registers again by itself. Its history (events, progress, artifacts) stays.
- A cap (`PM_MAX_AGENTS`, default 10,000: ten times the thousand-worker fleet the stub is
  benchmarked with, so a real fleet never meets it): registering a new id when the roster is full makes
  room by forgetting the least recently seen agent that is offline (not seen for
  `PM_AGENT_OFFLINE_SECONDS`) and holds nothing; only when every agent is live is the new id
  refused, with `invalid_argument` saying so. Re-registering a known id always works.

Why a cap and not a rate limit: what an operator needs is that a flood can neither grow the
board without end nor disturb the fleet that is working. The cap bounds the roster whatever
the rate; making room only from offline agents means a flood never pushes out a live worker,
and a legitimate fleet restarting all at once (every worker re-registering within seconds)
is never throttled, where a rate limit would slow exactly that. What a cap cannot do is
tell a stranger from a new worker while the roster is full of live strangers; the answer to
strangers is `PM_AGENT_TOKEN`, and the refusal says so.

Every removal writes a `forgotten` event (agent, last seen, why).
"""

from __future__ import annotations

from typing import Final

from pm_agent_stub.board import rows
from pm_agent_stub.board.paging import decode_cursor, encode_cursor, fitting, refuse_cursor, wire_size
from pm_agent_stub.board.store import Row, Store
from pm_agent_stub.board.txn import Txn
from pm_agent_stub.errors import BoardError
from pm_agent_stub.timefmt import iso
from pm_protocol import results as r

FORGET_BATCH: Final = 500  # agents forgotten per call at most, so one call never does a flood's work


class Roster:
    def __init__(
        self, store: Store, *, offline_seconds: float, forget_seconds: float, max_agents: int
    ) -> None:
        self.store = store
        self.offline_seconds = offline_seconds
        self.forget_seconds = forget_seconds
        self.max_agents = max_agents

    def forget_stale(self, txn: Txn) -> int:
        """Remove agents not seen for `forget_seconds` that hold nothing; how many went."""
        stale = self.store.stale_agents(txn.now - self.forget_seconds, FORGET_BATCH)
        for row in stale:
            self._forget(txn, row["agent_id"], row["last_seen"], f"not seen for {self.forget_seconds:g} s")
        return len(stale)

    def make_room(self, txn: Txn, agent_id: str) -> None:
        """Before registering a new id: forget one offline agent if the roster is full, or refuse."""
        count = self.store.agent_count()
        if count < self.max_agents:
            return
        offline = self.store.stale_agents(txn.now - self.offline_seconds, 1)
        if offline:
            row = offline[0]
            self._forget(txn, row["agent_id"], row["last_seen"], f"room for '{agent_id}' (PM_MAX_AGENTS)")
            return
        raise BoardError(
            "invalid_argument",
            f"register_agent: the board already has {count:,} registered agents (PM_MAX_AGENTS="
            f"{self.max_agents}) and each of them holds a task or was seen within the last "
            f"{self.offline_seconds:g} s (PM_AGENT_OFFLINE_SECONDS), so none can make room; '{agent_id}' was "
            "not registered. Re-registering a known agent_id always works. Retry once some agent has gone "
            "offline; if the fleet really is this large, raise PM_MAX_AGENTS; if these registrations are not "
            "your workers', set PM_AGENT_TOKEN so that only they can register.",
        )

    def info(self, row: Row, current_task: str | None, now: float) -> r.AgentInfo:
        """An agent as the tools show it: working (holds a task), idle, or offline (deregistered,
        or not seen lately)."""
        status: r.AgentState = "working" if current_task is not None else "idle"
        if current_task is None and (
            row["deregistered_at"] is not None or now - row["last_seen"] > self.offline_seconds
        ):
            status = "offline"
        return rows.agent_info(row, status=status, current_task=current_task)

    def by_status(self, now: float, limit: int | None = None) -> list[r.AgentInfo]:
        """Agents working first, then idle, then offline; each in registration order (the dashboard's)."""
        rows = self.store.agents_for_status(now - self.offline_seconds, limit)
        return [self.info(row, row["current_task"], now) for row in rows]

    def counts(self, now: float) -> r.WorkerCounts:
        row = self.store.worker_counts(now - self.offline_seconds)
        total, working, offline = int(row["total"]), int(row["working"]), int(row["offline"])
        return r.WorkerCounts(total=total, working=working, idle=total - working - offline, offline=offline)

    def page(self, now: float, limit: int, cursor: str | None) -> r.AgentList:
        """One page of the roster in registration order (`list_registered_agents`)."""
        after: tuple[float, str] | None = None
        if cursor is not None:
            position = decode_cursor("list_registered_agents", "agents", cursor)
            at, agent_id = position.get("r"), position.get("a")
            if not isinstance(at, int | float) or isinstance(at, bool) or not isinstance(agent_id, str):
                raise refuse_cursor("list_registered_agents", "is not a position in the roster")
            after = (float(at), agent_id)
        found = self.store.agents_page(after, limit + 1)
        agents = [self.info(row, row["current_task"], now) for row in found[:limit]]
        count = fitting([wire_size(a) for a in agents], limit)
        answer = r.AgentList(success=True, agent_count=self.store.agent_count(), agents=agents[:count])
        if count < len(found):
            last = found[count - 1]
            answer.next_cursor = encode_cursor("agents", {"r": last["registered_at"], "a": last["agent_id"]})
        return answer

    def _forget(self, txn: Txn, agent_id: str, last_seen: float, why: str) -> None:
        self.store.delete_agent(agent_id)
        txn.event("forgotten", None, agent_id, None, {"last_seen": iso(last_seen), "why": why})
