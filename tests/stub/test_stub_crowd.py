"""A crowd of 200+ real long-polling agents on one stub: wake-ups are counted, never timed.

Each crowd is a `python -m bench.crowd_agents` process of real MCP clients over HTTP. The
stub counts, in one place each (served on /healthz): request_next_task transactions and
assignments (`Board.counters`), sleepers woken and looks after a wake-up that found nothing
(`Notifier.counters`). The broadcast this replaced woke every sleeper on every change: one
task for 200 sleepers cost 200 transactions.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp
import pytest

from pm_agent_stub.testing import (
    StubProcess,
    call_tool,
    load_tasks,
    read_events,
    run_cli,
    task,
    tasks_yaml,
    wait_until,
)
from tests.stub.crowd import Crowd, counters, delta, health, wait_sleeping

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(420)]


async def register(client: Any, agent_id: str, skills: list[str]) -> None:
    await call_tool(
        client, "register_agent", {"agent_id": agent_id, "name": agent_id, "role": "r", "skills": skills}
    )


async def take(client: Any, agent_id: str) -> str:
    answer = await call_tool(client, "request_next_task", {"agent_id": agent_id})
    assert answer["has_task"], answer
    return str(answer["assignment"]["task_id"])


async def complete(client: Any, agent_id: str, task_id: str) -> None:
    answer = await call_tool(
        client,
        "report_task_progress",
        {"agent_id": agent_id, "task_id": task_id, "status": "completed", "progress": 100, "message": "done"},
    )
    assert answer["status"] == "task_completed", answer


def assigned_once(db: Path, task_ids: list[str]) -> Counter[str]:
    """How many times each task was assigned (every event of the board's log)."""
    return Counter(e["task_id"] for e in read_events(db, kind="assigned") if e["task_id"] in task_ids)


def double_assignments(db: Path) -> list[str]:
    """Tasks assigned while someone still held them, from the board's event log."""
    holder: dict[str, str | None] = {}
    doubles = []
    for e in read_events(db):
        if e["kind"] == "assigned":
            if holder.get(e["task_id"]) is not None:
                doubles.append(e["task_id"])
            holder[e["task_id"]] = e["agent_id"]
        elif e["kind"] in ("completed", "expired", "released", "blocked"):
            holder[e["task_id"]] = None
    return doubles


async def test_a_completion_wakes_exactly_as_many_agents_as_tasks_it_freed(
    stub_factory: Callable[..., StubProcess], tmp_path: Path
) -> None:
    stub = stub_factory()
    deps = [f"d{i}" for i in range(5)]
    load_tasks(stub.db, task("base", "holder-skill"), *(task(d, "a", dependencies=["base"]) for d in deps))
    async with mcp.Client(stub.url) as holder:
        await register(holder, "holder", ["holder-skill"])
        assert await take(holder, "holder") == "base"
        crowd_a = Crowd(stub, "a-", 120, ["a"], log_dir=tmp_path)
        crowd_b = Crowd(stub, "b-", 100, ["b"], log_dir=tmp_path)
        try:
            wait_sleeping(stub, 220)
            before = counters(stub)
            await complete(holder, "holder", "base")  # frees the five `a` tasks in one commit
            await asyncio.to_thread(
                wait_until, lambda: len(crowd_a.tasks()) >= 5, 60.0, 0.05, "5 tasks handed out"
            )
            await asyncio.to_thread(wait_sleeping, stub, 220)  # the five completed and asked again
            moved = delta(counters(stub), before)
        finally:
            crowd_a.stop()
            crowd_b.stop()
    assert sorted(t["task_id"] for t in crowd_a.tasks()) == deps
    assert len({t["agent"] for t in crowd_a.tasks()}) == 5
    assert crowd_b.tasks() == []
    assert moved["wakeups"] == 5, moved  # not 120, not 220
    assert moved["wasted"] == 0, moved
    assert moved["assigned"] == 5, moved
    # Transactions: the five woken looks, the five agents' next asks, one per poll that ran out.
    assert moved["transactions"] <= 5 + 5 + moved["timeouts"], moved
    assert assigned_once(stub.db, deps) == dict.fromkeys(deps, 1)


async def test_commits_of_other_processes_wake_exactly_as_many_agents_as_tasks_they_offer(
    stub_factory: Callable[..., StubProcess], tmp_path: Path
) -> None:
    """The cross-process path: the stub learns of a CLI commit only from `data_version`, and
    re-reads the ready counts per signature."""
    stub = stub_factory()
    load_tasks(stub.db, task("stuck", "a"))
    async with mcp.Client(stub.url) as holder:
        await register(holder, "holder", ["a"])
        assert await take(holder, "holder") == "stuck"
        await call_tool(
            holder,
            "report_blocker",
            {"agent_id": "holder", "task_id": "stuck", "blocker_description": "no database"},
        )
    crowd = Crowd(stub, "x-", 200, ["a"], log_dir=tmp_path)
    try:
        wait_sleeping(stub, 200)
        start = counters(stub)
        project = tmp_path / "seven.yaml"
        project.write_text(tasks_yaml(*(task(f"new{i}", "a") for i in range(7))))
        assert run_cli("load", str(project), "--db", str(stub.db)).returncode == 0
        await asyncio.to_thread(wait_until, lambda: len(crowd.tasks()) >= 7, 60.0, 0.05, "7 tasks handed out")
        after_load = counters(stub)

        # A foreign commit that offers nothing (the same file again: every task skipped).
        assert run_cli("load", str(project), "--db", str(stub.db)).returncode == 0
        wait_until(lambda: counters(stub)["recounts"] > after_load["recounts"], 30.0, 0.05, "a recount")
        after_noop = counters(stub)

        assert run_cli("resolve", "stuck", "--resolution", "db is back", "--db", str(stub.db)).returncode == 0
        await asyncio.to_thread(wait_until, lambda: len(crowd.tasks()) >= 8, 60.0, 0.05, "the resolved task")
        after_resolve = counters(stub)
    finally:
        crowd.stop()
    assert sorted(t["task_id"] for t in crowd.tasks()) == sorted([f"new{i}" for i in range(7)] + ["stuck"])
    assert delta(after_load, start)["wakeups"] == 7
    assert delta(after_load, start)["recounts"] >= 1
    assert delta(after_noop, after_load)["wakeups"] == 0
    assert delta(after_resolve, after_noop)["wakeups"] == 1
    assert delta(after_resolve, start)["wasted"] == 0


class Heartbeats:
    """Keeps holders' leases alive from a thread until `stop`, like workers that then die."""

    def __init__(self, stub: StubProcess, agents: list[str]) -> None:
        self.stub, self.agents = stub, agents
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        async with mcp.Client(self.stub.url) as client:
            while not self._stop.is_set():
                for agent in self.agents:
                    await call_tool(client, "heartbeat", {"agent_id": agent})
                await asyncio.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


async def test_no_wake_up_is_lost_while_loads_completions_and_expiries_race(
    stub_factory: Callable[..., StubProcess], tmp_path: Path
) -> None:
    """200 one-shot agents (each asks once, completes what it gets, leaves): a task can reach
    them only through a wake-up, so every offered task being done proves none was lost."""
    stub = stub_factory(env={"PM_LEASE_SECONDS": "3", "PM_MAX_ATTEMPTS": "1000"})
    expiring = [f"x{i}" for i in range(10)]
    bases = [f"base{i}" for i in range(10)]
    freed = [f"dep{i}-{j}" for i in range(10) for j in range(2)]
    loaded = [f"late{k}-{i}" for k in range(3) for i in range(10)]
    load_tasks(
        stub.db,
        *(task(t, "a") for t in expiring),
        *(task(b, "h") for b in bases),
        *(task(f"dep{i}-{j}", "a", dependencies=[f"base{i}"]) for i in range(10) for j in range(2)),
    )
    doomed = [f"doomed{i}" for i in range(10)]
    finishers = [f"finisher{i}" for i in range(10)]
    async with mcp.Client(stub.url) as c:
        for agent in doomed:
            await register(c, agent, ["a"])
            assert (await take(c, agent)) in expiring
        for agent in finishers:
            await register(c, agent, ["h"])
            assert (await take(c, agent)) in bases
    heartbeats = Heartbeats(stub, doomed + finishers)
    crowd = Crowd(stub, "o-", 200, ["a"], log_dir=tmp_path, one_shot=True)
    try:
        wait_sleeping(stub, 200)
        before = counters(stub)
        heartbeats.stop()  # from now on the doomed agents' leases run out (3 s)

        def load_in_batches(k: int) -> None:
            for half in (0, 5):
                load_tasks(stub.db, *(task(f"late{k}-{i}", "a") for i in range(half, half + 5)))

        loaders = [threading.Thread(target=load_in_batches, args=(k,)) for k in range(3)]
        for t in loaders:
            t.start()
        async with mcp.Client(stub.url) as c:
            for agent in finishers:  # each frees two `a` tasks, interleaved with the loads
                held = (await call_tool(c, "heartbeat", {"agent_id": agent}))["current_task"]
                await complete(c, agent, held)
        for t in loaders:
            t.join()
        everything = expiring + freed + loaded
        wait_until(
            lambda: {t["task_id"] for t in crowd.tasks()} >= set(everything),
            120.0,
            0.1,
            "every offered task handed to a one-shot agent",
        )
        moved = delta(counters(stub), before)
    finally:
        heartbeats.stop()
        crowd.stop()
    handed = assigned_once(stub.db, everything)
    assert set(handed) == set(everything)
    # Every assignment after the crowd fell asleep came from a wake-up (the doomed agents'
    # own assignments came before), and no wake-up was wasted.
    assert moved["wakeups"] == sum(handed.values()) - len(expiring), moved
    assert moved["wasted"] == 0, moved
    assert double_assignments(stub.db) == []


async def test_ping_and_healthz_answer_while_another_process_holds_the_board(
    stub_factory: Callable[..., StubProcess],
) -> None:
    """Board calls wait for the lock on the board thread; the event loop does not."""
    import sqlite3

    stub = stub_factory()
    async with mcp.Client(stub.url) as c:
        await register(c, "w", ["a"])
        locker = sqlite3.connect(str(stub.db), isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
        try:
            beat = asyncio.create_task(call_tool(c, "heartbeat", {"agent_id": "w"}))
            await asyncio.to_thread(
                wait_until,
                lambda: health(stub)["board_thread"]["busy_seconds"] > 0,
                30.0,
                0.02,
                "the heartbeat waiting for the lock",
            )
            pong = await call_tool(c, "ping", {"echo": "still here"})
            assert pong["echo"] == "still here"
            assert not beat.done()  # it still waits for the lock: the ping did not
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert (await beat)["success"] is True
