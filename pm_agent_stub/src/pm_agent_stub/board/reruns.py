"""`rerun_task`: a done or blocked task back to the queue as a fresh run, with or without the
dependents that ran on its previous results (docs/protocol.md, "Reruns").

Which tasks go back is decided here; what a rerun does to one task (its blockers closed, its
dependents waiting for it again, result and checkpoint cleared) is `Lifecycle.rerun`.
"""

from __future__ import annotations

from typing import Final

from pm_agent_stub.board.lifecycle import Lifecycle
from pm_agent_stub.board.store import Row, Store
from pm_agent_stub.board.txn import Txn
from pm_agent_stub.errors import BoardError
from pm_protocol import results as r
from pm_protocol.literals import TaskStatus

RERUNNABLE: Final[tuple[TaskStatus, ...]] = ("done", "blocked")
ON_PREVIOUS_RESULTS: Final[tuple[TaskStatus, ...]] = ("done", "in_progress")  # dependents a rerun leaves


def rerun(
    store: Store, lifecycle: Lifecycle, txn: Txn, row: Row, reason: str, dependents: bool
) -> r.RerunResult:
    """Rerun the task of `row` (and with `dependents`, its done or blocked dependents)."""
    task_id = row["task_id"]
    if row["status"] == "in_progress":
        raise BoardError(
            "invalid_argument",
            f"task '{task_id}' is running (agent '{row['holder']}', attempt {row['attempt']}); "
            "a running task cannot be rerun: wait until it is done or blocked, then rerun it.",
        )
    if row["status"] == "todo":
        waits = f", waiting on {row['pending_deps']} dependencies" if row["pending_deps"] else ""
        return r.RerunResult(
            success=True,
            message=f"Task '{task_id}' is already in the queue{waits}; nothing to rerun.",
            requeued=[],
            waiting=[],
            not_rerun=[],
        )
    below = store.dependents(task_id)
    targets = [row]
    if dependents:
        targets += [found for d in below if d["status"] in RERUNNABLE if (found := store.task(d["task_id"]))]
    for target in targets:
        lifecycle.rerun(txn, target, reason, task_id)
    requeued = [t["task_id"] for t in targets]
    not_rerun = [
        d["task_id"] for d in below if d["status"] in ON_PREVIOUS_RESULTS and d["task_id"] not in requeued
    ]
    waiting = [d["task_id"] for d in below if d["status"] == "todo" or d["task_id"] in requeued[1:]]
    parts = [f"Task '{task_id}' is back in the queue (run {row['run'] + 1})"]
    if len(requeued) > 1:
        parts.append(f"so are its dependents {', '.join(requeued[1:])}")
    if not_rerun:
        parts.append(
            f"dependents done or running on the previous results were left as they are: "
            f"{', '.join(not_rerun)} (rerun with dependents to run them again)"
        )
    return r.RerunResult(
        success=True, message="; ".join(parts) + ".", requeued=requeued, waiting=waiting, not_rerun=not_rerun
    )
