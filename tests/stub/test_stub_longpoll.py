"""Long-poll: `wait_seconds` returns as soon as a task becomes eligible, from any cause.

Each test first proves the waiter is really waiting (its first check touched `last_seen`),
then makes the change, and requires the answer well before `wait_seconds`.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import mcp
import pytest

from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, read_events, task, tasks_yaml

pytestmark = pytest.mark.anyio

WAIT = 25  # seconds asked for; every wake-up must come far sooner
FAST = 10.0  # generous bound for "well before": includes a CLI subprocess start on a busy machine


def last_seen(db: Path, agent_id: str) -> float:
    conn = sqlite3.connect(str(db), timeout=15)
    try:
        row = conn.execute("SELECT last_seen FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
        return float(row[0]) if row else 0.0
    finally:
        conn.close()


async def wait_until_polling(db: Path, agent_id: str, since: float, timeout: float = 10.0) -> None:
    """The long-poll's first check has run (it refreshes last_seen), so it is now asleep."""
    with anyio.fail_after(timeout):
        while last_seen(db, agent_id) <= since:
            await anyio.sleep(0.02)


class Poller:
    """Runs one long-poll in the background and records the answer and how long it took."""

    def __init__(self, url: str, agent_id: str) -> None:
        self.url, self.agent_id = url, agent_id
        self.answer: dict[str, Any] | None = None
        self.elapsed = 0.0
        self.done = anyio.Event()

    async def run(self) -> None:
        async with mcp.Client(self.url) as c:
            started = time.monotonic()
            self.answer = await call_tool(
                c, "request_next_task", {"agent_id": self.agent_id, "wait_seconds": WAIT}
            )
            self.elapsed = time.monotonic() - started
        self.done.set()


async def register(url: str, agent_id: str, skill: str) -> float:
    async with mcp.Client(url) as c:
        await call_tool(
            c, "register_agent", {"agent_id": agent_id, "name": "n", "role": "r", "skills": [skill]}
        )
    return last_seen_now()


def last_seen_now() -> float:
    return time.time()


