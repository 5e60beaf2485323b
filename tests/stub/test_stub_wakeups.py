"""The wake-up rule, step by step, on a real board: the notifier and the board thread of the
stub, in process, with the board thread held at a gate so each test fixes the order in which
looks and commits happen. (tests/stub/test_stub_crowd.py checks the same over HTTP with
200+ real clients.)"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.board_thread import BoardThread
from pm_agent_stub.db import connect
from pm_agent_stub.notify import Notifier, State, Waiter
from pm_agent_stub.project_file import check_project
from pm_agent_stub.testing import load_tasks, read_events, task

# pytest-asyncio (asyncio_mode=auto) runs the fixture and the test on one loop, the loop the
# notifier binds to at start.


@dataclass
class Stub:
    board: Board
    db: BoardThread
    notifier: Notifier
    path: Path

    async def call(self, fn: Any, *args: Any) -> Any:
        return await self.db.call(fn, *args)

    async def agents(self, skills: list[str], *ids: str) -> None:
        for agent in ids:
            await self.call(self.board.register_agent, agent, agent, "r", skills)

    async def load(self, *tasks: dict[str, Any]) -> None:
        spec = check_project({"project": "t", "tasks": list(tasks)}, "t.yaml")
        await self.call(self.board.load_project, spec, "t.yaml")

    def gate(self) -> threading.Event:
        """Hold the board thread until the returned event is set: later calls queue up behind."""
        gate = threading.Event()
        self.db.submit(gate.wait, 30.0)
        return gate

    async def asleep(self, *agents: str) -> list[Waiter]:
        """Each agent's long-poll, looked once (found nothing) and asleep."""
        waiters = []
        for agent in agents:
            w = self.notifier.enter(agent)
            poll = await self.notifier.look(w)
            assert not poll.offer.has_task, poll
            waiters.append(w)
        assert all(w.state is State.SLEEPING for w in waiters)
        return waiters


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[Stub]:
    async with running(tmp_path) as s:
        yield s


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *, file_events: bool = True) -> AsyncIterator[Stub]:
    board = Board(connect(tmp_path / "b.db"))
    db = BoardThread(board, file_events=file_events)
    notifier = Notifier(board, db)
    await notifier.start()
    try:
        yield Stub(board, db, notifier, tmp_path / "b.db")
    finally:
        notifier.stop()
        db.close()


def woken(waiters: list[Waiter]) -> list[str]:
    return [w.agent_id for w in waiters if w.state is State.WOKEN]


async def test_a_task_committed_right_behind_a_look_that_found_nothing_wakes_it(stub: Stub) -> None:
    """The ticket-before-check property: the look and the commit race on the board thread."""
    await stub.agents(["a"], "w")
    gate = stub.gate()
    w = stub.notifier.enter("w")
    look = asyncio.ensure_future(stub.notifier.look(w))
    await asyncio.sleep(0)  # the look is queued first ...
    load = asyncio.ensure_future(stub.load(task("t", "a")))  # ... then the commit, behind it
    await asyncio.sleep(0)
    gate.set()
    assert not (await look).offer.has_task
    await load
    assert await stub.notifier.sleep(w, timeout=10.0)  # woken: it was asleep before the commit landed
    assert (await stub.notifier.look(w)).offer.assignment is not None


async def test_k_new_tasks_wake_k_sleepers_longest_asleep_first(stub: Stub) -> None:
    ids = [f"w{i}" for i in range(10)]
    await stub.agents(["a"], *ids)
    waiters = await stub.asleep(*ids)
    await stub.load(task("t1", "a"), task("t2", "a"), task("t3", "a"))
    await asyncio.sleep(0)  # the commit reaches the loop
    assert woken(waiters) == ["w0", "w1", "w2"]
    assert stub.notifier.counters.wakeups == 3


async def test_only_sleepers_whose_skills_cover_the_task_are_woken(stub: Stub) -> None:
    await stub.agents(["a"], "only-a")
    await stub.agents(["b"], "only-b")
    await stub.agents(["A", "b"], "both")  # skills match case-insensitively
    waiters = await stub.asleep("only-a", "only-b", "both")
    await stub.load(task("ab", "a", required_skills=["a", "B"]))
    await asyncio.sleep(0)
    assert woken(waiters) == ["both"]
    await stub.load(task("b1", "b"))
    await asyncio.sleep(0)
    assert woken(waiters) == ["only-b", "both"]


async def test_a_woken_waiter_that_leaves_without_looking_passes_its_turn_on(stub: Stub) -> None:
    await stub.agents(["a"], "w0", "w1")
    w0, w1 = await stub.asleep("w0", "w1")
    await stub.load(task("t", "a"))
    await asyncio.sleep(0)
    assert woken([w0, w1]) == ["w0"]
    stub.notifier.leave(w0)  # superseded or disconnected before its look
    assert woken([w0, w1]) == ["w1"]


