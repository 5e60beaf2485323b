"""Every change of a task into or out of the offerable set is in its commit's `ready_delta`.

The notifier wakes long-pollers from these deltas alone (notify.py): a transaction that made a
task offerable without saying so would leave agents asleep next to work until their poll
times out. So each operator and worker call here is checked against the board itself:
the sum of the commit's deltas equals how `ready_counts` (a read of the ready index) moved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pm_agent_stub.board import Board, Commit
from pm_agent_stub.db import connect
from pm_agent_stub.testing import load_tasks, task


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def checked(board: Board) -> Callable[..., Any]:
    """Run a board call and assert its commits' deltas are what the ready index says moved."""
    commits: list[Commit] = []
    board.add_listener(commits.append)

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        before = Counter(board.ready_counts())
        commits.clear()
        result = fn(*args)
        moved = Counter(board.ready_counts())
        moved.subtract(before)
        said: Counter[Any] = Counter()
        for c in commits:
            said.update(c.ready_delta)
        assert {k: v for k, v in said.items() if v} == {k: v for k, v in moved.items() if v}, fn.__name__
        return result

    return run


def test_reruns_resolves_releases_expiries_and_deregistrations_say_what_became_offerable(
    tmp_path: Path,
) -> None:
    db, clock = tmp_path / "b.db", Clock()
    load_tasks(
        db,
        task("a", "x"),
        task("b", "y", dependencies=["a"]),
        task("c", "y", dependencies=["b"]),
        task("d", "x"),
    )
    board = Board(connect(db), lease_seconds=10, max_attempts=5, clock=clock)
    run = checked(board)
    run(board.register_agent, "wx", "WX", "r", ["x"])
    run(board.register_agent, "wy", "WY", "r", ["y"])

    a = run(board.request_next_task, "wx").assignment
    assert a.task_id == "a"
    run(board.report_task_progress, "wx", "a", "completed", 100, "done")  # frees b
    b = run(board.request_next_task, "wy").assignment
    assert b.task_id == "b"
    run(board.report_task_progress, "wy", "b", "completed", 100, "done")  # frees c
    assert board.ready_counts() == {("y",): 1, ("x",): 1}

    # `a` alone again: `a` is offerable; `b` stays done, so `c` (it waits on `b` only) stays ready.
    run(board.rerun_task, "a", "fixed the code", False)
    assert board.ready_counts() == {("y",): 1, ("x",): 2}
    a = run(board.request_next_task, "wx").assignment
    assert a.task_id == "a"
    run(board.report_task_progress, "wx", "a", "completed", 100, "done again")
    # With dependents: `b` (done) is rerun and waits for `a`, so `c` (ready) waits again.
    run(board.rerun_task, "a", "again", True)
    assert board.ready_counts() == {("x",): 2}

    a = run(board.request_next_task, "wx").assignment
    run(board.report_blocker, "wx", a.task_id, "cannot", "high")
    run(board.resolve_blocker, a.task_id, "try again")  # blocked -> offerable
    a = run(board.request_next_task, "wx").assignment
    run(board.report_blocker, "wx", a.task_id, "cannot", "high")
    run(board.rerun_task, a.task_id, "rerun a blocked task", False)

    held = run(board.request_next_task, "wx").assignment
    run(board.release_task, "wx", held.task_id, "shutting down")
    held = run(board.request_next_task, "wx").assignment
    run(board.deregister_agent, "wx")  # its task goes back to the queue
    run(board.register_agent, "wx", "WX", "r", ["x"])
    run(board.request_next_task, "wx")
    clock.now += 11
    run(board.sweep)  # the lease ran out: offerable again
    assert board.ready_counts() == {("x",): 2}
