"""One task's history is bounded (issue 24 item 4): its open blockers by a cap that refuses
more, its progress log by dropping the oldest entries, counted (board/history.py).

In process on a board file for the rules, then against the real stub over real HTTP for the
floods the issue reproduced (1,023 blockers; a board grown by 10,000-character progress
messages). Counts and sizes are asserted, never times; tests/reliability/task_history.py prints
the figures of docs/reliability.md.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.schema import SCHEMA_VERSION
from pm_agent_stub.testing import http_get_json, load_tasks, run_cli, task
from tests.reliability.board_size import MIB, Rpc
from tests.reliability.task_history import MESSAGE, block, work_on


def new_board(db: Path, **caps: int) -> Board:
    return Board(connect(db), lease_seconds=60, max_attempts=2, **caps)


def blocked_by_a(db: Path, **caps: int) -> Board:
    load_tasks(db, task("t", "s"))
    board = new_board(db, **caps)
    board.register_agent("a", "A", "r", ["s"])
    board.request_next_task("a")
    board.report_blocker("a", "t", "first", "high")
    return board


def open_blockers(board: Board, task_id: str) -> list[str]:
    return [b.description for b in board.get_task_context(task_id).blockers if not b.resolved]


# ------------------------------------------------------------------ open blockers


def test_a_blocker_past_the_cap_is_refused_and_the_task_stays_as_it_was(tmp_path: Path) -> None:
    board = blocked_by_a(tmp_path / "b.db", max_open_blockers_per_task=3)
    board.report_blocker("a", "t", "detail 1", "low")
    board.report_blocker("a", "t", "detail 2", "low")
    before = board.get_task_context("t")
    with pytest.raises(BoardError) as refused:
        board.report_blocker("a", "t", "detail 3", "critical")
    assert refused.value.code == "invalid_argument"
    assert refused.value.message == (
        "report_blocker: task 't' already has 3 open blockers, the most a task may have "
        "(PM_MAX_OPEN_BLOCKERS_PER_TASK=3); nothing was stored and the task stays blocked until "
        "resolve_blocker. Say everything in fewer blockers (each description takes up to 10,000 "
        "characters), and call request_next_task for other work."
    )
    after = board.get_task_context("t")
    assert after == before  # nothing stored, nothing changed: the same task, the same lists
    assert (after.task.status, open_blockers(board, "t")) == ("blocked", ["first", "detail 1", "detail 2"])


def test_the_cap_counts_open_blockers_and_a_tasks_first_blocker_always_fits(tmp_path: Path) -> None:
    """Resolved blockers are history, not counted; a task enters `blocked` with none open, so the
    blocker that blocks it (the holder's, or the lease sweep's after PM_MAX_ATTEMPTS) is never refused."""
    db = tmp_path / "b.db"
    board = blocked_by_a(db, max_open_blockers_per_task=1)
    with pytest.raises(BoardError):
        board.report_blocker("a", "t", "more", "low")
    assert board.resolve_blocker("t", "fixed").resolved == 1
    board.request_next_task("a")
    board.report_blocker("a", "t", "again", "medium")  # blocks it again: fits
    board.resolve_blocker("t", "fixed again")
    for _ in range(2):  # max_attempts=2 lease expiries: the sweep blocks it with a blocker of its own
        assert board.request_next_task("a").has_task
        with sqlite3.connect(str(db)) as conn:
            conn.execute("UPDATE tasks SET lease_expires_at = 0 WHERE task_id = 't'")
        board.sweep()
    ctx = board.get_task_context("t")
    assert ctx.task.status == "blocked"
    assert [b.description.split(" (")[0] for b in ctx.blockers if not b.resolved] == ["Lease expired 2 times"]
    assert len(ctx.blockers) == 3


# ------------------------------------------------------------------ progress log


def test_progress_keeps_the_newest_entries_and_counts_the_dropped_ones(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    load_tasks(db, task("t", "s"))
    board = new_board(db, max_progress_per_task=5)
    board.register_agent("a", "A", "r", ["s"])
    board.request_next_task("a")
    with capture_logs() as logs:
        for i in range(8):
            board.report_task_progress("a", "t", "in_progress", i, f"p{i}")
        board.release_task("a", "t", "stopping")  # a release is an entry too
    ctx = board.get_task_context("t")
    assert [p.message for p in ctx.progress_log] == ["p4", "p5", "p6", "p7", "stopping"]
    assert ctx.progress_dropped == 4
    assert ctx.wire()["progress_dropped"] == 4
    assert ctx.task.progress == 7  # the task's own state is not history: untouched
    capped = [e for e in logs if e["event"] == "progress_log_capped"]
    assert capped == [{"event": "progress_log_capped", "task_id": "t", "kept": 5, "log_level": "info"}]
    fresh = board.get_task_context("t")
    assert fresh.progress_dropped == 4
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT count(*) FROM progress_log WHERE task_id = 't'").fetchone() == (5,)


def test_a_task_under_the_cap_sends_progress_dropped_0(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    load_tasks(db, task("t", "s"))
    board = new_board(db)
    assert board.get_task_context("t").wire()["progress_dropped"] == 0


def test_a_version_4_board_file_gains_the_count_in_place(tmp_path: Path) -> None:
    db = tmp_path / "v4.db"
    load_tasks(db, task("t", "s"))
    conn = sqlite3.connect(str(db))
    with conn:
        conn.execute("ALTER TABLE tasks DROP COLUMN progress_dropped")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    board = new_board(db, max_progress_per_task=1)
    board.register_agent("a", "A", "r", ["s"])
    board.request_next_task("a")
    board.report_task_progress("a", "t", "in_progress", 1, "one")
    board.report_task_progress("a", "t", "in_progress", 2, "two")
    assert board.get_task_context("t").progress_dropped == 1
    board.close()
    with sqlite3.connect(str(db)) as check:
        assert check.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [("PM_MAX_OPEN_BLOCKERS_PER_TASK", "0"), ("PM_MAX_PROGRESS_PER_TASK", "none")],
)
def test_a_bad_cap_stops_the_stub_naming_it(tmp_path: Path, name: str, value: str) -> None:
    result = run_cli("status", "--db", str(tmp_path / "b.db"), env={name: value})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[0].startswith(f"invalid settings: {name}")


# ------------------------------------------------------------------ the floods, over HTTP


def test_a_flood_of_blockers_is_refused_past_the_cap_over_http(stub_factory: Any, tmp_path: Path) -> None:
    db = tmp_path / "board.db"
    load_tasks(db, task("victim", "v"), task("spam", "s"))
    stub = stub_factory(db, env={"PM_MAX_OPEN_BLOCKERS_PER_TASK": "5"})
    rpc = Rpc(stub)
    work_on(rpc, "va", "v", "victim")
    work_on(rpc, "sa", "s", "spam")
    assert block(rpc, "va", "victim", "the database is gone", "critical")["success"]
    assert block(rpc, "sa", "spam", "first", "low")["success"]
    answers = [block(rpc, "sa", "spam", f"detail {i}", "low") for i in range(200)]
    assert sum(a["success"] for a in answers) == 4
    refusals = answers[4:]
    assert {a["error"] for a in refusals} == {"invalid_argument"}
    assert "PM_MAX_OPEN_BLOCKERS_PER_TASK=5" in refusals[0]["message"]
    context = rpc.call("get_task_context", {"task_id": "spam"})
    assert (context["task"]["status"], len(context["blockers"])) == ("blocked", 5)
    # The agent is free for other work, as the refusal says.
    assert rpc.call("request_next_task", {"agent_id": "sa"})["has_task"] is False
    rpc.close()
    _, snapshot = http_get_json(f"{stub.base_url}/dashboard/api/board")
    assert {b["task_id"] for b in snapshot["blockers"]} == {"victim", "spam"}
    assert snapshot["blockers"][0]["task_id"] == "victim"  # critical first


def test_a_flood_of_progress_keeps_the_board_small_over_http(stub_factory: Any, tmp_path: Path) -> None:
    """1,000 reports of 10,000 characters (10 MB of messages) leave the task's newest 20."""
    db = tmp_path / "board.db"
    load_tasks(db, task("chatty", "c"))
    stub = stub_factory(db, env={"PM_MAX_PROGRESS_PER_TASK": "20"})
    rpc = Rpc(stub)
    work_on(rpc, "ca", "c", "chatty")
    report = {"agent_id": "ca", "task_id": "chatty", "status": "in_progress"}
    for i in range(1000):
        answer = rpc.call(
            "report_task_progress", {**report, "progress": i % 100, "message": f"{i} {MESSAGE[:9990]}"}
        )
        assert answer["status"] == "progress_recorded", answer
    context = rpc.call("get_task_context", {"task_id": "chatty"})
    rpc.close()
    assert context["progress_dropped"] == 980
    assert [p["message"].split()[0] for p in context["progress_log"]] == [str(i) for i in range(980, 1000)]
    assert db.stat().st_size < 2 * MIB  # without the cap: over 9 MiB of rows here
    shown = run_cli("show", "chatty", env={"PM_AGENT_URL": stub.url})
    assert shown.returncode == 0, shown.stderr
    assert "980 older entries were dropped" in shown.stdout
