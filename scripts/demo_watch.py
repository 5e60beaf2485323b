"""How `make demo` follows the board: the stub's own change signal, not a poll.

The stub already says when its board changed: the dashboard's event stream
(`GET /dashboard/api/stream`, server-sent events) pushes a fresh `BoardSnapshot` after every
commit (at most five a second) and at least every few seconds while a client listens
(dashboard/live.py). Polling `get_project_status` + `list_tasks` + `list_registered_agents`
twice a second cost the idle demo 1.2-1.4 % of a core in this script and as much in the stub
(3.6 % each in issue 25's run); listening costs this script 0.03 % (one clock tick in 30 s)
and the stub 0.4-0.5 %, its workers' long-polls included (`python -m bench.demo_local`, the
old and the new script side by side on a busy 2-core machine), and shows a change as soon
as it is committed.

The snapshot has what the demo prints: the counts, the open blockers with the stub's
suggestion, and each todo task's unfinished dependencies. Only when the todo column is
longer than a snapshot shows (50 tasks) does "has the board settled" ask the board itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import httpx2

from pm_agent_stub.dashboard.snapshot import BoardSnapshot
from pm_agent_stub.operator_link import OperatorError, OperatorLink
from pm_agent_stub.status_report import collect

PROCESS_CHECK_SECONDS = 1.0  # how often the run's processes are looked at (waitpid, no I/O)
RECONNECT_SECONDS = 1.0


async def board_snapshots(base_url: str, token: str | None) -> AsyncIterator[BoardSnapshot]:
    """Every snapshot the stub pushes, reconnecting (after a pause) whenever the stream ends."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx2.Timeout(10.0, read=None)  # the stream is quiet between changes (keepalives every 15 s)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        while True:
            try:
                async with http.stream("GET", f"{base_url}/dashboard/api/stream") as answer:
                    if answer.status_code != 200:
                        await answer.aread()
                        raise OperatorError(
                            "unreachable",
                            f"{base_url}/dashboard/api/stream answered HTTP {answer.status_code}: "
                            f"{answer.text[:300]}",
                        )
                    async for data in _events(answer.aiter_lines(), "board"):
                        yield BoardSnapshot.model_validate_json(data)
            except httpx2.HTTPError:
                pass
            await asyncio.sleep(RECONNECT_SECONDS)


async def _events(lines: AsyncIterator[str], kind: str) -> AsyncIterator[str]:
    """The data of each server-sent event of type `kind` (comments and other fields skipped)."""
    event, data = "message", []
    async for line in lines:
        if not line:
            if data and event == kind:
                yield "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


@dataclass
class Watcher:
    """What the demo has told so far, and how to tell the next snapshot."""

    board: OperatorLink
    until_settled: bool
    last_line: str = ""
    seen_blockers: set[tuple[str, int]] = field(default_factory=set)

    def tell(self, snap: BoardSnapshot) -> None:
        status = snap.project_status
        line = (
            f"board: {status.done}/{status.total_tasks} done, {status.in_progress} in progress, "
            f"{status.todo} to do, {status.blocked} blocked ({status.completion_percentage}%)"
        )
        if line != self.last_line:
            print(f"\n== {line}\n", file=sys.stderr, flush=True)
            self.last_line = line
        for b in reversed(snap.blockers):  # oldest first
            if (b.task_id, b.blocker_id) in self.seen_blockers:
                continue
            self.seen_blockers.add((b.task_id, b.blocker_id))
            print(
                f"\nblocked: {b.task_id} ({b.severity})\n  {b.description.strip()[:600]}\n"
                f"  suggestion: {b.resolution_suggestion}\n"
                f"  then: make rerun TASK={b.task_id}   (details: make show TASK={b.task_id})",
                file=sys.stderr,
            )

    async def settled(self, snap: BoardSnapshot) -> bool:
        """Nothing in progress and nothing left that can start (todo tasks all wait on others)."""
        status = snap.project_status
        if status.in_progress:
            return False
        [todo] = [c for c in snap.columns if c.status == "todo"]
        if todo.total == len(todo.tasks):
            return all(t.pending_dependencies > 0 for t in todo.tasks)
        report = await collect(self.board, None)  # more todo tasks than a snapshot carries
        return report.project_status.in_progress == 0 and all(
            t.pending_dependencies > 0 for t in report.tasks if t.status == "todo"
        )


class Latest:
    """The newest snapshot not yet handled: a slow reader skips to the newest, never queues."""

    def __init__(self) -> None:
        self.snapshot: BoardSnapshot | None = None
        self.ready = asyncio.Event()

    async def follow(self, snapshots: AsyncIterator[BoardSnapshot]) -> None:
        async for snap in snapshots:
            self.snapshot = snap
            self.ready.set()

    async def next(self, timeout: float) -> BoardSnapshot | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.ready.wait()
        snap, self.snapshot = self.snapshot, None
        self.ready.clear()
        return snap


async def watch(
    board: OperatorLink,
    token: str | None,
    procs: Sequence[subprocess.Popen[bytes]],
    *,
    until_settled: bool,
    timeout: float,
) -> bool:
    """Print the board as it moves; True once it settles (serving: runs until interrupted)."""
    watcher = Watcher(board, until_settled)
    deadline = time.monotonic() + timeout
    latest = Latest()
    reader = asyncio.create_task(latest.follow(board_snapshots(board.url.rsplit("/mcp", 1)[0], token)))
    try:
        while True:
            snap = await latest.next(PROCESS_CHECK_SECONDS)
            if reader.done():
                reader.result()  # the stream refused us: OperatorError with the reason
            if snap is not None:
                watcher.tell(snap)
                if until_settled and await watcher.settled(snap):
                    if snap.project_status.todo:
                        print(
                            f"demo: {snap.project_status.todo} task(s) wait on blocked dependencies",
                            file=sys.stderr,
                        )
                    return True
            if any(proc.poll() is not None for proc in procs):
                print("demo: a process exited early", file=sys.stderr)
                return False
            if until_settled and time.monotonic() > deadline:
                print(f"demo: the board did not settle within {timeout:.0f}s", file=sys.stderr)
                return False
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
