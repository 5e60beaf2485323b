"""Board rules, in process on a temporary file with a controllable clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.board.store import READY_PROBE_SQL
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.testing import load_tasks, read_events


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "board.db"


@pytest.fixture
def board(db: Path, clock: Clock) -> Board:
    return Board(connect(db), lease_seconds=10, max_attempts=3, offline_seconds=90, clock=clock)


def reg(board: Board, agent_id: str, *skills: str) -> None:
    board.register_agent(agent_id, agent_id.title(), "role", list(skills))


def take(board: Board, agent_id: str) -> dict[str, Any] | None:
    answer = board.request_next_task(agent_id).wire()  # what the worker receives
    return answer["assignment"] if answer["has_task"] else None


def code(exc: pytest.ExceptionInfo[BoardError]) -> str:
    return exc.value.code


def test_skills_gate_eligibility_case_insensitively(board: Board, db: Path) -> None:
    load_tasks(db, {"id": "t", "name": "T", "required_skills": ["Docker", "testing"]})
    reg(board, "a", "docker")
    reg(board, "b", "TESTING", "docker", "extra")
    assert take(board, "a") is None
    assert take(board, "b")["task_id"] == "t"  # type: ignore[index]


def test_order_is_priority_then_skill_overlap_then_load_order(board: Board, db: Path) -> None:
    load_tasks(
        db,
        {"id": "low", "name": "L", "priority": "low"},
        {"id": "med-old", "name": "M1"},
        {"id": "med-skilled", "name": "M2", "required_skills": ["x", "y"]},
        {"id": "med-one-skill", "name": "M3", "required_skills": ["x"]},
        {"id": "med-new", "name": "M4"},
        {"id": "urgent", "name": "U", "priority": "urgent"},
        {"id": "high", "name": "H", "priority": "high"},
    )
    order = []
    for i in range(7):
        reg(board, f"w{i}", "x", "y")
        order.append(take(board, f"w{i}")["task_id"])  # type: ignore[index]
    assert order == ["urgent", "high", "med-skilled", "med-one-skill", "med-old", "med-new", "low"]


def test_dependencies_must_be_done_and_completion_releases_dependents(board: Board, db: Path) -> None:
    load_tasks(
        db,
        {"id": "a", "name": "A"},
        {"id": "b", "name": "B"},
        {"id": "c", "name": "C", "dependencies": ["a", "b"], "priority": "urgent"},
    )
    reg(board, "w")
    first = take(board, "w")
    assert first is not None
    assert first["task_id"] == "a"
    board.report_task_progress("w", "a", "completed", 100, "done")
    assert take(board, "w")["task_id"] == "b"  # type: ignore[index]
    board.report_task_progress("w", "b", "completed", 100, "done")
    assert take(board, "w")["task_id"] == "c"  # type: ignore[index]


def test_one_task_per_agent_asking_again_returns_same_lease_renewed_with_checkpoint(
    board: Board, db: Path, clock: Clock
) -> None:
    load_tasks(db, {"id": "a", "name": "A"}, {"id": "b", "name": "B"})
    reg(board, "w")
    first = take(board, "w")
    assert first is not None
    clock.now += 5
    board.report_task_progress("w", "a", "in_progress", 40, "step", checkpoint={"step": 2})
    clock.now += 5
    again = take(board, "w")
    assert again is not None
    assert again["task_id"] == "a"
    assert again["lease"]["lease_id"] == first["lease"]["lease_id"]
    assert again["lease"]["expires_at"] > first["lease"]["expires_at"]
    assert again["checkpoint"] == {"step": 2}
    assert again["attempt"] == 1


def test_lease_expiry_fences_old_holder_and_reoffers_with_attempt_and_checkpoint(
    board: Board, db: Path, clock: Clock
) -> None:
    load_tasks(db, {"id": "a", "name": "A"})
    reg(board, "old")
    reg(board, "new")
    take(board, "old")
    board.report_task_progress("old", "a", "in_progress", 30, "x", checkpoint={"at": 3})
    clock.now += 10.01
    with pytest.raises(BoardError) as exc:
        board.report_task_progress("old", "a", "in_progress", 50, "late")
    assert code(exc) == "not_task_holder"
    second = take(board, "new")
    assert second is not None
    assert (second["task_id"], second["attempt"], second["checkpoint"]) == ("a", 2, {"at": 3})
    for call in (
        lambda: board.report_task_progress("old", "a", "completed", 100, "late"),
        lambda: board.heartbeat("old") and board.release_task("old", "a", "bye"),
        lambda: board.log_artifact("old", "a", "t", "d", None, None),
        lambda: board.report_blocker("old", "a", "x", "low"),
    ):
        with pytest.raises(BoardError) as exc:
            call()
        assert code(exc) == "not_task_holder"
    kinds = [e["kind"] for e in read_events(db, task_id="a")]
    assert kinds.count("expired") == 1
    assert kinds.count("fenced") == 5
    assert board.get_task_context("a").task.holder == "new"


def test_max_attempts_expiries_block_the_task_with_a_blocker_saying_so(
    board: Board, db: Path, clock: Clock
) -> None:
    load_tasks(db, {"id": "a", "name": "A"})
    reg(board, "w")
    for attempt in (1, 2, 3):
        got = take(board, "w")
        assert got is not None
        assert got["attempt"] == attempt
        clock.now += 11
        board.sweep()
    assert take(board, "w") is None
    ctx = board.get_task_context("a")
    assert ctx.task.status == "blocked"
    (blocker,) = ctx.wire()["blockers"]
    assert "expired 3 times" in blocker["description"]
    assert blocker["resolution_suggestion"]
    out = board.resolve_blocker("a", "fixed the worker").wire()
    assert out["resolved"] == 1
    again = take(board, "w")
    assert again is not None
    assert again["attempt"] == 1


def test_completion_is_exactly_once(board: Board, db: Path) -> None:
    load_tasks(db, {"id": "a", "name": "A"}, {"id": "dep", "name": "D", "dependencies": ["a"]})
    reg(board, "w")
    reg(board, "other")
    take(board, "w")
    first = board.report_task_progress("w", "a", "completed", 100, "done").wire()
    repeat = board.report_task_progress("w", "a", "completed", 100, "done").wire()
    assert (first["status"], repeat["status"]) == ("task_completed", "already_complete")
    with pytest.raises(BoardError) as exc:
        board.report_task_progress("other", "a", "completed", 100, "me too")
    assert code(exc) == "task_already_complete"
    assert len(read_events(db, kind="completed", task_id="a")) == 1
    assert board.get_task_context("dep").task.pending_dependencies == 0
    assert board.get_agent_status("w").wire()["agent_info"]["tasks_completed"] == 1


def test_release_requeues_at_once_keeps_checkpoint_and_is_not_an_expiry(board: Board, db: Path) -> None:
    load_tasks(db, {"id": "a", "name": "A"})
    reg(board, "w")
    reg(board, "v")
    take(board, "w")
    board.report_task_progress("w", "a", "in_progress", 10, "x", checkpoint=[1, 2])
    board.release_task("w", "a", "shutting down")
    got = take(board, "v")
    assert got is not None
    assert got["checkpoint"] == [1, 2]
    assert board.get_task_context("a").task.expiries == 0
    assert [e["kind"] for e in read_events(db, task_id="a")].count("released") == 1


def test_a_counted_release_is_a_failed_attempt_like_an_expiry(board: Board, db: Path, clock: Clock) -> None:
    """release_task(count_attempt=True): counted with expiries; the one reaching PM_MAX_ATTEMPTS blocks."""
    load_tasks(db, {"id": "a", "name": "A"})
    reg(board, "w")
    take(board, "w")
    board.release_task("w", "a", "stopping")  # not counted: a shutdown is not the task's fault
    assert board.get_task_context("a").task.expiries == 0
    take(board, "w")
    board.release_task("w", "a", "read_file never returned", count_attempt=True)
    assert board.get_task_context("a").task.expiries == 1
    assert board.get_task_context("a").task.status == "todo"
    take(board, "w")
    clock.now += 11
    board.sweep()  # an expiry counts on the same counter
    assert board.get_task_context("a").task.expiries == 2
    assert take(board, "w") is not None
    answer = board.release_task("w", "a", "read_file never returned", count_attempt=True)
    assert "blocked" in answer.message
    ctx = board.get_task_context("a")
    assert ctx.task.status == "blocked"
    (blocker,) = ctx.blockers
    assert blocker.description.startswith(
        "3 failed attempts (lease expiries and counted releases; PM_MAX_ATTEMPTS=3)"
    )
    assert "'w' gave it up: read_file never returned" in blocker.description
    assert take(board, "w") is None
    with pytest.raises(BoardError) as refused:
        board.report_task_progress("w", "a", "in_progress", 10, "x")
    assert "you released it at" in refused.value.message  # the agent's own story, not "you reported it"
    released = read_events(db, kind="released", task_id="a")
    assert [e["detail"].get("count_attempt", False) for e in released] == [False, True, True]


def test_blocked_status_and_report_blocker_free_the_agent_until_resolved(board: Board, db: Path) -> None:
    load_tasks(db, {"id": "a", "name": "A"}, {"id": "b", "name": "B", "priority": "low"})
    reg(board, "w")
    take(board, "w")
    out = board.report_task_progress("w", "a", "blocked", 20, "Connection refused by db").wire()
    assert out["status"] == "task_blocked"
    assert "unreachable" in out["resolution_suggestion"]
    more = board.report_blocker("w", "a", "still refused", "high").wire()  # the blocker adds detail
    assert more["blocker_id"] != out["blocker_id"]
    assert take(board, "w")["task_id"] == "b"  # type: ignore[index]
    board.report_blocker("w", "b", "3 tests failed", "critical")
    assert take(board, "w") is None
    assert board.resolve_blocker("a", "db is up").resolved == 2
    assert take(board, "w")["task_id"] == "a"  # type: ignore[index]


def test_artifacts_reach_dependents(board: Board, db: Path) -> None:
    load_tasks(db, {"id": "build", "name": "B"}, {"id": "test", "name": "T", "dependencies": ["build"]})
    reg(board, "w")
    take(board, "w")
    board.log_artifact("w", "build", "docker_image", "the image", "reg/app:1", {"digest": "sha256:x"})
    board.report_task_progress("w", "build", "completed", 100, "built")
    board.log_artifact("w", "build", "log", "after completion is fine for the completer", None, None)
    got = take(board, "w")
    assert got is not None
    assert got["task_id"] == "test"
    arts = got["dependency_artifacts"]
    assert [a["artifact_type"] for a in arts] == ["docker_image", "log"]
    assert arts[0]["data"] == {"digest": "sha256:x"}
    assert arts[0]["location"] == "reg/app:1"


def test_agent_status_working_idle_offline_and_errors(board: Board, db: Path, clock: Clock) -> None:
    load_tasks(db, {"id": "a", "name": "A"})
    reg(board, "w")
    reg(board, "i")
    take(board, "w")
    assert board.get_agent_status("w").wire()["agent_info"]["status"] == "working"
    assert board.get_agent_status("i").wire()["agent_info"]["status"] == "idle"
    for _ in range(10):  # w keeps its lease alive with heartbeats; i stays silent
        clock.now += 9.5
        board.heartbeat("w")
    assert board.get_agent_status("i").wire()["agent_info"]["status"] == "offline"
    assert board.get_project_status().wire()["workers"] == {"total": 2, "working": 1, "idle": 0, "offline": 1}
    ghost = board.get_agent_status("ghost").wire()
    assert (ghost["success"], ghost["found"]) == (True, False)
    assert ghost["message"]
    with pytest.raises(BoardError) as exc:
        board.request_next_task("ghost")
    assert code(exc) == "agent_not_registered"
    with pytest.raises(BoardError) as exc:
        board.get_task_context("nope")
    assert code(exc) == "task_not_found"


def test_re_registering_keeps_the_held_task(board: Board, db: Path) -> None:
    load_tasks(db, {"id": "a", "name": "A"})
    reg(board, "w", "old")
    first = take(board, "w")
    reg(board, "w", "new")
    again = take(board, "w")
    assert first is not None
    assert again is not None
    assert again["lease"]["lease_id"] == first["lease"]["lease_id"]
    assert board.get_agent_status("w").wire()["agent_info"]["skills"] == ["new"]


def _vm_steps_per_cycle(db: Path, ready: int) -> tuple[float, Board]:
    """SQLite VM instructions per request+complete on a board with `ready` ready tasks.

    Counted with sqlite's progress handler: deterministic work, not wall-clock time, so the
    test says whether cost grows with the board without depending on machine load.
    """
    tasks = [
        {"id": f"t{i}", "name": f"T{i}", "required_skills": ["rare"] if i % 2 else []} for i in range(ready)
    ]
    # A long chain at the end: only its head is ready, the rest wait on pending_deps.
    tasks += [{"id": f"c{i}", "name": "C", "dependencies": [f"c{i - 1}"] if i else []} for i in range(2_000)]
    load_tasks(db, *tasks)
    board = Board(connect(db))
    board.register_agent("w", "W", "r", ["other"])
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    board.conn.set_progress_handler(count, 100)
    for _ in range(200):
        got = board.request_next_task("w").wire()["assignment"]
        board.report_task_progress("w", got["task_id"], "completed", 100, "ok")
    board.conn.set_progress_handler(None, 0)
    return steps * 100 / 200, board


def test_assignment_cost_does_not_grow_with_the_board(tmp_path: Path) -> None:
    """Picking and completing do not scan the board, even when most ready tasks need skills the agent lacks."""
    small, _ = _vm_steps_per_cycle(tmp_path / "small.db", 1_000)
    large, board = _vm_steps_per_cycle(tmp_path / "large.db", 50_000)
    print(f"sqlite VM steps per request+complete: {small:.0f} on 3k tasks, {large:.0f} on 52k tasks")
    assert large < 2 * small, (small, large)
    plan = " ".join(str(r[3]) for r in board.conn.execute("EXPLAIN QUERY PLAN " + READY_PROBE_SQL, ("[]",)))
    assert "USING INDEX tasks_ready" in plan
