"""The stub answers each tool with the board method of its name, and refuses to start when the
two drifted apart (a renamed argument, another default, another result), instead of failing
a worker's call later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pm_agent_stub.board import UNSET, Board
from pm_agent_stub.db import connect
from pm_agent_stub.tools import bind
from pm_protocol import TOOLS, tools
from pm_protocol import results as r


@pytest.fixture
def board(tmp_path: Path) -> Any:
    b = Board(connect(tmp_path / "b.db"))
    yield b
    b.close()


def test_every_board_tool_binds(board: Board) -> None:
    own = {"request_next_task", "ping", "load_project"}  # answered on the event loop (tools.py)
    for tool in TOOLS:
        if tool.name not in own:
            bind(board, tool)


def test_an_omitted_checkpoint_is_not_passed_but_an_explicit_null_is(board: Board) -> None:
    seen: list[Any] = []

    class Spy(Board):
        def report_task_progress(  # type: ignore[override]
            self,
            agent_id: str,
            task_id: str,
            status: Any,
            progress: float,
            message: str,
            checkpoint: Any = UNSET,
        ) -> r.ProgressAck:
            seen.append(checkpoint)
            return r.ProgressAck(
                success=True, acknowledged=True, status="progress_recorded", message="", lease_expires_at=None
            )

    run = bind(Spy(board.conn), tools.report_task_progress)
    base = {"agent_id": "a", "task_id": "t", "status": "in_progress", "progress": 1, "message": "m"}
    run(tools.report_task_progress.arguments(base))
    run(tools.report_task_progress.arguments({**base, "checkpoint": None}))
    assert seen == [UNSET, None]


def test_a_board_out_of_step_with_the_contract_is_refused_at_start(board: Board) -> None:
    class Renamed(Board):
        def heartbeat(self, agent: str) -> r.HeartbeatResult:  # type: ignore[override]
            raise AssertionError

    class OtherDefault(Board):
        def list_tasks(self, limit: int = 7, cursor: str | None = None) -> r.TaskList:
            raise AssertionError

    class OtherResult(Board):
        def heartbeat(self, agent_id: str) -> r.MessageResult:  # type: ignore[override]
            raise AssertionError

    with pytest.raises(RuntimeError, match=r"Board.heartbeat .*takes \(agent\).*\(agent_id\)"):
        bind(Renamed(board.conn), tools.heartbeat)
    with pytest.raises(RuntimeError, match="defaults limit to 7, the contract to 100"):
        bind(OtherDefault(board.conn), tools.list_tasks)
    with pytest.raises(RuntimeError, match="returns MessageResult, the tool HeartbeatResult"):
        bind(OtherResult(board.conn), tools.heartbeat)
