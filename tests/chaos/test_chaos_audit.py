"""The chaos audit must be able to fail: a scripted run passes, each planted fault is caught.

A tiny board is driven in process with a controlled clock (no processes, milliseconds),
exactly as a chaos run leaves it: a worker killed mid-task, its lease expiring, another
worker resuming from the checkpoint. Then one thing at a time is made wrong.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.project_file import parse_project
from tests.chaos.audit import audit
from tests.chaos.chaos import ChaosConfig, ChaosRun, KillRecord

LEASE = 3.0
T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


PROJECT = [
    {"id": "c0000", "name": "A", "required_skills": ["steps"], "dependencies": [], "payload": {"steps": 3}},
    {
        "id": "c0001",
        "name": "B",
        "required_skills": ["steps"],
        "dependencies": ["c0000"],
        "payload": {"steps": 2},
    },
]


def _scripted_run(db: Path, *, resumed_from: int = 1, reoffer_after: float = LEASE + 0.01) -> ChaosRun:
    """w1 takes A, stores step 1, is SIGKILLed; the lease expires; w2 resumes A from 1, then does B."""
    clock = Clock()
    board = Board(connect(db), lease_seconds=LEASE, max_attempts=100, clock=clock)
    board.load_project(parse_project(yaml.safe_dump({"tasks": PROJECT}), "p.yaml"), "p.yaml")
    for agent in ("w1", "w2"):
        board.register_agent(agent, agent, "steps", ["steps"])

    def tick(seconds: float = 0.1) -> None:
        clock.now += seconds

    assert board.request_next_task("w1").wire()["assignment"]["task_id"] == "c0000"
    tick()
    board.report_task_progress("w1", "c0000", "in_progress", 0, "step 1/3 done", {"next_step": 1})
    killed_at = clock.now + 0.01
    kill = KillRecord("w1", killed_at, "c0000", clock.now + LEASE, "w1")
    tick(reoffer_after)
    board.sweep()
    tick()
    offer = board.request_next_task("w2").wire()["assignment"]
    assert offer["checkpoint"] == {"next_step": 1}
    for step in (2, 3):
        tick()
        board.report_task_progress(
            "w2", "c0000", "in_progress", 0, f"step {step}/3 done", {"next_step": step}
        )
    tick()
    board.report_task_progress(
        "w2", "c0000", "completed", 100, f"3 steps done, resumed from step {resumed_from}"
    )
    tick()
    assert board.request_next_task("w2").wire()["assignment"]["task_id"] == "c0001"
    for step in (1, 2):
        tick()
        board.report_task_progress(
            "w2", "c0001", "in_progress", 0, f"step {step}/2 done", {"next_step": step}
        )
    tick()
    board.report_task_progress("w2", "c0001", "completed", 100, "2 steps done, resumed from step 0")
    board.conn.close()
    cfg = ChaosConfig(tasks=2, workers=2, kill_every=1, stub_restarts=0, timeout=1, lease_seconds=LEASE)
    run = ChaosRun(cfg=cfg, db=db, project=[dict(t) for t in PROJECT], started_at=T0, finished_at=clock.now)
    run.kills.append(kill)
    return run


def test_scripted_run_passes(tmp_path: Path) -> None:
    figures = audit(_scripted_run(tmp_path / "b.db"))
    assert figures["reoffers_after_kill"] == 1
    assert figures["resumed_from_checkpoint"] == 1


def test_resume_from_the_wrong_step_is_caught(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="resumed from step 0, but the checkpoint stored"):
        audit(_scripted_run(tmp_path / "b.db", resumed_from=0))


def test_late_reoffer_is_caught(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="past the deadline"):
        audit(_scripted_run(tmp_path / "b.db", reoffer_after=LEASE + 5))


def test_late_reoffer_while_the_stub_was_down_is_allowed(tmp_path: Path) -> None:
    run = _scripted_run(tmp_path / "b.db", reoffer_after=LEASE + 5)
    kill = run.kills[0]
    run.downtimes.append((kill.killed_at + 1, kill.killed_at + LEASE + 4.5))
    audit(run)


def test_second_completion_and_non_holder_completion_are_caught(tmp_path: Path) -> None:
    run = _scripted_run(tmp_path / "b.db")
    with sqlite3.connect(run.db) as conn:
        conn.execute(
            "INSERT INTO events (kind, task_id, agent_id, attempt, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
            ("completed", "c0001", "w1", 1, run.finished_at + 1, json.dumps({"lease_id": "forged"})),
        )
    with pytest.raises(AssertionError) as caught:
        audit(run)
    assert "c0001: completion accepted 2 times" in str(caught.value)
    assert "completion accepted from w1" in str(caught.value)


def test_assignment_before_a_dependency_completed_is_caught(tmp_path: Path) -> None:
    run = _scripted_run(tmp_path / "b.db")
    run.project[0]["dependencies"] = ["c0001"]  # claim A needed B, which was completed after A was assigned
    with pytest.raises(
        AssertionError, match=r"c0000: assigned \(event \d+\) before dependencies \['c0001'\]"
    ):
        audit(run)


def test_unfinished_task_is_caught(tmp_path: Path) -> None:
    run = _scripted_run(tmp_path / "b.db")
    with sqlite3.connect(run.db) as conn:
        conn.execute(
            "UPDATE tasks SET status = 'todo', completed_by = NULL, completed_at = NULL WHERE task_id = 'c0001'"
        )
    with pytest.raises(AssertionError, match="1 tasks not done"):
        audit(run)
