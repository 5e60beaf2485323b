"""How much history one task keeps: its open blockers and its progress log, each capped.

Neither grew with anything but the calls of the agent on the task, so one agent could grow
them without end (issue 24 item 4: 1,023 blockers in 25 s, a board from 14 to 48 MiB of
progress in 20 s). Both caps are settings, like the artifact caps (artifacts.py):

- **Open blockers** (`PM_MAX_OPEN_BLOCKERS_PER_TASK`): a task enters `blocked` with none
  open (resolve and rerun close them all), so its first blocker, whoever records it (the
  holder, the lease sweep, a counted release), always fits. Only the agent that blocked it
  adds more while it waits, and past the cap that `report_blocker` is refused whole: nothing
  is stored and the task stays `blocked` with the blockers it had. Closed blockers are
  history and stay: each round of them needs an operator's `resolve_blocker` or `rerun_task`.
- **Progress entries** (`PM_MAX_PROGRESS_PER_TASK`): the newest are kept and the oldest
  dropped, counted on the task (`progress_dropped`, shown by `get_task_context` and
  `status --task`). Dropped, not folded into a summary entry: all a fold could keep is that
  count and a time span (the oldest entry kept says where the log starts now), a summary
  entry would be a status or message no client wrote, and what the entries told is kept
  elsewhere: the event log holds every assignment, release (with its reason), expiry and
  block, and the checkpoint holds where the work was. Refusing instead would fail a
  worker's progress report, which renews its lease, and so cost the task itself.
"""

from __future__ import annotations

from pm_agent_stub.board.store import Row, Store
from pm_agent_stub.board.txn import Txn
from pm_agent_stub.errors import BoardError
from pm_protocol.limits import MAX_TEXT


class History:
    """The caps on a task's open blockers and progress log, on one store."""

    def __init__(self, store: Store, *, max_open_blockers: int, max_progress: int) -> None:
        self.store = store
        self.max_open_blockers = max_open_blockers
        self.max_progress = max_progress

    def check_blocker_room(self, task_id: str) -> None:
        """Refuse one more open blocker on a task that has as many as it may (nothing is stored)."""
        count = self.store.open_blocker_count(task_id)
        if count >= self.max_open_blockers:
            raise BoardError(
                "invalid_argument",
                f"report_blocker: task '{task_id}' already has {count} open blockers, the most a task may "
                f"have (PM_MAX_OPEN_BLOCKERS_PER_TASK={self.max_open_blockers}); nothing was stored and the "
                "task stays blocked until resolve_blocker. Say everything in fewer blockers (each description "
                f"takes up to {MAX_TEXT:,} characters), and call request_next_task for other work.",
            )

    def progress(self, txn: Txn, row: Row, agent_id: str, status: str, progress: int, message: str) -> None:
        """Log one progress entry of the task in `row`; past the cap its oldest entries go."""
        task_id = row["task_id"]
        self.store.insert_progress(task_id, agent_id, row["attempt"], status, progress, message, txn.now)
        dropped = self.store.drop_old_progress(task_id, self.max_progress)
        if dropped and not row["progress_dropped"]:  # said once per task, not on every report after
            txn.log("progress_log_capped", task_id=task_id, kept=self.max_progress)
