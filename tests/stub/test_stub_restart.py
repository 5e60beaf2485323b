"""kill -9 mid-run and restart on the same file: nothing acknowledged is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import mcp
import pytest

from pm_agent_stub.testing import call_tool, load_tasks, read_events, task

pytestmark = pytest.mark.anyio


def lease_row(db: Path, tid: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(str(db), timeout=15)
    try:
        return tuple(
            conn.execute(
                "SELECT status, holder, lease_id, lease_expires_at, attempt, checkpoint FROM tasks WHERE task_id = ?",
                (tid,),
            ).fetchone()
        )
    finally:
        conn.close()


async def test_kill_9_and_restart_keeps_every_acknowledged_change(stub_factory: Any, tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    load_tasks(
        db, task("done-before", "s"), task("held", "s"), task("dependent", "s", dependencies=["done-before"])
    )
    first = stub_factory(db)
    async with mcp.Client(first.url) as c:
        await call_tool(c, "register_agent", {"agent_id": "w", "name": "n", "role": "r", "skills": ["s"]})
        a = (await call_tool(c, "request_next_task", {"agent_id": "w"}))["assignment"]
        assert a["task_id"] == "done-before"
        await call_tool(c, "log_artifact", {"agent_id": "w", "task_id": "done-before", "artifact_type": "report",
                                            "description": "r", "data": {"ok": True}})  # fmt: skip
        await call_tool(c, "report_task_progress", {"agent_id": "w", "task_id": "done-before", "status": "completed",
                                                    "progress": 100, "message": "ok"})  # fmt: skip
        held = (await call_tool(c, "request_next_task", {"agent_id": "w"}))["assignment"]
        ack = await call_tool(c, "report_task_progress", {"agent_id": "w", "task_id": "held", "status": "in_progress",
                                                          "progress": 60, "message": "m", "checkpoint": {"step": 6}})  # fmt: skip
        assert ack["acknowledged"]
    before = lease_row(db, "held")
    first.kill()  # SIGKILL: no shutdown code runs

    second = stub_factory(db)
    assert lease_row(db, "held") == before  # the lease kept its wall-clock expiry across the restart
    async with mcp.Client(second.url) as c:
        status = (await call_tool(c, "get_project_status", {}))["project_status"]
        assert (status["done"], status["in_progress"], status["todo"]) == (1, 1, 1)
        # The holder continues: same lease back with its checkpoint, and its reports are accepted.
        again = (await call_tool(c, "request_next_task", {"agent_id": "w"}))["assignment"]
        assert again["task_id"] == "held"
        assert again["lease"]["lease_id"] == held["lease"]["lease_id"]
        assert again["checkpoint"] == {"step": 6}
        assert again["attempt"] == 1
        done = await call_tool(c, "report_task_progress", {"agent_id": "w", "task_id": "held", "status": "completed",
                                                           "progress": 100, "message": "ok"})  # fmt: skip
        assert done["status"] == "task_completed"
        dep = (await call_tool(c, "request_next_task", {"agent_id": "w"}))["assignment"]
        assert dep["task_id"] == "dependent"
        assert dep["dependency_artifacts"][0]["data"] == {"ok": True}
        repeat = await call_tool(c, "report_task_progress", {"agent_id": "w", "task_id": "done-before",
                                                             "status": "completed", "progress": 100, "message": "ok"})  # fmt: skip
        assert repeat["status"] == "already_complete"
    assert len(read_events(db, kind="completed", task_id="done-before")) == 1
    assert len(read_events(db, kind="assigned", task_id="held")) == 1


async def test_a_lease_that_expires_while_the_stub_is_down_is_swept_after_restart(
    stub_factory: Any, tmp_path: Path
) -> None:
    db = tmp_path / "down.db"
    load_tasks(db, task("t", "s"))
    env = {"PM_LEASE_SECONDS": "0.5"}
    first = stub_factory(db, env=env)
    async with mcp.Client(first.url) as c:
        await call_tool(c, "register_agent", {"agent_id": "old", "name": "n", "role": "r", "skills": ["s"]})
        await call_tool(c, "request_next_task", {"agent_id": "old"})
    first.kill()
    second = stub_factory(db, env=env)  # startup alone takes longer than the 0.5 s lease
    async with mcp.Client(second.url) as c:
        await call_tool(c, "register_agent", {"agent_id": "new", "name": "n", "role": "r", "skills": ["s"]})
        got = (await call_tool(c, "request_next_task", {"agent_id": "new"}))["assignment"]
        assert got["task_id"] == "t"
        assert got["attempt"] == 2
        fenced = await call_tool(c, "heartbeat", {"agent_id": "old"})
        assert fenced["current_task"] is None
