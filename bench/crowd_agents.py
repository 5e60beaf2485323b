"""A crowd of long-polling agents in one process: `python -m bench.crowd_agents --url URL ...`.

Each agent is a real MCP client over HTTP with its own connection (`mcp.Client` on its own
httpx client), its own agent id and skills: it registers, then asks
`request_next_task(wait_seconds=W)` in a loop; a task it is handed it completes at once
(`report_task_progress` completed) unless `--keep`. Agents ask as soon as each has
registered (as a fleet that starts over a few seconds does), or with `--together` all at
once when every one has: such a crowd's polls then expire together, every 25 s, in one
wave of re-asks. With `--one-shot` an agent asks once
and stops after the answer, so the only way it can get a task is a wake-up (or a look that
found the task already there): what tests/stub/test_stub_crowd.py builds its counts on.

One JSON line on stdout per thing that happened (flushed at once):

    {"event": "ready", "agents": N}                      every agent registered
    {"event": "task", "agent": ID, "task_id": T, "at": epoch}   an agent was handed a task
    {"event": "answer", "agent": ID, "has_task": false, "message": ...}   a one-shot's empty answer
    {"event": "error", "agent": ID, "error": ...}        a call failed (the agent retries after 1 s)

stdin: a line `stop` (or EOF) ends every agent and the process. bench/crowd.py runs up to 8
of these against one stub (1,000 agents); the stub tests run one or two (200+ agents).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import threading
import time
from typing import Any

START_CONCURRENCY = 25  # agents connecting at once (start-up only: each connect is a few requests)


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class Start:
    """Agents connect a few at a time; with `together`, all ask at once when everyone is registered."""

    def __init__(self, total: int, together: bool) -> None:
        self.total = total
        self.connecting = asyncio.Semaphore(START_CONCURRENCY)
        self.registered = 0
        self.everyone = asyncio.Event()
        if not together:
            self.everyone.set()

    def one_registered(self) -> None:
        self.registered += 1
        if self.registered == self.total:
            self.everyone.set()
            emit(event="ready", agents=self.total)


async def agent(
    url: str, agent_id: str, skills: list[str], wait: float, *, one_shot: bool, keep: bool, start: Start
) -> None:
    import httpx2
    import mcp
    from mcp.client.streamable_http import streamable_http_client

    from pm_agent_stub.testing import call_tool

    # No TLS on loopback: skip building an SSL context per client (~40 ms of CPU each).
    http = httpx2.AsyncClient(verify=False, timeout=httpx2.Timeout(wait + 60, connect=30.0))
    async with contextlib.AsyncExitStack() as stack:
        async with start.connecting:
            await stack.enter_async_context(http)
            client = await stack.enter_async_context(
                mcp.Client(streamable_http_client(url, http_client=http))
            )
            await call_tool(
                client,
                "register_agent",
                {"agent_id": agent_id, "name": agent_id, "role": "crowd", "skills": skills},
            )
        start.one_registered()
        await start.everyone.wait()
        while True:
            try:
                answer = await call_tool(
                    client, "request_next_task", {"agent_id": agent_id, "wait_seconds": wait}
                )
            except Exception as exc:
                emit(event="error", agent=agent_id, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
                continue
            if answer.get("has_task"):
                task_id = answer["assignment"]["task_id"]
                emit(event="task", agent=agent_id, task_id=task_id, at=time.time())
                if not keep:
                    await call_tool(
                        client,
                        "report_task_progress",
                        {
                            "agent_id": agent_id,
                            "task_id": task_id,
                            "status": "completed",
                            "progress": 100,
                            "message": "done",
                        },
                    )
            elif one_shot:
                emit(event="answer", agent=agent_id, has_task=False, message=answer.get("message", ""))
            if one_shot:
                return


async def main(ns: argparse.Namespace) -> None:
    skills = [s for s in ns.skills.split(",") if s]
    start = Start(ns.count, ns.together)
    agents = [
        asyncio.create_task(
            agent(
                ns.url,
                f"{ns.prefix}{i:04d}",
                skills,
                ns.wait,
                one_shot=ns.one_shot,
                keep=ns.keep,
                start=start,
            )
        )
        for i in range(ns.count)
    ]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A daemon thread: a blocked stdin read must never keep the process alive.
    threading.Thread(target=_wait_for_stop, args=(loop, stopping), daemon=True).start()
    stop = asyncio.create_task(stopping.wait())
    everyone = asyncio.gather(*agents)
    await asyncio.wait({stop, everyone}, return_when=asyncio.FIRST_COMPLETED)
    for task in [*agents, stop]:
        task.cancel()
    with contextlib.suppress(BaseException):
        await everyone


def _wait_for_stop(loop: asyncio.AbstractEventLoop, stopping: asyncio.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    loop.call_soon_threadsafe(stopping.set)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.crowd_agents")
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", required=True, help="agent ids are PREFIX0000, PREFIX0001, ...")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--skills", default="steps", help="comma-separated")
    p.add_argument("--wait", type=float, default=25.0, help="wait_seconds of each request_next_task")
    p.add_argument("--one-shot", action="store_true", help="ask once, then stop")
    p.add_argument("--keep", action="store_true", help="hold tasks instead of completing them")
    p.add_argument(
        "--together",
        action="store_true",
        help="first asks all at once after every agent registered (default: each as soon as it is)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    # A process of a few hundred clients holds as many objects per waiting call as the stub
    # does: the same rare full collections (pm_agent_stub.cli._tune_gc), so a collection's
    # pause here does not show up as the stub's pickup latency.
    gc.freeze()
    gc.set_threshold(*gc.get_threshold()[:2], 100)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse()))
