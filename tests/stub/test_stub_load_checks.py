"""Load-time checks (docs/protocol.md): skill mistakes warned about, payload keys no likely
worker accepts refused with the key named; in process on a real board file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.board.loading import parsed_project
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.testing import tasks_yaml
from pm_protocol import results as r
from pm_protocol.literals import PRIORITIES


@pytest.fixture
def board(tmp_path: Path) -> Board:
    return Board(connect(tmp_path / "board.db"))


def load_text(board: Board, text: str, source: str = "fleet.yaml") -> r.LoadResult:
    """What the `load_project` tool does with a file's text."""
    return board.load_spec(parsed_project(text, source), source)


def load(board: Board, *tasks: dict[str, object]) -> list[tuple[str, str]]:
    result = load_text(board, tasks_yaml(*tasks))
    return [(w.task_id, w.warning) for w in result.warnings]


def refusal(board: Board, *tasks: dict[str, object]) -> str:
    with pytest.raises(BoardError) as refused:
        load_text(board, tasks_yaml(*tasks))
    assert refused.value.code == "invalid_argument"
    return refused.value.message


def test_a_misspelt_skill_is_warned_about_with_the_closest_skill_and_on_the_board(board: Board) -> None:
    warnings = load(board, {"id": "tests", "name": "Run tests", "required_skills": ["tests"]})
    assert warnings == [
        (
            "tests",
            "no worker has skill 'tests' (did you mean 'testing'?): no registered worker and no known "
            "worker role has it, so the task waits until such a worker registers",
        )
    ]
    # ... and whenever the board is read, until a worker with that skill registers
    assert board.get_task_context("tests").task.warnings == [warnings[0][1]]
    assert board.list_tasks().tasks[0].warnings == [warnings[0][1]]
    board.register_agent("odd", "Odd", "lint", ["tests"])
    assert board.get_task_context("tests").task.warnings == []


def test_skills_no_single_worker_has_together_are_warned_about(board: Board) -> None:
    [(_, warning)] = load(board, {"id": "t", "name": "T", "required_skills": ["docker", "pytest"]})
    assert warning.startswith("no worker has all of the skills docker, pytest:")


def test_a_payload_key_the_likely_worker_refuses_refuses_the_file_naming_it(board: Board) -> None:
    message = refusal(
        board,
        {"id": "ok", "name": "OK", "required_skills": ["testing"], "payload": {"path": "app"}},
        {
            "id": "t",
            "name": "T",
            "required_skills": ["testing"],
            "payload": {"path": "app", "comand": "pytest"},
        },
    )
    assert message == (
        "fleet.yaml: task 't' field 'payload': the testing worker does not accept 'comand' (did you mean "
        "'command'?) (it accepts: command, env, environment, install, path, python, report, timeout_seconds)"
    )
    assert board.list_tasks().total == 0  # all or nothing


def test_a_test_task_without_skills_is_warned_about_naming_the_worker_its_payload_fits(board: Board) -> None:
    [(_, warning)] = load(board, {"id": "t", "name": "T", "payload": {"path": "app", "command": "pytest -q"}})
    assert warning == (
        "no required_skills: whichever worker asks first takes it (devops, documentation, testing); its payload "
        "fits the testing worker: add required_skills: [testing]"
    )


def test_an_agent_of_an_unknown_role_may_take_any_payload(board: Board) -> None:
    board.register_agent(
        "lint-1", "Lint", "lint", ["testing", "linting"]
    )  # a custom worker with a known skill
    assert (
        load(board, {"id": "t", "name": "T", "required_skills": ["testing"], "payload": {"rules": "E,F"}})
        == []
    )


def test_the_optional_llm_role_counts_only_once_an_llm_agent_registered(board: Board) -> None:
    task = {
        "id": "d",
        "name": "D",
        "required_skills": ["documentation"],
        "payload": {"path": "app", "ouput": "x"},
    }
    assert "the documentation worker does not accept 'ouput' (did you mean 'output'?)" in refusal(board, task)
    board.register_agent("llm-1", "LLM", "llm", ["python", "documentation", "code-review"])
    assert load(board, task) == []  # an LLM worker may take it, and it reads any payload


def test_list_tasks_pages_through_the_board_in_board_order(board: Board) -> None:
    """`list_tasks` pages like every list (limit, cursor): each task once, in board order."""
    load_text(
        board,
        tasks_yaml(
            *[
                {
                    "id": f"t{i:03}",
                    "name": "T",
                    "required_skills": ["testing"],
                    "priority": PRIORITIES[i % 4],
                }
                for i in range(250)
            ]
        ),
        "many.yaml",
    )
    board.register_agent("w", "W", "testing", ["testing"])
    for _ in range(3):  # three done, one in progress, one blocked: every rank of the board order
        offer = board.request_next_task("w").assignment
        assert offer is not None
        board.report_task_progress("w", offer.task_id, "completed", 100, "ok")
    blocked = board.request_next_task("w").assignment
    assert blocked is not None
    board.report_blocker("w", blocked.task_id, "stuck", "high")
    assert board.request_next_task("w").assignment is not None
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = board.list_tasks(7, cursor)
        assert page.total == 250
        seen += [t.task_id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    everything = board.list_tasks(200).tasks + board.list_tasks(200, board.list_tasks(200).next_cursor).tasks
    assert seen == [t.task_id for t in everything]
    assert len(set(seen)) == 250
    rank = {"in_progress": 0, "blocked": 1, "todo": 2, "done": 3}
    order = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
    summaries = {t.task_id: t for t in everything}
    keys = [(rank[summaries[i].status], order[summaries[i].priority], i) for i in seen]
    assert keys == sorted(keys)
    with pytest.raises(BoardError) as bad:
        board.list_tasks(7, "not-a-cursor")
    assert bad.value.code == "invalid_argument"
