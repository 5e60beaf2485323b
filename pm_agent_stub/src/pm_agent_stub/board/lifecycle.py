"""A task's life: leases, fencing, and every state change, with who may make it.

    todo ──assign──▶ in_progress ──complete──▶ done            (exactly once per run)
      ▲                 │  │  └──block────────▶ blocked ──resolve──▶ todo (attempts reset)
      │                 │  └──release (holder)─────────────────────────┘
      └──lease expired──┘      (after PM_MAX_ATTEMPTS expiries or counted releases: blocked instead)
    done | blocked ──rerun (operator)──▶ todo as run + 1            (history kept)

Only the agent holding a live lease may act on an in-progress task (`require_holder`);
anyone else is fenced with `not_task_holder`, and the refusal says what actually
happened to that agent's hold (from the event log: never held, expired at T, released,
blocked). Each change writes its event, raises the signals listeners need, and reports a
task entering or leaving the offerable set (`Txn.ready`, per skill signature).
"""

from __future__ import annotations

import uuid
from typing import Final

from pm_agent_stub.board.history import History
from pm_agent_stub.board.store import Row, Store
from pm_agent_stub.board.txn import Txn
from pm_agent_stub.errors import BoardError
from pm_agent_stub.suggestions import suggest_resolution
from pm_agent_stub.timefmt import iso
from pm_protocol.literals import Severity

# An agent's events on a task that say how its hold ended (or that it had one).
_HOLD_EVENTS: Final = ("assigned", "expired", "released", "blocked")


