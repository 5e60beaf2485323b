"""Leases, fencing, exactly-once and atomic assignment, against real stub processes over HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import mcp
import pytest

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, read_events, task, wait_until

pytestmark = pytest.mark.anyio


async def register(c: Any, agent_id: str, skill: str) -> None:
    await call_tool(c, "register_agent", {"agent_id": agent_id, "name": "n", "role": "r", "skills": [skill]})


def progress(agent: str, tid: str, status: str = "in_progress", **extra: Any) -> dict[str, Any]:
    return {"agent_id": agent, "task_id": tid, "status": status, "progress": 50, "message": "m", **extra}


def task_status(db: Path, tid: str) -> str:
    import sqlite3

    conn = sqlite3.connect(str(db), timeout=15)
    try:
        return str(conn.execute("SELECT status FROM tasks WHERE task_id = ?", (tid,)).fetchone()[0])
    finally:
        conn.close()


async def test_expiry_fences_the_old_holder_and_reoffers_with_attempt_and_checkpoint(
    short_stub: StubProcess, uniq: str
) -> None:
    skill, tid, old, new = f"s-{uniq}", f"t-{uniq}", f"old-{uniq}", f"new-{uniq}"
    load_tasks(short_stub.db, task(tid, skill))
    async with mcp.Client(short_stub.url) as c:
        await register(c, old, skill)
        await register(c, new, skill)
        first = (await call_tool(c, "request_next_task", {"agent_id": old}))["assignment"]
        await call_tool(c, "report_task_progress", progress(old, tid, checkpoint={"next_step": 2}))
        # The sweep timer (not a call) must expire it: wait for the event, then check fencing.
        wait_until(
            lambda: read_events(short_stub.db, kind="expired", task_id=tid), timeout=10, message="expiry"
        )
        fenced = await call_tool(c, "report_task_progress", progress(old, tid))
        assert fenced["error"] == "not_task_holder"
        assert "request_next_task" in fenced["message"]
        second = (await call_tool(c, "request_next_task", {"agent_id": new}))["assignment"]
        assert second["task_id"] == tid
        assert second["attempt"] == first["attempt"] + 1
        assert second["checkpoint"] == {"next_step": 2}
        assert second["lease"]["lease_id"] != first["lease"]["lease_id"]
        late = await call_tool(c, "report_task_progress", progress(old, tid, "completed", progress=100))
        assert late["error"] == "not_task_holder"
        done = await call_tool(c, "report_task_progress", progress(new, tid, "completed", progress=100))
        assert done["status"] == "task_completed"
    events = read_events(short_stub.db, task_id=tid)
    assert [e["agent_id"] for e in events if e["kind"] == "fenced"] == [old, old]
    assert [(e["agent_id"], e["attempt"]) for e in events if e["kind"] == "completed"] == [(new, 2)]


async def test_renewals_keep_a_lease_alive_past_its_ttl(short_stub: StubProcess, uniq: str) -> None:
    skill, tid, agent = f"s-{uniq}", f"t-{uniq}", f"w-{uniq}"
    load_tasks(short_stub.db, task(tid, skill))
    async with mcp.Client(short_stub.url) as c:
        await register(c, agent, skill)
        await call_tool(c, "request_next_task", {"agent_id": agent})
        deadline = time.monotonic() + 3.0  # three TTLs
        while time.monotonic() < deadline:
            assert (await call_tool(c, "heartbeat", {"agent_id": agent}))["current_task"] == tid
            await anyio.sleep(0.3)  # a worker's heartbeat period, well inside the 1 s lease
        assert (await call_tool(c, "report_task_progress", progress(agent, tid, "completed", progress=100)))[
            "success"
        ]
    assert not read_events(short_stub.db, kind="expired", task_id=tid)


async def test_max_attempts_blocks_the_task_instead_of_looping(short_stub: StubProcess, uniq: str) -> None:
    skill, tid, agent = f"s-{uniq}", f"t-{uniq}", f"w-{uniq}"
    max_attempts = int(short_stub.env["PM_MAX_ATTEMPTS"])
    load_tasks(short_stub.db, task(tid, skill))
    async with mcp.Client(short_stub.url) as c:
        await register(c, agent, skill)
        for attempt in range(1, max_attempts + 1):
            got = await call_tool(c, "request_next_task", {"agent_id": agent, "wait_seconds": 10})
            assert got["assignment"]["attempt"] == attempt
            wait_until(
                lambda n=attempt: len(read_events(short_stub.db, kind="expired", task_id=tid)) == n,
                timeout=10, message=f"expiry {attempt}",
            )  # fmt: skip
        assert task_status(short_stub.db, tid) == "blocked"
        assert (await call_tool(c, "request_next_task", {"agent_id": agent}))["has_task"] is False
        ctx = await call_tool(c, "get_task_context", {"task_id": tid})
        (blocker,) = ctx["blockers"]
        assert f"expired {max_attempts} times" in blocker["description"]
        assert blocker["resolution_suggestion"]
        await call_tool(c, "resolve_blocker", {"task_id": tid, "resolution": "retry"})
        again = await call_tool(c, "request_next_task", {"agent_id": agent})
        assert again["assignment"]["attempt"] == 1


async def test_counted_releases_block_after_max_attempts_uncounted_never_do(
    short_stub: StubProcess, uniq: str
) -> None:
    """A worker that gave up because of the task says `count_attempt`; a plain release stays free."""
    skill, tid, agent = f"s-{uniq}", f"t-{uniq}", f"w-{uniq}"
    max_attempts = int(short_stub.env["PM_MAX_ATTEMPTS"])
    load_tasks(short_stub.db, task(tid, skill))
    async with mcp.Client(short_stub.url) as c:
        await register(c, agent, skill)
        for _ in range(max_attempts + 2):  # tutorial-style releases, without the argument: never blocked
            assert (await call_tool(c, "request_next_task", {"agent_id": agent}))["assignment"][
                "task_id"
            ] == tid
            await call_tool(c, "release_task", {"agent_id": agent, "task_id": tid, "reason": "stopping"})
        assert task_status(short_stub.db, tid) == "todo"
        bad = await call_tool(
            c, "release_task", {"agent_id": agent, "task_id": tid, "reason": "r", "count_attempt": "yes"}
        )
        assert bad["error"] == "invalid_argument"
        for n in range(1, max_attempts + 1):
            got = await call_tool(c, "request_next_task", {"agent_id": agent})
            assert got["assignment"]["task_id"] == tid
            answer = await call_tool(
                c,
                "release_task",
                {"agent_id": agent, "task_id": tid, "reason": "a tool never returned", "count_attempt": True},
            )
            assert answer["success"] is True
            assert ("blocked" in answer["message"]) == (n == max_attempts)
        assert task_status(short_stub.db, tid) == "blocked"
        ctx = await call_tool(c, "get_task_context", {"task_id": tid})
        (blocker,) = ctx["blockers"]
        assert f"{max_attempts} failed attempts" in blocker["description"]
        assert "a tool never returned" in blocker["description"]
        assert (await call_tool(c, "request_next_task", {"agent_id": agent}))["has_task"] is False


async def test_fifty_concurrent_requests_for_one_task_exactly_one_wins(stub: StubProcess, uniq: str) -> None:
    skill, tid = f"s-{uniq}", f"t-{uniq}"
    agents = [f"w{i}-{uniq}" for i in range(50)]
    async with mcp.Client(stub.url) as c:
        for agent in agents:
            await register(c, agent, skill)
    load_tasks(stub.db, task(tid, skill))
    answers: dict[str, dict[str, Any]] = {}
    go = anyio.Event()

    async def ask(agent: str) -> None:
        async with mcp.Client(stub.url) as client:  # 50 separate clients, 50 HTTP connections
            await go.wait()
            answers[agent] = await call_tool(client, "request_next_task", {"agent_id": agent})

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for agent in agents:
                tg.start_soon(ask, agent)
            await anyio.lowlevel.checkpoint()
            go.set()
    winners = [a for a, ans in answers.items() if ans["has_task"]]
    assert len(answers) == 50
    assert len(winners) == 1
    assigned = read_events(stub.db, kind="assigned", task_id=tid)
    assert [e["agent_id"] for e in assigned] == winners


async def test_two_stub_processes_on_one_file_share_the_board(
    stub: StubProcess, stub_factory: Any, uniq: str
) -> None:
    """Assignment is atomic across processes too (BEGIN IMMEDIATE on the shared file)."""
    sibling = stub_factory(stub.db)
    skill = f"s-{uniq}"
    tids = [f"t{i}-{uniq}" for i in range(10)]
    load_tasks(stub.db, *(task(t, skill) for t in tids))
    got: list[str] = []

    async def drain(url: str, agent: str) -> None:
        async with mcp.Client(url) as c:
            await register(c, agent, skill)
            while True:
                ans = await call_tool(c, "request_next_task", {"agent_id": agent})
                if not ans["has_task"]:
                    return
                tid = ans["assignment"]["task_id"]
                got.append(tid)
                done = await call_tool(
                    c, "report_task_progress", progress(agent, tid, "completed", progress=100)
                )
                assert done["status"] == "task_completed"

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(drain, stub.url, f"a{i}-{uniq}")
            tg.start_soon(drain, sibling.url, f"b{i}-{uniq}")
    assert sorted(got) == sorted(tids)
    for tid in tids:
        assert len(read_events(stub.db, kind="completed", task_id=tid)) == 1


async def test_not_task_holder_says_what_happened_to_the_hold(
    stub: StubProcess, short_stub: StubProcess, uniq: str
) -> None:
    """Never held, lease expired at T, released, blocked: the refusal names the agent's own story."""
    from pm_agent_stub.timefmt import iso

    skill = f"s-{uniq}"
    held, queued, released, blocked = (f"{n}-{uniq}" for n in ("held", "queued", "released", "blocked"))
    a, b = f"a-{uniq}", f"b-{uniq}"
    load_tasks(stub.db, *(task(t, skill) for t in (held, queued, released, blocked)))
    async with mcp.Client(stub.url) as c:
        await register(c, a, skill)
        await register(c, b, skill)
        assert (await call_tool(c, "request_next_task", {"agent_id": a}))["assignment"]["task_id"] == held
        others = await call_tool(c, "report_task_progress", progress(b, held))
        assert f"you never held it; it is now held by agent '{a}'" in others["message"]
        never = await call_tool(c, "report_task_progress", progress(b, queued))
        assert "you never held it; it is back in the queue" in never["message"]

        await call_tool(c, "report_task_progress", progress(a, held, "completed", progress=100))
        await call_tool(c, "request_next_task", {"agent_id": a})  # queued
        await call_tool(c, "report_task_progress", progress(a, queued, "completed", progress=100))
        assert (await call_tool(c, "request_next_task", {"agent_id": a}))["assignment"]["task_id"] == released
        await call_tool(c, "release_task", {"agent_id": a, "task_id": released, "reason": "shutting down"})
        (when,) = [e["at"] for e in read_events(stub.db, kind="released", task_id=released)]
        after_release = await call_tool(c, "report_task_progress", progress(a, released))
        assert after_release["error"] == "not_task_holder"
        assert f"you released it at {iso(when)}; it is back in the queue" in after_release["message"]

        await call_tool(c, "request_next_task", {"agent_id": b})  # b takes the released task
        assert (await call_tool(c, "request_next_task", {"agent_id": a}))["assignment"]["task_id"] == blocked
        await call_tool(
            c, "report_blocker", {"agent_id": a, "task_id": blocked, "blocker_description": "no disk"}
        )
        (when,) = [e["at"] for e in read_events(stub.db, kind="blocked", task_id=blocked)]
        after_block = await call_tool(c, "report_task_progress", progress(a, blocked))
        assert (
            f"you reported it blocked at {iso(when)}; it is blocked and waits for resolve_blocker"
            in (after_block["message"])
        )

    tid, w = f"expiring-{uniq}", f"w-{uniq}"
    load_tasks(short_stub.db, task(tid, skill))
    async with mcp.Client(short_stub.url) as c:
        await register(c, w, skill)
        await call_tool(c, "request_next_task", {"agent_id": w})
        (expired,) = wait_until(
            lambda: read_events(short_stub.db, kind="expired", task_id=tid), timeout=10, message="expiry"
        )
        late = await call_tool(c, "report_task_progress", progress(w, tid))
        assert late["error"] == "not_task_holder"
        assert (
            f"your lease (attempt 1) expired at {iso(expired['at'])}; it is back in the queue"
            in late["message"]
        )
