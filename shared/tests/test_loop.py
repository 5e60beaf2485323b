"""The work loop against an in-memory fake board: outcomes, reconnects, shutdown, leases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from tenacity import stop_after_attempt, wait_none

from pm_worker import Assignment, PMClient, TaskBlocked, TaskContext, TransportError, Worker
from pm_worker.errors import InvalidArgument
from pm_worker.reconnect import reconnect_policy
from pm_worker.settings import WorkerSettings

from fakes import FakeBoard


def make_settings(tmp_path: Path, **kw: Any) -> WorkerSettings:
    base: dict[str, Any] = {"agent_id": "w-1", "workspace": tmp_path / "ws", "health_dir": tmp_path / "health",
                            "poll_wait_seconds": 0.05, "heartbeat_seconds": 0.05, "shutdown_grace_seconds": 0.3,
                            "reconnect_give_up_seconds": 5}
    base.update(kw)
    return WorkerSettings(**base)


class ScriptedWorker(Worker):
    role = "scripted"
    name = "Scripted"
    skills = ("scripted",)

    def __init__(self, settings: WorkerSettings, board: FakeBoard, behaviour: str = "ok",
                 work_seconds: float = 0.0) -> None:
        super().__init__(settings)
        self.board = board
        self.behaviour = behaviour
        self.work_seconds = work_seconds
        self.seen_checkpoints: list[Any] = []
        self.started = asyncio.Event()

    def make_client(self) -> PMClient:
        return PMClient(self.settings, self.identity, connect=self.board.connection,
                        retry_overrides={"wait": wait_none()})

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        self.seen_checkpoints.append(task.checkpoint)
        self.started.set()
        await ctx.progress(10, "starting")
        await ctx.checkpoint({"step": 1})
        if self.behaviour == "blocked":
            raise TaskBlocked("needs a database", severity="critical")
        if self.behaviour == "crash":
            raise ZeroDivisionError("division by zero")
        await asyncio.sleep(self.work_seconds)
        await ctx.artifact("note", "a note", location="x.md")
        return f"did {task.task_id}"


async def run_until(worker: Worker, predicate: Any, timeout: float = 5.0) -> int:
    runner = asyncio.create_task(worker.run())
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    worker.request_stop()
    async with asyncio.timeout(timeout):
        return await runner


async def test_completes_tasks_end_to_end(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1")
    board.add_task("t2")
    worker = ScriptedWorker(make_settings(tmp_path), board)
    code = await run_until(worker, lambda: all(t["status"] == "done" for t in board.tasks.values()))
    assert code == 0
    assert board.tool_names()[0] == "register_agent"
    assert board.tasks["t1"]["log"][-1] == ("completed", 100, "did t1")
    assert board.tasks["t1"]["artifacts"][0]["location"] == "x.md"
    assert worker.counters["completed"] == 2


async def test_task_blocked_becomes_blocker(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1")
    worker = ScriptedWorker(make_settings(tmp_path), board, behaviour="blocked")
    await run_until(worker, lambda: board.tasks["t1"]["status"] == "blocked")
    assert board.tasks["t1"]["blocker"] == ("needs a database", "critical")


async def test_unexpected_exception_becomes_blocker_with_its_message(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1")
    worker = ScriptedWorker(make_settings(tmp_path), board, behaviour="crash")
    await run_until(worker, lambda: board.tasks["t1"]["status"] == "blocked")
    assert board.tasks["t1"]["blocker"] == ("ZeroDivisionError: division by zero", "high")


async def test_connection_loss_reconnects_and_reregisters(tmp_path: Path) -> None:
    board = FakeBoard(fail_calls={3, 6})
    board.add_task("t1")
    worker = ScriptedWorker(make_settings(tmp_path), board)
    await run_until(worker, lambda: board.tasks["t1"]["status"] == "done")
    assert board.connects >= 3
    # every reconnect starts with a registration
    names = board.tool_names()
    assert names.count("register_agent") >= 3


async def test_stub_forgetting_the_agent_triggers_reregistration(tmp_path: Path) -> None:
    board = FakeBoard()
    worker = ScriptedWorker(make_settings(tmp_path), board)
    runner = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while "w-1" not in board.agents:
            await asyncio.sleep(0.01)
    board.agents.clear()  # a stub whose database was replaced
    board.add_task("t1")
    async with asyncio.timeout(5):
        while board.tasks["t1"]["status"] != "done":
            await asyncio.sleep(0.01)
    worker.request_stop()
    assert await runner == 0
    assert "w-1" in board.agents


async def test_shutdown_lets_a_short_task_finish(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1")
    worker = ScriptedWorker(make_settings(tmp_path, shutdown_grace_seconds=5), board, work_seconds=0.3)
    code = await run_until(worker, lambda: worker.started.is_set())
    assert code == 0
    assert board.tasks["t1"]["status"] == "done"


async def test_shutdown_releases_a_long_task_with_its_checkpoint(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1")
    worker = ScriptedWorker(make_settings(tmp_path, shutdown_grace_seconds=0.2), board, work_seconds=30)
    code = await run_until(worker, lambda: worker.started.is_set() and board.tasks["t1"]["checkpoint"])
    assert code == 0
    task = board.tasks["t1"]
    assert task["status"] == "todo"
    assert task["holder"] is None
    assert task["checkpoint"] == {"step": 1}
    assert "shut down" in task["released"]
    # a second worker resumes from the checkpoint
    other = ScriptedWorker(make_settings(tmp_path, agent_id="w-2"), board)
    await run_until(other, lambda: board.tasks["t1"]["status"] == "done")
    assert other.seen_checkpoints == [{"step": 1}]


async def test_lost_lease_stops_the_work_and_reports_nothing(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1")
    worker = ScriptedWorker(make_settings(tmp_path), board, work_seconds=30)
    runner = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not board.tasks["t1"]["checkpoint"]:
            await asyncio.sleep(0.01)
    board.tasks["t1"].update(holder="someone-else")  # the stub re-assigned it after an expiry
    async with asyncio.timeout(5):
        while worker.counters["fenced"] == 0:
            await asyncio.sleep(0.01)
    worker.request_stop()
    assert await runner == 0
    assert board.tasks["t1"]["status"] == "in_progress"
    assert board.tasks["t1"]["holder"] == "someone-else"


async def test_declined_task_is_released_not_dropped(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("t1", required_skills=["cobol"])
    worker = ScriptedWorker(make_settings(tmp_path), board)
    await run_until(worker, lambda: worker.counters["declined"] >= 1)
    assert board.tasks["t1"]["status"] == "todo"
    assert "declined" in board.tasks["t1"]["released"]


async def test_health_record_is_written_while_running(tmp_path: Path) -> None:
    from pm_worker import health

    board = FakeBoard()
    settings = make_settings(tmp_path)
    worker = ScriptedWorker(settings, board)
    runner = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not health.check(settings.health_dir, "w-1")[0]:
            await asyncio.sleep(0.01)
    worker.request_stop()
    await runner
    assert health.check(settings.health_dir, "w-1")[0] is False


async def test_retry_policy_retries_transport_errors_only() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransportError("down")
        return "up"

    async for attempt in reconnect_policy(60, wait=wait_none()):
        with attempt:
            result = await flaky()
    assert (result, attempts) == ("up", 3)

    tool_errors = 0
    with pytest.raises(InvalidArgument):
        async for attempt in reconnect_policy(60, wait=wait_none()):
            with attempt:
                tool_errors += 1
                raise InvalidArgument("bad")
    assert tool_errors == 1


async def test_retry_policy_gives_up() -> None:
    tries = 0
    with pytest.raises(TransportError):
        async for attempt in reconnect_policy(60, wait=wait_none(), stop=stop_after_attempt(4)):
            with attempt:
                tries += 1
                raise TransportError("still down")
    assert tries == 4


def test_default_policy_has_a_stop_and_a_capped_jittered_wait() -> None:
    policy = reconnect_policy(30)
    assert "stop_after_delay" in type(policy.stop).__name__
    assert "wait_random_exponential" in type(policy.wait).__name__
    assert policy.wait.max == 10.0  # type: ignore[attr-defined]


async def test_concurrent_callers_share_one_reconnect(tmp_path: Path) -> None:
    board = FakeBoard()
    settings = make_settings(tmp_path)
    worker = ScriptedWorker(settings, board)
    client = worker.make_client()
    await client.register()
    board.fail_calls = {len(board.calls) + 1}  # the next call loses the connection
    await asyncio.gather(*(client.heartbeat() for _ in range(5)))
    assert board.connects == 2  # the first connect and exactly one reconnect
    await client.aclose()


async def test_stop_releases_a_task_held_from_a_previous_life(tmp_path: Path) -> None:
    """A restarted worker (same id) that is stopped before asking for work gives back what it held."""
    board = FakeBoard()
    board.add_task("t1")
    board.agents["w-1"] = {"agent_id": "w-1"}
    board.tasks["t1"].update(status="in_progress", holder="w-1", attempt=1)
    worker = ScriptedWorker(make_settings(tmp_path), board)
    # stopped right after registering, before its first request_next_task
    board.after_call = lambda name, _args: worker.request_stop() if name == "register_agent" else None
    assert await worker.run() == 0
    assert "request_next_task" not in board.tool_names()
    assert board.tasks["t1"]["status"] == "todo"
    assert board.tasks["t1"]["holder"] is None


class StrictPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = "pytest"


class PayloadWorker(ScriptedWorker):
    payload_model = StrictPayload

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        self.seen_checkpoints.append(ctx.payload)
        return f"ran {ctx.payload.command}"


async def test_payload_model_hands_over_the_parsed_payload_and_blocks_on_a_misspelt_key(tmp_path: Path) -> None:
    board = FakeBoard()
    board.add_task("good", payload={"command": "make check"})
    board.add_task("typo", payload={"comand": "make check"})
    worker = PayloadWorker(make_settings(tmp_path), board)
    code = await run_until(worker, lambda: all(t["status"] in ("done", "blocked") for t in board.tasks.values()))
    assert code == 0
    assert board.tasks["good"]["status"] == "done"
    assert board.tasks["good"]["log"][-1][2] == "ran make check"
    assert board.tasks["typo"]["status"] == "blocked"
    text = board.tasks["typo"]["blocker"][0]
    assert "unknown field 'comand'" in text
    assert "accepted fields: command" in text
    assert worker.seen_checkpoints == [StrictPayload(command="make check")]  # execute never ran for the typo
