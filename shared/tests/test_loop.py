"""The work loop against the real stub in memory: outcomes, reconnects, shutdown, leases."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from tenacity import stop_after_attempt, wait_none

from pm_worker import Assignment, PMClient, TaskBlocked, TaskContext, TransportError, Worker
from pm_worker.errors import InvalidArgument
from pm_worker.reconnect import reconnect_policy
from pm_worker.settings import WorkerSettings
from pm_worker.testing import RunningStub, StubKit

from fakes import Recorder


def make_settings(tmp_path: Path, **kw: Any) -> WorkerSettings:
    base: dict[str, Any] = {
        "agent_id": "w-1",
        "workspace": tmp_path / "ws",
        "health_dir": tmp_path / "health",
        "poll_wait_seconds": 0.05,
        "heartbeat_seconds": 0.05,
        "shutdown_grace_seconds": 0.3,
        "reconnect_give_up_seconds": 5,
    }
    base.update(kw)
    return WorkerSettings(**base)


def task(task_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "name": task_id, "required_skills": ["scripted"], **fields}


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[RunningStub]:
    async with StubKit(tmp_path / "kit").serve() as running:
        yield running


class ScriptedWorker(Worker):
    role = "scripted"
    name = "Scripted"
    skills = ("scripted",)

    def __init__(
        self,
        settings: WorkerSettings,
        stub: RunningStub,
        behaviour: str = "ok",
        work_seconds: float = 0.0,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(settings)
        self.recorder = recorder or Recorder(stub.connect)
        self.connect = self.recorder.connection
        self.behaviour = behaviour
        self.work_seconds = work_seconds
        self.seen_checkpoints: list[Any] = []
        self.started = asyncio.Event()

    def make_client(self) -> PMClient:
        return PMClient(
            self.settings, self.identity, connect=self.connect, retry_overrides={"wait": wait_none()}
        )

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


async def wait_for(
    stub: RunningStub, predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0
) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await stub.changed(within=0.02)


async def run_until(
    worker: Worker, stub: RunningStub, predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0
) -> int:
    runner = asyncio.create_task(worker.run())
    await wait_for(stub, predicate, timeout)
    worker.request_stop()
    async with asyncio.timeout(timeout):
        return await runner


def statuses(stub: RunningStub, *wanted: str) -> Callable[[], Awaitable[bool]]:
    """A predicate: every task on the board has one of `wanted` statuses."""

    async def check() -> bool:
        tasks = [await stub.task(tid) for tid in stub.task_ids]
        return all(t.task.status in wanted for t in tasks)

    return check


async def test_completes_tasks_end_to_end(tmp_path: Path, stub: RunningStub) -> None:
    stub.load([task("t1"), task("t2")])
    worker = ScriptedWorker(make_settings(tmp_path), stub)
    code = await run_until(worker, stub, statuses(stub, "done"))
    assert code == 0
    assert worker.recorder.tool_names()[0] == "register_agent"
    t1 = await stub.task("t1")
    last = t1.progress_log[-1]
    assert (last.status, last.progress, last.message) == ("completed", 100, "did t1")
    assert t1.artifacts[0].location == "x.md"
    assert worker.counters["completed"] == 2


async def test_task_blocked_becomes_blocker(tmp_path: Path, stub: RunningStub) -> None:
    stub.load([task("t1")])
    worker = ScriptedWorker(make_settings(tmp_path), stub, behaviour="blocked")
    await run_until(worker, stub, statuses(stub, "blocked"))
    blocker = (await stub.task("t1")).blockers[0]
    assert (blocker.description, blocker.severity) == ("needs a database", "critical")


async def test_unexpected_exception_becomes_blocker_with_its_message(
    tmp_path: Path, stub: RunningStub
) -> None:
    stub.load([task("t1")])
    worker = ScriptedWorker(make_settings(tmp_path), stub, behaviour="crash")
    await run_until(worker, stub, statuses(stub, "blocked"))
    blocker = (await stub.task("t1")).blockers[0]
    assert (blocker.description, blocker.severity) == ("ZeroDivisionError: division by zero", "high")


async def test_connection_loss_reconnects_and_reregisters(tmp_path: Path, stub: RunningStub) -> None:
    stub.load([task("t1")])
    recorder = Recorder(stub.connect, fail_calls={3, 6})
    worker = ScriptedWorker(make_settings(tmp_path), stub, recorder=recorder)
    await run_until(worker, stub, statuses(stub, "done"))
    assert recorder.connects >= 3
    # every reconnect starts with a registration
    assert recorder.tool_names().count("register_agent") >= 3


def forget_agent(db: Path, agent_id: str) -> None:
    """What a stub whose database was replaced knows of the agent: nothing."""
    conn = sqlite3.connect(str(db), timeout=15)
    try:
        with conn:
            conn.execute("DELETE FROM agents WHERE agent_id = ?", (agent_id,))
    finally:
        conn.close()


async def registered(stub: RunningStub, agent_id: str) -> bool:
    listed = await stub.call("list_registered_agents")
    return any(a["agent_id"] == agent_id for a in listed["agents"])


async def test_stub_forgetting_the_agent_triggers_reregistration(tmp_path: Path, stub: RunningStub) -> None:
    worker = ScriptedWorker(make_settings(tmp_path), stub)
    runner = asyncio.create_task(worker.run())
    await wait_for(stub, lambda: registered(stub, "w-1"))
    forget_agent(stub.db, "w-1")
    assert not await registered(stub, "w-1")
    stub.load([task("t1")])
    await wait_for(stub, statuses(stub, "done"))
    worker.request_stop()
    assert await runner == 0
    assert await registered(stub, "w-1")


async def test_shutdown_lets_a_short_task_finish(tmp_path: Path, stub: RunningStub) -> None:
    stub.load([task("t1")])
    worker = ScriptedWorker(make_settings(tmp_path, shutdown_grace_seconds=5), stub, work_seconds=0.3)

    async def started() -> bool:
        return worker.started.is_set()

    code = await run_until(worker, stub, started)
    assert code == 0
    assert (await stub.task("t1")).task.status == "done"


async def test_a_stopped_worker_deregisters_and_shows_offline_at_once(
    tmp_path: Path, stub: RunningStub
) -> None:
    stub.load([task("t1")])
    worker = ScriptedWorker(make_settings(tmp_path), stub)
    assert await run_until(worker, stub, statuses(stub, "done")) == 0
    assert worker.recorder.tool_names()[-1] == "deregister_agent"
    gone = await stub.call("get_agent_status", {"agent_id": "w-1"})
    assert gone["agent_info"]["status"] == "offline"  # not "idle" for PM_AGENT_OFFLINE_SECONDS
    # The same id comes back by registering again (a restarted container keeps its id).
    again = ScriptedWorker(make_settings(tmp_path), stub)
    stub.load([task("t2")])
    assert await run_until(again, stub, statuses(stub, "done")) == 0
    assert again.recorder.tool_names()[0] == "register_agent"


async def test_shutdown_releases_a_long_task_with_its_checkpoint(tmp_path: Path, stub: RunningStub) -> None:
    stub.load([task("t1")])
    worker = ScriptedWorker(make_settings(tmp_path, shutdown_grace_seconds=0.2), stub, work_seconds=30)

    async def checkpointed() -> bool:
        return worker.started.is_set() and bool((await stub.task("t1")).task.checkpoint)

    code = await run_until(worker, stub, checkpointed)
    assert code == 0
    t1 = await stub.task("t1")
    assert t1.task.status == "todo"
    assert t1.task.holder is None
    assert t1.task.checkpoint == {"step": 1}
    assert "shut down" in t1.progress_log[-1].message
    assert t1.progress_log[-1].status == "released"
    # a second worker resumes from the checkpoint
    other = ScriptedWorker(make_settings(tmp_path, agent_id="w-2"), stub)
    await run_until(other, stub, statuses(stub, "done"))
    assert other.seen_checkpoints == [{"step": 1}]


async def test_lost_lease_stops_the_work_and_reports_nothing(tmp_path: Path) -> None:
    async with StubKit(tmp_path / "kit").serve([task("t1")], lease_seconds=1.0, max_attempts=100) as stub:
        # Heartbeats too rare for the lease: it expires while the work runs, and another agent takes the task.
        worker = ScriptedWorker(make_settings(tmp_path, heartbeat_seconds=3.0), stub, work_seconds=60)
        runner = asyncio.create_task(worker.run())
        other = {"agent_id": "someone-else"}
        await stub.call(
            "register_agent", {**other, "name": "other", "role": "scripted", "skills": ["scripted"]}
        )

        async def taken_by_someone_else() -> bool:
            if worker.started.is_set():
                await stub.call("request_next_task", other)
            return (await stub.task("t1")).task.holder == "someone-else"

        await wait_for(stub, taken_by_someone_else)

        async def fenced() -> bool:
            await stub.call("heartbeat", other)  # the new holder keeps its lease
            return worker.counters["fenced"] > 0

        await wait_for(stub, fenced)
        t1 = await stub.task("t1")
        assert t1.task.status == "in_progress"
        assert t1.task.holder == "someone-else"
        worker.request_stop()
        assert await runner == 0
        t1 = await stub.task("t1")
        assert not [e for e in t1.progress_log if e.agent_id == "w-1" and e.status != "in_progress"]
        assert not t1.blockers


class PickyWorker(ScriptedWorker):
    def should_accept_task(self, task: Assignment) -> bool:
        return not task.payload.get("decline")


async def test_declined_task_is_released_not_dropped(tmp_path: Path, stub: RunningStub) -> None:
    stub.load([task("t1", payload={"decline": True})])
    worker = PickyWorker(make_settings(tmp_path), stub)

    async def declined() -> bool:
        return worker.counters["declined"] >= 1

    await run_until(worker, stub, declined)
    t1 = await stub.task("t1")
    assert t1.task.status == "todo"
    assert "declined" in t1.progress_log[-1].message


async def test_health_record_is_written_while_running(tmp_path: Path, stub: RunningStub) -> None:
    from pm_worker import health

    settings = make_settings(tmp_path)
    worker = ScriptedWorker(settings, stub)
    runner = asyncio.create_task(worker.run())

    async def healthy() -> bool:
        return health.check(settings.health_dir, "w-1")[0]

    await wait_for(stub, healthy)
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


async def test_concurrent_callers_share_one_reconnect(tmp_path: Path, stub: RunningStub) -> None:
    worker = ScriptedWorker(make_settings(tmp_path), stub)
    client = worker.make_client()
    await client.register()
    worker.recorder.fail_calls = {len(worker.recorder.calls) + 1}  # the next call loses the connection
    await asyncio.gather(*(client.heartbeat() for _ in range(5)))
    assert worker.recorder.connects == 2  # the first connect and exactly one reconnect
    await client.aclose()


async def test_stop_releases_a_task_held_from_a_previous_life(tmp_path: Path, stub: RunningStub) -> None:
    """A restarted worker (same id) that is stopped before asking for work gives back what it held."""
    stub.load([task("t1")])
    await stub.call(
        "register_agent", {"agent_id": "w-1", "name": "Scripted", "role": "scripted", "skills": ["scripted"]}
    )
    held = await stub.call("request_next_task", {"agent_id": "w-1"})
    assert held["assignment"]["task_id"] == "t1"
    worker = ScriptedWorker(make_settings(tmp_path), stub)
    # stopped right after registering, before its first request_next_task
    worker.recorder.after_call = lambda name, _args: (
        worker.request_stop() if name == "register_agent" else None
    )
    assert await worker.run() == 0
    assert "request_next_task" not in worker.recorder.tool_names()
    t1 = await stub.task("t1")
    assert t1.task.status == "todo"
    assert t1.task.holder is None


class StrictPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = "pytest"


class PayloadWorker(ScriptedWorker):
    payload_model = StrictPayload

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        self.seen_checkpoints.append(ctx.payload)
        return f"ran {ctx.payload.command}"


async def test_payload_model_hands_over_the_parsed_payload_and_blocks_on_a_misspelt_key(
    tmp_path: Path, stub: RunningStub
) -> None:
    stub.load(
        [task("good", payload={"command": "make check"}), task("typo", payload={"comand": "make check"})]
    )
    worker = PayloadWorker(make_settings(tmp_path), stub)
    code = await run_until(worker, stub, statuses(stub, "done", "blocked"))
    assert code == 0
    good, typo = await stub.task("good"), await stub.task("typo")
    assert good.task.status == "done"
    assert good.progress_log[-1].message == "ran make check"
    assert typo.task.status == "blocked"
    text = typo.blockers[0].description
    assert "unknown field 'comand'" in text
    assert "accepted fields: command" in text
    assert worker.seen_checkpoints == [StrictPayload(command="make check")]  # execute never ran for the typo
