"""Reruns and deregistration: the rules of docs/protocol.md ("Reruns", deregister_agent), in
process on a real SQLite file. The CLI and HTTP paths are in test_stub_operator_cli.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.schema import SCHEMA_VERSION
from pm_agent_stub.testing import load_tasks, read_events


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "board.db"


@pytest.fixture
def board(db: Path) -> Board:
    return Board(connect(db), lease_seconds=30, max_attempts=2)


def t(task_id: str, *deps: str, skill: str = "s") -> dict[str, Any]:
    return {"id": task_id, "name": task_id, "required_skills": [skill], "dependencies": list(deps)}


def run_to_done(board: Board, agent: str, task_id: str, artifact: str | None = None) -> None:
    offer = board.request_next_task(agent)
    assert offer.assignment is not None
    assert offer.assignment.task_id == task_id, offer
    if artifact:
        board.log_artifact(agent, task_id, "note", artifact, None, {"says": artifact})
    board.report_task_progress(agent, task_id, "completed", 100, "done")


def pending(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(str(db))
    try:
        return dict(conn.execute("SELECT task_id, pending_deps FROM tasks").fetchall())
    finally:
        conn.close()


def status(board: Board, task_id: str) -> str:
    return board.get_task_context(task_id).task.status


def test_rerun_a_done_task_keeps_its_history_and_dependents_wait_again(board: Board, db: Path) -> None:
    load_tasks(db, t("build"), t("test", "build"), t("docs", "build"))
    board.register_agent("w", "W", "r", ["s"])
    run_to_done(board, "w", "build", artifact="run one")
    run_to_done(board, "w", "test")  # done on build's first run
    assert pending(db)["docs"] == 0

    result = board.rerun_task("build", "new base image", dependents=False)

    assert result.requeued == ["build"]
    assert result.waiting == ["docs"]  # todo: waits for the rerun build again
    assert result.not_rerun == ["test"]  # done on the old results: listed, left as it is
    assert pending(db) == {"build": 0, "test": 1, "docs": 1}  # "how many dependencies are not done"
    ctx = board.get_task_context("build")
    assert (ctx.task.status, ctx.task.run, ctx.task.progress, ctx.task.checkpoint) == ("todo", 2, 0, None)
    assert ctx.task.completed_by is None
    assert [p.status for p in ctx.progress_log] == ["completed"]  # the first run's log is kept
    assert [a.run for a in ctx.artifacts] == [1]
    assert status(board, "test") == "done"
    [event] = read_events(db, "rerun", "build")
    assert event["detail"] == {"reason": "new base image", "was": "done", "run": 2, "requested_for": "build"}

    # The second run: attempt keeps counting, docs is offered only once build is done again,
    # and it is handed the second run's artifact only.
    offer = board.request_next_task("w")
    assert offer.assignment is not None
    assert (offer.assignment.task_id, offer.assignment.attempt) == ("build", 2)
    board.log_artifact("w", "build", "note", "run two", None, {"says": "run two"})
    board.report_task_progress("w", "build", "completed", 100, "rebuilt")
    assert pending(db) == {"build": 0, "test": 0, "docs": 0}
    docs = board.request_next_task("w").assignment
    assert docs is not None
    assert docs.task_id == "docs"
    assert [a.description for a in docs.dependency_artifacts] == ["run two"]
    assert [a.run for a in board.get_task_context("build").artifacts] == [1, 2]  # history: both runs


def test_each_run_completes_exactly_once_and_the_old_runs_reports_are_fenced(board: Board, db: Path) -> None:
    load_tasks(db, t("a"), t("b", "a"))
    board.register_agent("w", "W", "r", ["s"])
    board.register_agent("v", "V", "r", ["s"])
    run_to_done(board, "w", "a")
    board.rerun_task("a", "", dependents=False)
    # w's late, repeated completion of run 1 is not a completion of run 2
    with pytest.raises(BoardError) as late:
        board.report_task_progress("w", "a", "completed", 100, "done (retry of a lost answer)")
    assert late.value.code == "not_task_holder"
    with pytest.raises(BoardError) as artifact:
        board.log_artifact("w", "a", "note", "late", None, None)
    assert artifact.value.code == "not_task_holder"
    assert pending(db)["b"] == 1  # still waiting: nothing was completed twice
    run_to_done(board, "v", "a")
    assert pending(db)["b"] == 0
    completions = read_events(db, "completed", "a")
    assert [(e["agent_id"], e["attempt"]) for e in completions] == [("w", 1), ("v", 2)]
    agents = {a.agent_id: a.tasks_completed for a in board.list_registered_agents().agents}
    assert agents == {"w": 1, "v": 1}


def test_rerun_with_dependents_requeues_everything_done_or_blocked_below(board: Board, db: Path) -> None:
    load_tasks(db, t("a"), t("b", "a"), t("c", "b"), t("d", "a"), t("e"))
    board.register_agent("w", "W", "r", ["s"])
    while (offer := board.request_next_task("w").assignment) is not None:
        if offer.task_id == "d":
            board.report_blocker("w", "d", "flaky", "high")
        else:
            board.report_task_progress("w", offer.task_id, "completed", 100, "ok")
    assert {s: status(board, s) for s in "abcde"} == {**dict.fromkeys("abce", "done"), "d": "blocked"}
    result = board.rerun_task("a", "schema change", dependents=True)
    assert result.requeued == ["a", "b", "c", "d"]  # e does not depend on a
    assert result.not_rerun == []
    assert pending(db) == {"a": 0, "b": 1, "c": 1, "d": 1, "e": 0}
    assert [b.resolved for b in board.get_task_context("d").blockers] == [True]
    assert board.get_task_context("d").blockers[0].resolution == "rerun: schema change"
    for task_id in ("a", "b", "c", "d"):  # each waits for its own dependencies again (then load order)
        run_to_done(board, "w", task_id)
    assert {s: status(board, s) for s in "abcde"} == dict.fromkeys("abcde", "done")


def test_rerun_refuses_a_running_task_and_leaves_a_queued_one(board: Board, db: Path) -> None:
    load_tasks(db, t("a"), t("b"))
    board.register_agent("w", "W", "r", ["s"])
    assert board.request_next_task("w").assignment is not None  # a is running
    with pytest.raises(BoardError) as running:
        board.rerun_task("a", "", dependents=False)
    assert running.value.code == "invalid_argument"
    assert "is running (agent 'w', attempt 1)" in running.value.message
    queued = board.rerun_task("b", "", dependents=False)
    assert queued.requeued == []
    assert "already in the queue" in queued.message
    with pytest.raises(BoardError) as missing:
        board.rerun_task("nope", "", dependents=False)
    assert missing.value.code == "task_not_found"
    assert "request_next_task" not in missing.value.message  # an operator's tool speaks to operators


def test_rerun_of_a_blocked_task_gives_its_run_fresh_attempts(board: Board, db: Path) -> None:
    load_tasks(db, t("a"))
    board.register_agent("w", "W", "r", ["s"])
    board.request_next_task("w")
    board.report_task_progress("w", "a", "in_progress", 40, "half", {"page": 3})
    board.report_blocker("w", "a", "3 tests failed", "high")
    board.rerun_task("a", "fixed the code", dependents=False)
    ctx = board.get_task_context("a")
    assert (ctx.task.status, ctx.task.checkpoint, ctx.task.expiries, ctx.task.run) == ("todo", None, 0, 2)
    assert ctx.blockers[0].resolution == "rerun: fixed the code"


def test_a_deregistered_agent_is_offline_at_once_and_its_task_goes_back(board: Board, db: Path) -> None:
    load_tasks(db, t("a"))
    board.register_agent("w", "W", "r", ["s"])
    board.request_next_task("w")
    answer = board.deregister_agent("w")
    assert "task 'a' is back in the queue" in answer.message
    info = board.get_agent_status("w").agent_info
    assert info is not None
    assert (info.status, info.current_task) == ("offline", None)
    assert status(board, "a") == "todo"
    assert board.get_task_context("a").task.attempt == 1  # released, not a failed attempt
    assert (
        read_events(db, "released", "a")[0]["detail"]["reason"] == "agent deregistered (its worker stopped)"
    )
    with pytest.raises(BoardError) as gone:
        board.heartbeat("w")
    assert gone.value.code == "agent_not_registered"
    assert "deregistered at" in gone.value.message
    board.register_agent("w", "W", "r", ["s"])  # a restarted worker comes back
    back = board.get_agent_status("w").agent_info
    assert back is not None
    assert back.status == "idle"
    assert board.get_project_status().workers.offline == 0


def test_a_board_file_of_schema_2_is_migrated_in_place(tmp_path: Path) -> None:
    """Compose keeps the board in a volume across upgrades: an old file must keep working."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(str(db))
    # The v2 tables as an older stub made them (the columns this version adds are missing).
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2');
        CREATE TABLE agents (agent_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
            skills TEXT NOT NULL, skills_lc TEXT NOT NULL, registered_at REAL NOT NULL,
            last_seen REAL NOT NULL, tasks_completed INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE tasks (task_id TEXT PRIMARY KEY, project TEXT, name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '', instructions TEXT NOT NULL DEFAULT '', priority TEXT NOT NULL,
            priority_rank INTEGER NOT NULL, required_skills TEXT NOT NULL, skill_count INTEGER NOT NULL,
            skill_sig TEXT NOT NULL, labels TEXT NOT NULL, dependencies TEXT NOT NULL,
            pending_deps INTEGER NOT NULL, estimated_hours REAL, payload TEXT NOT NULL,
            status TEXT NOT NULL, holder TEXT, lease_id TEXT, lease_expires_at REAL,
            attempt INTEGER NOT NULL DEFAULT 0, expiries INTEGER NOT NULL DEFAULT 0,
            progress INTEGER NOT NULL DEFAULT 0, checkpoint TEXT, created_seq INTEGER NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, completed_by TEXT, completed_at REAL);
        CREATE TABLE artifacts (artifact_id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,
            agent_id TEXT NOT NULL, artifact_type TEXT NOT NULL, description TEXT NOT NULL,
            location TEXT, data TEXT, created_at REAL NOT NULL);
        INSERT INTO tasks VALUES ('old', 'p', 'Old', '', '', 'medium', 1, '["s"]', 1, '["s"]', '[]', '[]',
            0, NULL, '{}', 'done', NULL, NULL, NULL, 1, 0, 100, NULL, 1, 1.0, 1.0, 'w', 1.0);
        INSERT INTO artifacts (task_id, agent_id, artifact_type, description, location, data, created_at)
            VALUES ('old', 'w', 'note', 'from v2', NULL, NULL, 1.0);
        """
    )
    conn.close()
    board = Board(connect(db))
    ctx = board.get_task_context("old")
    assert (ctx.task.status, ctx.task.run, [a.run for a in ctx.artifacts]) == ("done", 1, [1])
    assert board.rerun_task("old", "after the upgrade", dependents=False).requeued == ["old"]
    version = (
        sqlite3.connect(str(db)).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    )
    assert version == (str(SCHEMA_VERSION),)