class Lifecycle:
    """The state changes of tasks on one store, with the lease settings."""

    def __init__(self, store: Store, history: History, *, lease_seconds: float, max_attempts: int) -> None:
        self.store = store
        self.history = history
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts

    # ------------------------------------------------------------------ leases

    def sweep(self, txn: Txn) -> int:
        """Return expired leases to the queue (or block after too many expiries)."""
        rows = self.store.due_leases(txn.now)
        for row in rows:
            expiries = row["expiries"] + 1
            blocked = expiries >= self.max_attempts
            self.store.unassign(row["task_id"], "blocked" if blocked else "todo", txn.now, expiries=expiries)
            txn.event(
                "expired",
                row["task_id"],
                row["holder"],
                row["attempt"],
                {"lease_id": row["lease_id"], "expiries": expiries},
            )
            if blocked:
                description = (
                    f"Lease expired {expiries} times (PM_MAX_ATTEMPTS={self.max_attempts}); last holder "
                    f"'{row['holder']}'. The task is blocked instead of being offered again."
                )
                self.add_blocker(txn, row["task_id"], row["holder"], description, "high", row["attempt"])
            else:
                txn.ready(row["skill_sig"], +1)
            txn.signals.add("lease")
        return len(rows)

    def assign(self, txn: Txn, agent_id: str, task_id: str) -> tuple[Row, float]:
        """Give a `todo` task to the agent with a fresh lease; its row as assigned, and the expiry."""
        lease_id = uuid.uuid4().hex
        expires = txn.now + self.lease_seconds
        row = self.store.assign(task_id, agent_id, lease_id, expires, txn.now)
        if row is None:
            raise RuntimeError(f"task '{task_id}' was picked as offerable but is not todo")
        txn.event("assigned", task_id, agent_id, row["attempt"], {"lease_id": lease_id})
        txn.ready(row["skill_sig"], -1)
        txn.signals.add("lease")
        return row, expires

    def renew(self, txn: Txn, row: Row) -> float:
        expires = txn.now + self.lease_seconds
        self.store.set_lease_expiry(row["task_id"], expires, txn.now)
        txn.signals.add("lease")
        return expires

    # ------------------------------------------------------------------ fencing

    def require_holder(self, txn: Txn, agent_id: str, row: Row, doing: str) -> None:
        """Fencing: only the agent holding a live lease may act on the task."""
        if row["status"] == "in_progress" and row["holder"] == agent_id:
            return
        txn.audit_refusal(
            "fenced", row["task_id"], agent_id, row["attempt"], {"doing": doing, "task_status": row["status"]}
        )
        raise BoardError(
            "not_task_holder",
            f"agent '{agent_id}' does not hold task '{row['task_id']}': {self._why_not(agent_id, row)}. "
            "Stop working on it and call request_next_task for your current assignment.",
        )

    def _why_not(self, agent_id: str, row: Row) -> str:
        """What happened to this agent's hold, then where the task is now (errors only: one indexed read)."""
        history = self.store.agent_history(row["task_id"], agent_id, _HOLD_EVENTS, limit=2)
        last = history[0] if history else None
        if last is not None and last["kind"] == "blocked" and len(history) > 1:
            before = history[1]
            if before["kind"] in ("expired", "released") and before["at"] == last["at"]:
                last = before  # blocked after too many failed attempts, not reported by the agent
        if last is None:
            past = "you never held it"
        elif last["kind"] == "expired":
            past = f"your lease (attempt {last['attempt']}) expired at {iso(last['at'])}"
        elif last["kind"] == "released":
            past = f"you released it at {iso(last['at'])}"
        elif last["kind"] == "blocked":
            past = f"you reported it blocked at {iso(last['at'])}"
        else:
            past = f"you held it (attempt {last['attempt']}) and no longer do"
        if row["status"] == "in_progress":
            now = f"it is now held by agent '{row['holder']}'"
        elif row["status"] == "blocked":
            now = "it is blocked and waits for resolve_blocker"
        elif row["status"] == "todo":
            now = "it is back in the queue"
        else:
            now = f"it is {row['status']}"
        return f"{past}; {now}"

    def already_complete(self, agent_id: str, row: Row) -> bool:
        """True if the completer repeats itself; task_already_complete for anyone else."""
        if row["completed_by"] == agent_id:
            return True
        raise BoardError(
            "task_already_complete",
            f"task '{row['task_id']}' was already completed by agent '{row['completed_by']}' at "
            f"{iso(row['completed_at'])}; nothing to report, call request_next_task for new work.",
        )

    # ------------------------------------------------------------------ endings of a hold

    def complete(self, txn: Txn, agent_id: str, row: Row) -> None:
        # Exactly once per task (done is terminal), so each dependent's counter drops exactly once.
        for freed_sig in self.store.complete(row["task_id"], agent_id, txn.now):
            txn.ready(freed_sig, +1)
        txn.event("completed", row["task_id"], agent_id, row["attempt"], {"lease_id": row["lease_id"]})
        txn.signals.add("lease")

    def release(self, txn: Txn, agent_id: str, row: Row, reason: str, *, count_attempt: bool = False) -> bool:
        """Back to the queue at once, keeping the checkpoint; not a failed attempt unless `count_attempt`.

        A counted release is a failed attempt like an expiry: the one that reaches
        PM_MAX_ATTEMPTS blocks the task instead (True).
        """
        expiries = row["expiries"] + 1 if count_attempt else None
        blocked = expiries is not None and expiries >= self.max_attempts
        self.store.unassign(row["task_id"], "blocked" if blocked else "todo", txn.now, expiries=expiries)
        self.history.progress(txn, row, agent_id, "released", row["progress"], reason)
        detail = (
            {"reason": reason}
            if expiries is None
            else {"reason": reason, "count_attempt": True, "expiries": expiries}
        )
        txn.event("released", row["task_id"], agent_id, row["attempt"], detail)
        if blocked:
            description = (
                f"{expiries} failed attempts (lease expiries and counted releases; PM_MAX_ATTEMPTS="
                f"{self.max_attempts}); the last, '{agent_id}' gave it up: {reason[:2000]}. The task is "
                "blocked instead of being offered again."
            )
            self.add_blocker(txn, row["task_id"], agent_id, description, "high", row["attempt"])
        else:
            txn.ready(row["skill_sig"], +1)
        txn.signals.add("lease")
        return blocked

    def block(
        self, txn: Txn, agent_id: str, row: Row, description: str, severity: Severity
    ) -> tuple[int, str]:
        self.store.unassign(row["task_id"], "blocked", txn.now)
        txn.signals.add("lease")
        return self.add_blocker(txn, row["task_id"], agent_id, description, severity, row["attempt"])

    def add_blocker(
        self,
        txn: Txn,
        task_id: str,
        agent_id: str | None,
        description: str,
        severity: Severity,
        attempt: int | None,
    ) -> tuple[int, str]:
        """Record a blocker with its suggestion; (blocker_id, suggestion)."""
        suggestion = suggest_resolution(description)
        blocker_id = self.store.insert_blocker(task_id, agent_id, description, severity, suggestion, txn.now)
        txn.event("blocked", task_id, agent_id, attempt, {"blocker_id": blocker_id, "severity": severity})
        return blocker_id, suggestion

    def rerun(self, txn: Txn, row: Row, reason: str, requested_for: str) -> None:
        """A done or blocked task back to `todo` as a fresh run (docs/protocol.md, "Reruns").

        Its open blockers are closed; if it was done, each dependent counts it as pending
        again, so the run's own completion (exactly once, like any run's) brings the counts
        back; result, checkpoint and progress are cleared, so nobody resumes a finished run.
        """
        if row["status"] == "blocked":
            self.store.resolve_blockers(row["task_id"], f"rerun: {reason}" if reason else "rerun", txn.now)
        elif row["status"] == "done":
            for held_sig in self.store.undo_completion(row["task_id"]):
                txn.ready(held_sig, -1)
        if self.store.start_new_run(row["task_id"], txn.now) == 0:  # as earlier reruns in this call left it
            txn.ready(row["skill_sig"], +1)
        txn.event(
            "rerun",
            row["task_id"],
            None,
            row["attempt"],
            {"reason": reason, "was": row["status"], "run": row["run"] + 1, "requested_for": requested_for},
        )

    def resolve(self, txn: Txn, row: Row, resolution: str) -> int:
        """Close the task's open blockers; a blocked task goes back to the queue with attempts reset."""
        resolved = self.store.resolve_blockers(row["task_id"], resolution, txn.now)
        if row["status"] == "blocked":
            self.store.requeue_fresh(row["task_id"], txn.now)
            if row["pending_deps"] == 0:
                txn.ready(row["skill_sig"], +1)
        txn.event(
            "resolved", row["task_id"], None, row["attempt"], {"resolved": resolved, "resolution": resolution}
        )
        return resolved