async def run_cli(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    result = await anyio.run_process([sys.executable, "-m", "pm_agent_stub", *args], env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()


async def poll_around(url: str, db: Path, agent_id: str, skill: str, change: Any) -> Poller:
    since = await register(url, agent_id, skill)
    poller = Poller(url, agent_id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        await wait_until_polling(db, agent_id, since)
        await change()
        with anyio.fail_after(WAIT + 10):
            await poller.done.wait()
    return poller


async def test_wakes_when_a_task_is_loaded_by_the_cli(stub: StubProcess, uniq: str, tmp_path: Path) -> None:
    skill = f"s-{uniq}"
    project = tmp_path / "p.yaml"
    project.write_text(tasks_yaml(task(f"new-{uniq}", skill)))

    async def change() -> None:
        await run_cli("load", str(project), "--db", str(stub.db))

    poller = await poll_around(stub.url, stub.db, f"w-{uniq}", skill, change)
    assert poller.answer is not None
    assert poller.answer["has_task"], poller.answer
    assert poller.answer["assignment"]["task_id"] == f"new-{uniq}"
    assert poller.elapsed < FAST


async def test_wakes_when_a_dependency_completes(stub: StubProcess, uniq: str) -> None:
    skill = f"s-{uniq}"
    load_tasks(
        stub.db, task(f"base-{uniq}", skill), task(f"next-{uniq}", skill, dependencies=[f"base-{uniq}"])
    )
    holder = f"h-{uniq}"
    async with mcp.Client(stub.url) as c:
        await call_tool(
            c, "register_agent", {"agent_id": holder, "name": "n", "role": "r", "skills": [skill]}
        )
        assert (await call_tool(c, "request_next_task", {"agent_id": holder}))["assignment"][
            "task_id"
        ] == f"base-{uniq}"

        async def change() -> None:
            await call_tool(c, "report_task_progress", {
                "agent_id": holder, "task_id": f"base-{uniq}", "status": "completed", "progress": 100, "message": "ok"})  # fmt: skip

        poller = await poll_around(stub.url, stub.db, f"w-{uniq}", skill, change)
    assert poller.answer is not None
    assert poller.answer["assignment"]["task_id"] == f"next-{uniq}"
    assert poller.elapsed < FAST


async def test_wakes_when_a_lease_expires(short_stub: StubProcess, uniq: str) -> None:
    skill = f"s-{uniq}"
    load_tasks(short_stub.db, task(f"t-{uniq}", skill))
    async with mcp.Client(short_stub.url) as c:
        await call_tool(
            c, "register_agent", {"agent_id": f"h-{uniq}", "name": "n", "role": "r", "skills": [skill]}
        )
        await call_tool(c, "request_next_task", {"agent_id": f"h-{uniq}"})

    async def change() -> None:  # nothing: the 1 s lease just runs out
        pass

    poller = await poll_around(short_stub.url, short_stub.db, f"w-{uniq}", skill, change)
    assert poller.answer is not None
    assert poller.answer["assignment"]["task_id"] == f"t-{uniq}"
    assert poller.answer["assignment"]["attempt"] == 2
    assert poller.elapsed < 5.0


async def test_wakes_when_a_blocker_is_resolved_by_tool(stub: StubProcess, uniq: str) -> None:
    await _blocked_then_resolved(stub, uniq, via_cli=False)


async def test_wakes_when_a_blocker_is_resolved_by_the_cli(stub: StubProcess, uniq: str) -> None:
    await _blocked_then_resolved(stub, uniq, via_cli=True)


async def _blocked_then_resolved(stub: StubProcess, uniq: str, *, via_cli: bool) -> None:
    skill = f"s-{uniq}"
    tid = f"t-{uniq}"
    load_tasks(stub.db, task(tid, skill))
    async with mcp.Client(stub.url) as c:
        await call_tool(
            c, "register_agent", {"agent_id": f"h-{uniq}", "name": "n", "role": "r", "skills": [skill]}
        )
        await call_tool(c, "request_next_task", {"agent_id": f"h-{uniq}"})
        await call_tool(
            c, "report_blocker", {"agent_id": f"h-{uniq}", "task_id": tid, "blocker_description": "no db"}
        )

        async def change() -> None:
            if via_cli:
                await run_cli("resolve", tid, "--resolution", "db is back", "--db", str(stub.db))
            else:
                await call_tool(c, "resolve_blocker", {"task_id": tid, "resolution": "db is back"})

        poller = await poll_around(stub.url, stub.db, f"w-{uniq}", skill, change)
    assert poller.answer is not None
    assert poller.answer["assignment"]["task_id"] == tid
    assert poller.elapsed < FAST


async def test_wakes_when_a_task_is_released(stub: StubProcess, uniq: str) -> None:
    skill = f"s-{uniq}"
    tid = f"t-{uniq}"
    load_tasks(stub.db, task(tid, skill))
    async with mcp.Client(stub.url) as c:
        await call_tool(
            c, "register_agent", {"agent_id": f"h-{uniq}", "name": "n", "role": "r", "skills": [skill]}
        )
        await call_tool(c, "request_next_task", {"agent_id": f"h-{uniq}"})

        async def change() -> None:
            await call_tool(c, "release_task", {"agent_id": f"h-{uniq}", "task_id": tid, "reason": "SIGTERM"})

        poller = await poll_around(stub.url, stub.db, f"w-{uniq}", skill, change)
    assert poller.answer is not None
    assert poller.answer["assignment"]["task_id"] == tid
    assert poller.elapsed < FAST


async def test_times_out_with_has_task_false_after_wait_seconds(stub: StubProcess, uniq: str) -> None:
    agent = f"w-{uniq}"
    async with mcp.Client(stub.url) as c:
        await call_tool(
            c, "register_agent", {"agent_id": agent, "name": "n", "role": "r", "skills": [f"s-{uniq}"]}
        )
        started = time.monotonic()
        answer = await call_tool(c, "request_next_task", {"agent_id": agent, "wait_seconds": 1})
        elapsed = time.monotonic() - started
    assert answer["has_task"] is False
    assert answer["retry_after_seconds"] > 0
    assert answer["message"]
    assert 0.95 <= elapsed < 6


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_idle_long_pollers_cost_almost_no_cpu(stub: StubProcess, uniq: str) -> None:
    skill = f"s-{uniq}"
    agents = [f"w{i}-{uniq}" for i in range(20)]
    async with mcp.Client(stub.url) as c:
        for agent in agents:
            await call_tool(
                c, "register_agent", {"agent_id": agent, "name": "n", "role": "r", "skills": [skill]}
            )
    since = time.time()

    async def one(agent: str) -> None:
        async with mcp.Client(stub.url) as c:
            await call_tool(c, "request_next_task", {"agent_id": agent, "wait_seconds": 4})

    async with anyio.create_task_group() as tg:
        for agent in agents:
            tg.start_soon(one, agent)
        for agent in agents:
            await wait_until_polling(stub.db, agent, since)
        before = cpu_seconds(stub.proc.pid)
        await anyio.sleep(2.0)  # measuring a quiet interval, not synchronising
        used = cpu_seconds(stub.proc.pid) - before
    assert used < 0.25, f"stub used {used:.2f} s CPU in 2 s with 20 idle long-pollers"


async def test_a_newer_call_from_the_same_agent_ends_its_pending_long_poll(
    stub: StubProcess, uniq: str
) -> None:
    """A stopping worker cancels its poll and heartbeats: the old poll must end, unassigned."""
    skill, agent = f"s-{uniq}", f"w-{uniq}"
    since = await register(stub.url, agent, skill)
    poller = Poller(stub.url, agent)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        await wait_until_polling(stub.db, agent, since)
        async with mcp.Client(stub.url) as c:
            assert (await call_tool(c, "heartbeat", {"agent_id": agent}))["current_task"] is None
        with anyio.fail_after(5):
            await poller.done.wait()
    assert poller.answer is not None
    assert poller.answer["has_task"] is False
    assert "superseded" in poller.answer["message"]


@pytest.mark.parametrize("legacy", [False, True], ids=["per-request-client", "handshake-session"])
async def test_an_abandoned_long_poll_is_never_handed_a_task(
    stub: StubProcess, uniq: str, legacy: bool
) -> None:
    """The client goes away mid-poll; a task loaded afterwards goes to a live agent, not the ghost."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    skill, ghost, live = f"s-{uniq}", f"ghost-{uniq}", f"live-{uniq}"
    since = await register(stub.url, ghost, skill)

    async def doomed_poll() -> None:
        if legacy:
            async with streamable_http_client(stub.url) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                await s.call_tool("request_next_task", {"agent_id": ghost, "wait_seconds": WAIT})
        else:
            async with mcp.Client(stub.url) as c:
                await c.call_tool("request_next_task", {"agent_id": ghost, "wait_seconds": WAIT})

    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed_poll)
        await wait_until_polling(stub.db, ghost, since)
        tg.cancel_scope.cancel()  # the worker stops: its HTTP connection closes mid-poll
    await wait_for_log(stub, "long_poll_abandoned", ghost)

    live_since = await register(stub.url, live, skill)
    poller = Poller(stub.url, live)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        await wait_until_polling(stub.db, live, live_since)
        load_tasks(stub.db, task(f"t-{uniq}", skill))
        with anyio.fail_after(WAIT):
            await poller.done.wait()
    assert poller.answer is not None
    assert poller.answer["assignment"]["task_id"] == f"t-{uniq}"
    assert [e["agent_id"] for e in read_events(stub.db, kind="assigned", task_id=f"t-{uniq}")] == [live]


async def wait_for_log(stub: StubProcess, event: str, agent_id: str, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not any(
            f'"event": "{event}"' in line and agent_id in line for line in stub.logs().splitlines()
        ):
            await anyio.sleep(0.05)
