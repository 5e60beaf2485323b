"""Test a worker against the real PM Agent stub, in memory: the `pm_stub` pytest fixture.

    async def test_lint_worker_blocks_on_problems(pm_stub):
        (pm_stub.workspace / "src").mkdir()
        (pm_stub.workspace / "src" / "bad.py").write_text("import os\\n")
        run = await pm_stub.run(LintWorker, tasks=[
            {"id": "lint", "name": "Lint src", "required_skills": ["linting"], "payload": {"path": "src"}},
        ])
        assert run.status("lint") == "blocked"
        assert "ruff found problems" in run.tasks["lint"].blockers[0].description

`run` starts the real stub (`pm_agent_stub.server.build_server` on a SQLite file under the
test's tmp dir, with its lease sweeper), loads the tasks (dicts as in a project file, or a
project file's YAML text), runs your `Worker` subclass against it through the MCP SDK's
in-process client (`mcp.Client(server)`: no port, no subprocess, the same tool calls and
answers as over HTTP) until every task is done or blocked, stops the worker as SIGTERM
would, and returns what happened: each task's `get_task_context`, every page (status, progress log,
blockers with the stub's suggestions, artifacts, checkpoint) and the worker's counters.

For finer control (several workers, a condition of your own, calls of your own while a
worker runs) use `async with pm_stub.serve(tasks) as stub:` and `stub.connect` as the
worker's connection (`worker.connect = stub.connect`). Needs the stub: install
`pm-worker[testing]`. The fixture is registered as a pytest plugin when pm_worker is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pm_protocol import call, tools
from pm_protocol.tools import A, R, Tool

if TYPE_CHECKING:
    from pm_worker.connection import Connection
    from pm_worker.models import ProjectCounts, TaskContextResult
    from pm_worker.settings import WorkerSettings
    from pm_worker.worker import Worker


Tasks = Sequence[Mapping[str, Any]] | str
"""Task dicts as a project file holds them (`id`, `name`, `required_skills`, `payload`, ...),
or a whole project file's YAML text."""


def _task_list(tasks: Tasks) -> list[dict[str, Any]]:
    if isinstance(tasks, str):
        import yaml

        doc = yaml.safe_load(tasks)
        items = doc.get("tasks") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise ValueError("the YAML must be a project file (a mapping with `tasks:`) or a list of tasks")
        return [dict(t) for t in items]
    return [dict(t) for t in tasks]


def settled(counts: ProjectCounts) -> bool:
    """The default end of a run: every task is done or blocked."""
    return counts.done + counts.blocked == counts.total_tasks


