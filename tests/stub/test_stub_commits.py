"""The commit-listener seam: every committed transaction tells listeners its signals and events."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from pm_agent_stub.board import Board, Commit
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.testing import load_tasks, read_events


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def kinds(commits: list[Commit]) -> list[list[str]]:
    return [[e.kind for e in c.events] for c in commits]


def test_each_commit_carries_its_signals_and_every_event_it_wrote(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    load_tasks(db, {"id": "a", "name": "A"}, {"id": "b", "name": "B", "dependencies": ["a"]})
    board = Board(connect(db))
    commits: list[Commit] = []
    board.add_listener(commits.append)
    board.register_agent("w", "W", "r", [])
    board.request_next_task("w")
    board.report_task_progress("w", "a", "completed", 100, "done")
    board.get_project_status()  # reads only: nothing to tell
    assert kinds(commits) == [["registered"], ["assigned"], ["completed"]]
    # Registering wakes nobody (the agent's own polls are superseded by the call itself);
    # assigning takes a task out of the offerable set, completing `a` frees its dependent
    # (`ready_delta` says so; the leases moved twice, for the sweep timer).
    assert [c.signals for c in commits] == [set(), {"lease"}, {"lease"}]
    assert [dict(c.ready_delta) for c in commits] == [{}, {(): -1}, {(): +1}]
    completed = commits[-1].events[0]
    assert (completed.task_id, completed.agent_id, completed.attempt) == ("a", "w", 1)
    assert completed.detail["lease_id"]
    assert [(e["kind"], e["at"]) for e in read_events(db)][-3:] == [
        (e.kind, e.at) for c in commits for e in c.events
    ]


def test_a_refused_call_reports_the_audit_events_written_after_its_rollback(tmp_path: Path) -> None:
    db, clock = tmp_path / "b.db", Clock()
    load_tasks(db, {"id": "a", "name": "A"})
    board = Board(connect(db), lease_seconds=10, clock=clock)
    board.register_agent("w", "W", "r", [])
    board.request_next_task("w")
    commits: list[Commit] = []
    board.add_listener(commits.append)
    clock.now += 11
    with pytest.raises(BoardError):
        board.report_task_progress("w", "a", "in_progress", 50, "late")
    (commit,) = commits
    assert [e.kind for e in commit.events] == ["expired", "fenced"]
    assert commit.signals == {"lease"}
    assert commit.ready_delta == {(): +1}  # the expired task is offerable again
    assert commit.events[1].detail == {"doing": "report in_progress", "task_status": "todo"}


def test_a_failing_listener_is_logged_and_the_others_still_hear(tmp_path: Path) -> None:
    board = Board(connect(tmp_path / "b.db"))
    heard: list[Commit] = []

    def broken(commit: Commit) -> None:
        raise RuntimeError("dashboard bug")

    board.add_listener(broken)
    board.add_listener(heard.append)
    with capture_logs() as logs:
        assert board.register_agent("w", "W", "r", []).success
    assert kinds(heard) == [["registered"]]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["commit_listener_failed"]


def test_listening_costs_no_sql(tmp_path: Path) -> None:
    """The events a listener gets are the ones the transaction wrote, kept in memory."""

    def statements(listen: bool, db: Path) -> list[str]:
        load_tasks(db, {"id": "a", "name": "A"})
        board = Board(connect(db))
        if listen:
            board.add_listener(lambda commit: None)
        seen: list[str] = []
        board.conn.set_trace_callback(seen.append)
        board.register_agent("w", "W", "r", [])
        board.request_next_task("w")
        board.report_task_progress("w", "a", "completed", 100, "done")
        board.conn.set_trace_callback(None)
        return [s.split()[0] for s in seen]

    assert statements(True, tmp_path / "with.db") == statements(False, tmp_path / "without.db")
