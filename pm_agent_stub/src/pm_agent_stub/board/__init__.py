"""The task board, in layers a reader can take one at a time (as saq splits a queue's rules
from its SQL):

| module | holds |
|---|---|
| `board.py` | `Board`: one method per tool, each one transaction |
| `lifecycle.py` | leases, fencing and every state change of a task |
| `order.py` | the assignment order: which ready task an agent gets next |
| `txn.py` | the transaction, its events and signals, and the commit-listener seam (`Commit`) |
| `store.py` | every SQL statement the rules run, and no rule |
| `store_reads.py` | the operator's reads (dashboard, /metrics) |
| `sql.py` | the connection: its transactions, `Row`, and the file's own state (data version, path) |
| `rows.py` | row → `pm_protocol` model, the one mapping of each table's columns |
| `artifacts.py` | caps on a task's artifacts, and artifact lists with small data inline |
| `history.py` | caps on a task's open blockers and progress log |
| `roster.py` | registered agents: the cap, forgetting, their status and pages |
| `context.py` | `get_task_context`'s four lists a page at a time, and its cursor |
| `paging.py` | pages of growing lists (count and byte bounds) and their cursors |
| `loading.py` | adding a project file's tasks |
| `reruns.py` | `rerun_task`: which tasks go back to the queue |
| `task_list.py` | `list_tasks`'s pages in board order |

`open_board(settings)` is the one way the server and the CLI open a board.
"""

from __future__ import annotations

from pm_agent_stub.board.board import RETRY_AFTER_SECONDS, UNSET, Board
from pm_agent_stub.board.loading import LoadOutcome
from pm_agent_stub.board.txn import BoardEvent, Commit, Listener, Signal
from pm_agent_stub.db import connect
from pm_agent_stub.settings import StubSettings

__all__ = [
    "RETRY_AFTER_SECONDS",
    "UNSET",
    "Board",
    "BoardEvent",
    "Commit",
    "Listener",
    "LoadOutcome",
    "Signal",
    "open_board",
]


def open_board(settings: StubSettings) -> Board:
    """The board on `settings.db` (created if missing) with the settings' lease rules."""
    return Board(
        connect(settings.db, settings.db_synchronous),
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        offline_seconds=settings.agent_offline_seconds,
        forget_seconds=settings.agent_forget_seconds,
        max_agents=settings.max_agents,
        max_artifacts_per_task=settings.max_artifacts_per_task,
        max_artifact_bytes_per_task=settings.max_artifact_bytes_per_task,
        max_open_blockers_per_task=settings.max_open_blockers_per_task,
        max_progress_per_task=settings.max_progress_per_task,
    )