class RunningStub:
    """The stub server of one `StubKit.serve`, with a client of its own for the test's calls."""

    def __init__(self, server: Any, db: Path) -> None:
        self.server = server
        self.db = db
        self.task_ids: list[str] = []
        self._changed = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Called on every board commit that changes leases or the queue, from whatever
        # thread the board runs on.
        server.board.add_listener(lambda _commit: loop.call_soon_threadsafe(self._changed.set))

    async def changed(self, *also: asyncio.Future[Any], within: float = 0.5) -> None:
        """Return when the board changed since the last call (or one of `also` ended, or `within` passed)."""
        waiter = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({waiter, *also}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        self._changed.clear()

    def connect(self, settings: WorkerSettings) -> Connection:
        """A `Worker.connect`/`PMClient(connect=...)` factory: a connection to this in-process stub."""
        from pm_worker.connection import Connection

        return Connection(settings, server=self.server)

    def load(self, tasks: Tasks) -> list[str]:
        """Put tasks on the board (checked like a project file); their ids."""
        from pm_agent_stub.testing import load_tasks

        items = _task_list(tasks)
        if items:
            load_tasks(self.db, *items)
        ids = [str(t["id"]) for t in items]
        self.task_ids.extend(i for i in ids if i not in self.task_ids)
        return ids

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Any tool, as a test would call it: the answer's JSON object (errors included)."""
        import mcp

        from pm_agent_stub.testing import call_tool

        # A client per call: an MCP client's task group must be left in the task that entered
        # it, and a test may call from a fixture's setup, its body and its teardown alike.
        async with mcp.Client(self.server) as client:
            result: dict[str, Any] = await call_tool(client, tool, arguments or {})
        return result

    async def ask(self, tool: Tool[A, R], args: A | dict[str, Any]) -> R:
        """A typed call (`pm_protocol.call`): the tool's result, or `pm_protocol.Refused` for an error answer."""
        import mcp

        from pm_agent_stub.testing import sender

        async with mcp.Client(self.server) as client:  # a client per call, as in `call`
            return await call(sender(client), tool, args)

    async def task(self, task_id: str) -> TaskContextResult:
        """A task with its whole progress log, blockers and artifacts (`get_task_context`, every page)."""
        whole = await self.ask(tools.get_task_context, {"task_id": task_id})
        cursor = whole.next_cursor
        while cursor is not None:
            page = await self.ask(tools.get_task_context, {"task_id": task_id, "cursor": cursor})
            whole.progress_log[:0] = page.progress_log  # progress and blockers page back in time
            whole.blockers[:0] = page.blockers
            whole.artifacts += page.artifacts
            whole.dependency_artifacts += page.dependency_artifacts
            cursor = page.next_cursor
        whole.next_cursor = None
        return whole

    async def counts(self) -> ProjectCounts:
        return (await self.ask(tools.get_project_status, {})).project_status


@dataclass
class Run:
    """What one `StubKit.run` did."""

    tasks: dict[str, TaskContextResult]
    """Every task loaded for the run, as `get_task_context` shows it after the worker stopped."""
    db: Path
    """The board file (e.g. for `pm_agent_stub.testing.read_events`)."""
    counters: Counter[str] = field(default_factory=Counter)
    """The worker's counters: handled, completed, blocked, failed, released, fenced, declined, ..."""
    exit_code: int = 0

    def status(self, task_id: str) -> str:
        return self.tasks[task_id].task.status


class StubKit:
    """The `pm_stub` fixture: runs the real stub in memory and workers against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workspace = root / "workspace"
        self.workspace.mkdir(parents=True, exist_ok=True)
        self._boards = 0

    def settings(self, **overrides: Any) -> WorkerSettings:
        """Worker settings for a test: this kit's workspace, quick polls and heartbeats."""
        from pm_worker.settings import WorkerSettings

        values: dict[str, Any] = {
            "agent_id": "test-worker",
            "workspace": self.workspace,
            "health_dir": self.root / "health",
            "poll_wait_seconds": 0.1,
            "heartbeat_seconds": 0.5,
            "shutdown_grace_seconds": 1.0,
            "reconnect_give_up_seconds": 10.0,
            "call_timeout_seconds": 10.0,
        }
        values.update(overrides)
        return WorkerSettings(**values)

    @contextlib.asynccontextmanager
    async def serve(
        self, tasks: Tasks = (), *, lease_seconds: float = 60.0, max_attempts: int = 3
    ) -> AsyncIterator[RunningStub]:
        """The real stub on a fresh board file, its lease sweeper running, `tasks` loaded."""
        from pm_agent_stub.server import build_server
        from pm_agent_stub.settings import StubSettings

        self._boards += 1
        db = self.root / f"board-{self._boards}.db"
        server = build_server(
            StubSettings().model_copy(
                update={"db": db, "lease_seconds": lease_seconds, "max_attempts": max_attempts}
            )
        )
        stub = RunningStub(server, db)
        try:
            stub.load(tasks)
            async with server.background():
                yield stub
        finally:
            server.close()

    async def run(
        self,
        worker: type[Worker] | Worker,
        tasks: Tasks = (),
        *,
        timeout: float = 60.0,
        until: Callable[[ProjectCounts], bool] = settled,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        **settings: Any,
    ) -> Run:
        """Run `worker` (a class, built with `self.settings(**settings)`, or an instance) on `tasks`
        until `until(counts)` holds (default: all done or blocked); stop it; report.

        Raises `TimeoutError` naming each task's status if that takes longer than `timeout`.
        """
        if isinstance(worker, type):
            worker = worker(self.settings(**settings))
        elif settings:
            raise TypeError(
                f"settings ({', '.join(settings)}) go with a worker class; build the instance "
                "with pm_stub.settings(...) instead"
            )
        async with self.serve(tasks, lease_seconds=lease_seconds, max_attempts=max_attempts) as stub:
            worker.connect = stub.connect
            running = asyncio.create_task(worker.run(), name=f"worker:{worker.agent_id}")
            timed_out = False
            try:
                async with asyncio.timeout(timeout):
                    # Ends when `until` holds, or when the worker stops by itself (MAX_TASKS, exit 1).
                    while not running.done() and not until(await stub.counts()):
                        await stub.changed(running)
            except TimeoutError:
                timed_out = True
            worker.request_stop()
            async with asyncio.timeout(worker.settings.shutdown_grace_seconds + 30):
                exit_code = await running
            report = Run(
                tasks={tid: await stub.task(tid) for tid in stub.task_ids},
                db=stub.db,
                counters=Counter(worker.counters),
                exit_code=exit_code,
            )
        if timed_out:
            states = ", ".join(f"{tid}={ctx.task.status}" for tid, ctx in report.tasks.items())
            raise TimeoutError(
                f"`until` did not hold within {timeout}s ({states}); "
                f"worker exit code {exit_code}, counters {dict(report.counters)}"
            )
        return report


@pytest.fixture
def pm_stub(tmp_path: Path) -> StubKit:
    """A `StubKit` in this test's tmp dir: `await pm_stub.run(MyWorker, tasks=[...])`."""
    return StubKit(tmp_path / "pm-stub")
