"""pm_worker against the real stub process over real HTTP, with real worker processes.

What a user relies on: a worker registers and finishes tasks; it survives the stub being
killed and restarted without being restarted itself; SIGTERM mid-task gives the task
back with its checkpoint and another worker resumes from exactly there.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import mcp
import pytest

from pm_agent_stub.testing import call_tool, load_tasks, read_events, start_stub, task, wait_until
from tests.helpers import REPO_ROOT
from tests.integration.workerproc import STEP_WORKER, board, start_worker


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def test_register_and_finish_tasks_in_dependency_order(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "board.db"
    load_tasks(
        db,
        task("first", "steps", payload={"steps": 2, "ledger": "ledger.txt"}),
        task("second", "steps", dependencies=["first"], payload={"steps": 1, "ledger": "ledger.txt"}),
    )
    stub = start_stub(db)
    worker = start_worker(
        [str(STEP_WORKER)],
        tmp_path / "w.log",
        PM_AGENT_URL=f"127.0.0.1:{stub.port}",
        AGENT_ID="steps-{hostname}",
        WORKSPACE=str(workspace),
        MAX_TASKS="2",
    )
    try:
        assert worker.proc.wait(timeout=60) == 0, worker.logs()
        status = board(db)
        assert status["project_status"]["done"] == 2
        agent = status["agents"][0]
        assert agent["agent_id"].startswith("steps-")
        assert "{hostname}" not in agent["agent_id"]
        assert agent["skills"] == ["steps"]
        lines = (workspace / "ledger.txt").read_text().splitlines()
        assert [line.split(" by ")[0] for line in lines] == ["first step 0", "first step 1", "second step 0"]
        completed = read_events(db, "completed")
        assert [e["task_id"] for e in completed] == ["first", "second"]
    finally:
        worker.kill()
        stub.stop()


def test_worker_survives_stub_kill_and_restart(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "board.db"
    # 16 tasks of 0.6 s: the kill must land mid-run even when a busy machine makes the board
    # reads below slow (with 8, the worker once finished them all before the kill).
    tasks = [task(f"t{i}", "steps", payload={"steps": 4, "step_seconds": 0.15}) for i in range(16)]
    load_tasks(db, *tasks)
    stub = start_stub(db)
    port = stub.port
    worker = start_worker(
        [str(STEP_WORKER)],
        tmp_path / "w.log",
        PM_AGENT_URL=f"http://127.0.0.1:{port}",
        AGENT_ID="survivor",
        WORKSPACE=str(workspace),
    )
    try:
        wait_until(lambda: board(db)["project_status"]["done"] >= 2, 60, message="two tasks done")
        stub.kill()  # SIGKILL, mid-run: the worker is in the middle of a task
        done_before = board(db)["project_status"]["done"]
        assert done_before < len(tasks)
        stub = start_stub(db, port=port)  # same address, same file
        wait_until(
            lambda: board(db)["project_status"]["done"] == len(tasks),
            90,
            message="all tasks done after restart",
        )
        assert worker.alive(), "the worker must not need a restart"
        events = [e["event"] for e in worker.events()]
        assert "reconnected" in events
        # nothing done twice: one accepted completion per task
        completions = [e["task_id"] for e in read_events(db, "completed")]
        assert sorted(completions) == sorted(t["id"] for t in tasks)
    finally:
        worker.kill()
        stub.stop()


async def test_sigterm_releases_with_checkpoint_and_another_worker_resumes(
    tmp_path: Path, workspace: Path
) -> None:
    db = tmp_path / "board.db"
    load_tasks(db, task("long", "steps", payload={"steps": 12, "step_seconds": 0.25, "ledger": "ledger.txt"}))
    stub = start_stub(db)
    url = f"127.0.0.1:{stub.port}"
    first = start_worker(
        [str(STEP_WORKER)],
        tmp_path / "a.log",
        PM_AGENT_URL=url,
        AGENT_ID="steps-a",
        WORKSPACE=str(workspace),
        SHUTDOWN_GRACE_SECONDS="0.3",
    )
    second = None
    try:
        async with mcp.Client(stub.url) as client:

            async def checkpoint() -> int:
                ctx = await call_tool(client, "get_task_context", {"task_id": "long"})
                return int((ctx["task"].get("checkpoint") or {}).get("next_step", 0))

            deadline_steps = 0
            for _ in range(400):
                deadline_steps = await checkpoint()
                if deadline_steps >= 3:
                    break
                await __import__("asyncio").sleep(0.05)
            assert deadline_steps >= 3, first.logs()
            assert first.terminate(timeout=30) == 0, first.logs()
            released = read_events(db, "released", "long")
            assert len(released) == 1
            assert released[0]["agent_id"] == "steps-a"
            stored = await checkpoint()
            assert stored >= 3
            ctx = await call_tool(client, "get_task_context", {"task_id": "long"})
            assert ctx["task"]["status"] == "todo"
            assert ctx["task"].get("holder") in (None, "")

            second = start_worker(
                [str(STEP_WORKER)],
                tmp_path / "b.log",
                PM_AGENT_URL=url,
                AGENT_ID="steps-b",
                WORKSPACE=str(workspace),
                MAX_TASKS="1",
            )
            assert second.proc.wait(timeout=60) == 0, second.logs()
            ctx = await call_tool(client, "get_task_context", {"task_id": "long"})
            assert ctx["task"]["status"] == "done"
            final = [p["message"] for p in ctx["progress_log"] if p["status"] == "completed"]
            assert final == [f"12 steps done, resumed from step {stored}"]
        ledger = (workspace / "ledger.txt").read_text().splitlines()
        by_b = [line for line in ledger if "by steps-b" in line]
        assert by_b[0].startswith(f"long step {stored} ")
        assert len(ledger) == 12  # no step lost, none repeated
        worker_events = [e["event"] for e in first.events()]
        assert "task_released" in worker_events
        assert "worker_stopped" in worker_events
    finally:
        first.kill()
        if second is not None:
            second.kill()
        stub.stop()


def test_worker_over_stdio_spawns_its_own_stub(tmp_path: Path, workspace: Path) -> None:
    db = tmp_path / "board.db"
    load_tasks(db, task("via-stdio", "steps", payload={"steps": 1}))
    worker = start_worker(
        [str(STEP_WORKER)],
        tmp_path / "w.log",
        PM_TRANSPORT="stdio",
        PM_STDIO_COMMAND=f"python -m pm_agent_stub serve --transport stdio --db {db}",
        AGENT_ID="stdio-worker",
        WORKSPACE=str(workspace),
        MAX_TASKS="1",
    )
    try:
        assert worker.proc.wait(timeout=60) == 0, worker.logs()
        assert board(db)["by_id"]["via-stdio"]["status"] == "done"
    finally:
        worker.kill()


def test_tutorial_worker_runs_unchanged(tmp_path: Path) -> None:
    """The upstream tutorial's worker, as written: over stdio it spawns `python pm_agent_mcp_server.py`
    from its working folder (the SDK passes the child no PM_* variables, so the board is the
    default `./pm_agent.db` there) and finishes an API docs task."""
    shutil.copy(REPO_ROOT / "pm_agent_mcp_server.py", tmp_path / "pm_agent_mcp_server.py")
    db = tmp_path / "pm_agent.db"
    load_tasks(db, task("api-docs", "documentation", name="Write the API documentation"))
    bin_dir = str(Path(sys.executable).parent)  # its `python` must be this environment's
    worker = start_worker(
        [str(REPO_ROOT / "examples" / "tutorial_worker.py")],
        tmp_path / "tutorial.log",
        cwd=tmp_path,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    try:
        wait_until(
            lambda: board(db)["by_id"]["api-docs"]["status"] == "done",
            60,
            message="tutorial worker completes the task",
        )
        assert "Registered as Documentation Worker" in worker.logs()
        assert "Received task: Write the API documentation" in worker.logs()
        assert len(read_events(db, "completed", "api-docs")) == 1
        progress = [e for e in read_events(db, task_id="api-docs") if e["kind"] == "completed"]
        assert progress[0]["agent_id"] == "doc-worker-001"
    finally:
        worker.kill()