async def test_a_look_that_takes_another_signatures_task_leaves_a_wake_up_for_the_rest(stub: Stub) -> None:
    await stub.agents(["a", "b"], "ab")
    await stub.agents(["a", "c"], "ac")
    ab, ac = await stub.asleep("ab", "ac")
    await stub.load(task("ta", "a"))
    await asyncio.sleep(0)
    assert woken([ab, ac]) == ["ab"]  # equally narrow: the longest asleep
    await stub.load(task("tb", "b", priority="high"))
    await asyncio.sleep(0)
    assert woken([ab, ac]) == ["ab"]  # `ab` is already on its way, counted for `ta`
    assert (await stub.notifier.look(ab)).offer.assignment.task_id == "tb"  # type: ignore[union-attr]
    assert woken([ab, ac]) == ["ac"]  # `ta` was left: its end of the look woke another
    assert (await stub.notifier.look(ac)).offer.assignment.task_id == "ta"  # type: ignore[union-attr]
    assert stub.notifier.counters.wasted == 0


async def test_the_narrowest_skill_set_is_woken_first(stub: Stub) -> None:
    await stub.agents(["a", "b"], "ab")
    await stub.agents(["a"], "a")
    ab, a = await stub.asleep("ab", "a")
    gate = stub.gate()
    loads = asyncio.ensure_future(stub.load(task("ta", "a"), task("tb", "b")))
    await asyncio.sleep(0)
    gate.set()
    await loads
    await asyncio.sleep(0)
    assert sorted(woken([ab, a])) == ["a", "ab"]  # `a` for `ta`, leaving `ab` for `tb`
    assert (await stub.notifier.look(a)).offer.assignment.task_id == "ta"  # type: ignore[union-attr]
    assert (await stub.notifier.look(ab)).offer.assignment.task_id == "tb"  # type: ignore[union-attr]


@pytest.mark.parametrize("file_events", [True, False], ids=["inotify", "polling"])
async def test_a_commit_by_another_process_is_found_by_the_watcher_and_wakes_one(
    tmp_path: Path, file_events: bool
) -> None:
    async with running(tmp_path, file_events=file_events) as stub:
        assert stub.db.event_driven is file_events  # Linux: inotify is there to be turned off
        await stub.agents(["a"], "w0", "w1")
        w0, w1 = await stub.asleep("w0", "w1")
        recounts = stub.notifier.counters.recounts
        await asyncio.to_thread(load_tasks, stub.path, task("foreign", "a"))  # another connection
        assert await stub.notifier.sleep(w0, timeout=30.0)
        assert woken([w0, w1]) == ["w0"]
        assert stub.notifier.counters.recounts > recounts


async def test_a_long_poll_cancelled_while_its_look_hands_it_a_task_gives_the_task_back(stub: Stub) -> None:
    await stub.agents(["a"], "w")
    await stub.load(task("t", "a"))
    gate = stub.gate()
    w = stub.notifier.enter("w")
    look = asyncio.ensure_future(stub.notifier.look(w))
    await asyncio.sleep(0)
    look.cancel()  # the client went away while the look sat in the queue
    stub.notifier.give_back(w)
    stub.notifier.leave(w)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await look
    await stub.call(lambda: None)  # the look ran; its release is queued behind it
    await stub.call(lambda: None)
    kinds = [e["kind"] for e in read_events(stub.path, task_id="t")]
    assert kinds == ["assigned", "released"]
    assert stub.notifier.counters.given_back == 1
    assert (await stub.call(stub.board.get_task_context, "t")).task.status == "todo"


async def test_a_rerun_wakes_one_sleeper_for_the_task_it_put_back(stub: Stub) -> None:
    await stub.agents(["a"], "w0", "w1", "w2")
    await stub.load(task("t", "a"))
    w0 = stub.notifier.enter("w0")
    offer = (await stub.notifier.look(w0)).offer
    assert offer.assignment is not None
    stub.notifier.leave(w0)
    await stub.call(stub.board.report_task_progress, "w0", "t", "completed", 100, "done")
    w1, w2 = await stub.asleep("w1", "w2")
    await stub.call(stub.board.rerun_task, "t", "the code changed", False)
    await asyncio.sleep(0)
    assert woken([w1, w2]) == ["w1"]
    assert (await stub.notifier.look(w1)).offer.assignment.task_id == "t"  # type: ignore[union-attr]


async def test_waiters_count_every_long_poll_in_progress_and_sleepers_the_asleep_ones(stub: Stub) -> None:
    """`pm_agent_long_poll_waiters` counts long-polls from enter to leave, looking or asleep; /healthz's
    `sleeping` only those asleep (they used to be one number under two names)."""
    await stub.agents(["a"], "w1", "w2")
    [asleep] = await stub.asleep("w1")
    looking = stub.notifier.enter("w2")  # entered, not looked yet
    assert stub.notifier.waiters == 2
    assert (stub.notifier.snapshot()["waiting"], stub.notifier.snapshot()["sleeping"]) == (2, 1)
    stub.notifier.leave(looking)
    stub.notifier.leave(asleep)
    stub.notifier.leave(asleep)  # leaving twice counts once
    assert stub.notifier.waiters == 0
    assert stub.notifier.snapshot()["sleeping"] == 0
