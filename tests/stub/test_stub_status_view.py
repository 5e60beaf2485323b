"""What the operator sees: ids whole in an 80-column terminal, and board text never obeyed."""

from __future__ import annotations

import io
from pathlib import Path

import mcp
import pytest
from rich.console import Console

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.operator_link import OperatorLink
from pm_agent_stub.settings import StubSettings
from pm_agent_stub.status_report import StatusReport, collect
from pm_agent_stub.status_view import render
from pm_agent_stub.testing import StubProcess, call_tool, load_tasks, run_cli, task

TASK_IDS = ("unit-tests-calculator-package", "api-reference-documentation", "docker-image-smoke-deploy")
AGENT_IDS = ("testing-3f9a2b1c4d5e", "documentation-7c1d9e0a2b44", "devops-0a1b2c3d4e5f")
# What a hostile (or an older stub's) board may hold: rich markup, a clipboard write (OSC 52),
# a screen clear, a right-to-left override.
HOSTILE_ROLE = "ops [bold red]root[/] \x1b]52;c;cm0gLXJmIC8K\x07\x1b[2J\u202e"


def busy_board(db: Path, role: str = "testing") -> Board:
    load_tasks(db, *(task(t, "s") for t in TASK_IDS), task("waits-on-all", "x", dependencies=list(TASK_IDS)))
    board = Board(connect(db))
    for agent in AGENT_IDS:
        board.register_agent(agent, "Worker", role, ["s"])
        board.request_next_task(agent)
    return board


def whole_on_a_line(text: str, ids: tuple[str, ...]) -> list[str]:
    """The ids that do not appear unbroken on some line."""
    return [i for i in ids if not any(i in line for line in text.splitlines())]


async def report_of(db: Path) -> StatusReport:
    """`status --db`'s report: the board file served in this process, read through the tool router."""
    async with OperatorLink.on_file(StubSettings().model_copy(update={"db": db})) as link:
        return await collect(link, None)


async def test_ids_stay_whole_in_80_columns_and_other_columns_give_way(tmp_path: Path) -> None:
    busy_board(tmp_path / "b.db").close()
    report = await report_of(tmp_path / "b.db")
    out = io.StringIO()
    render(report, Console(file=out, width=80))
    text = out.getvalue()
    assert whole_on_a_line(text, TASK_IDS + AGENT_IDS + ("waits-on-all",)) == []
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "hidden to keep ids whole" in text  # says what it left out
    wide = io.StringIO()
    render(report, Console(file=wide, width=200))
    assert "hidden" not in wide.getvalue()  # a wide terminal shows every column
    assert "waiting on" in wide.getvalue()


def test_status_cli_in_80_columns_keeps_ids_whole_and_shows_hostile_text_inertly(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    busy_board(db, role=HOSTILE_ROLE).close()  # written behind the tool boundary, as an old board file may be
    result = run_cli("status", "--db", str(db), env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert whole_on_a_line(result.stdout, TASK_IDS + AGENT_IDS) == []
    wide = run_cli("status", "--db", str(db), env={"COLUMNS": "240"})
    assert wide.returncode == 0, wide.stderr
    for shown in (result.stdout, wide.stdout):
        assert "\x1b" not in shown
        assert "\x07" not in shown
        assert "\u202e" not in shown
    assert "[bold red]root[/]" in wide.stdout  # markup printed as typed, not applied
    assert "\\x1b]52;c;cm0gLXJmIC8K\\x07\\x1b[2J\\u202e" in wide.stdout


@pytest.mark.anyio
async def test_names_and_roles_must_be_printable_text(stub: StubProcess, uniq: str) -> None:
    async with mcp.Client(stub.url) as client:
        for field in ("name", "role"):
            args = {"agent_id": f"w-{uniq}", "name": "Worker", "role": "r", "skills": []}
            refused = await call_tool(client, "register_agent", {**args, field: HOSTILE_ROLE})
            assert refused["error"] == "invalid_argument"
            assert f"argument '{field}': must be printable text" in refused["message"]
            assert "printable characters" in refused["message"]  # the usage line says what to send
        ok = await call_tool(
            client,
            "register_agent",
            {"agent_id": f"w-{uniq}", "name": "Dokümentation ✓", "role": "r", "skills": []},
        )
        assert ok["success"] is True
