"""How the operator CLI reaches a board: the running stub over HTTP, or a board file offline.

Both answer with the same `pm_protocol` result models, so every command renders one way
whichever it talks to. Over HTTP (`RemoteBoard`, remote.py) the CLI is a client like any
other: same endpoint, same bearer token, the operator tools of docs/protocol.md. Offline
(`FileBoard`) it opens the SQLite file itself — for a stub that is not running, or a copy
of its board; WAL and `BEGIN IMMEDIATE` make that safe next to a running stub too. A file
that does not exist is never created by a command that only reads or changes what is
there (`status`, `show`, `rerun`, `resolve`): a typo in `--db` must not answer "0 tasks".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from pm_agent_stub.board import Board, open_board
from pm_agent_stub.errors import BoardError
from pm_agent_stub.settings import StubSettings
from pm_protocol import results as r


class OperatorError(Exception):
    """A refused or failed operator call: the protocol's error code and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@contextmanager
def _refusals() -> Iterator[None]:
    """A board refusal as the OperatorError the HTTP path raises for the same answer."""
    try:
        yield
    except BoardError as exc:
        raise OperatorError(exc.code, exc.message) from None


class BoardAccess(Protocol):
    """The calls the operator CLI makes, in pm_protocol terms."""

    source: str
    """The board as people should see it named: the stub's URL or the file's path."""

    async def load_text(self, text: str, source: str) -> r.LoadResult: ...

    async def list_tasks(self, limit: int, cursor: str | None = None) -> r.TaskList: ...

    async def project_status(self) -> r.ProjectStatus: ...

    async def agents(self, limit: int, cursor: str | None = None) -> r.AgentList: ...

    async def task_context(self, task_id: str) -> r.TaskContextResult: ...

    async def rerun(self, task_id: str, reason: str, dependents: bool) -> r.RerunResult: ...

    async def resolve(self, task_id: str, resolution: str) -> r.ResolveResult: ...

    async def close(self) -> None: ...


class FileBoard:
    """A board file opened in this process (`--db`)."""

    def __init__(self, board: Board, source: str) -> None:
        self.board = board
        self.source = source

    @classmethod
    def open(cls, settings: StubSettings, *, create: bool) -> FileBoard:
        """The board at `settings.db`; OperatorError if it does not exist and `create` is false."""
        path = Path(settings.db).expanduser()
        if not create and not path.exists():
            raise OperatorError(
                "board_not_found",
                f"there is no board at {path}: give the --db of an existing board file, or leave --db out "
                "to talk to the running stub (--url / PM_AGENT_URL)",
            )
        return cls(open_board(settings), str(path))

    async def load_text(self, text: str, source: str) -> r.LoadResult:
        with _refusals():
            return self.board.load_text(text, source)

    async def list_tasks(self, limit: int, cursor: str | None = None) -> r.TaskList:
        with _refusals():
            return self.board.list_tasks(limit, cursor)

    async def project_status(self) -> r.ProjectStatus:
        with _refusals():
            return self.board.get_project_status()

    async def agents(self, limit: int, cursor: str | None = None) -> r.AgentList:
        with _refusals():
            return self.board.list_registered_agents(limit, cursor)

    async def task_context(self, task_id: str) -> r.TaskContextResult:
        with _refusals():
            return self.board.get_task_context(task_id)

    async def rerun(self, task_id: str, reason: str, dependents: bool) -> r.RerunResult:
        with _refusals():
            return self.board.rerun_task(task_id, reason, dependents)

    async def resolve(self, task_id: str, resolution: str) -> r.ResolveResult:
        with _refusals():
            return self.board.resolve_blocker(task_id, resolution)

    async def close(self) -> None:
        self.board.close()
