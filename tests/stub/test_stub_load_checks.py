"""Load-time checks (docs/protocol.md): skill mistakes warned about, payload keys no likely
worker accepts refused with the key named; in process on a real board file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.errors import BoardError
from pm_agent_stub.testing import tasks_yaml


@pytest.fixture
def board(tmp_path: Path) -> Board:
    return Board(connect(tmp_path / "board.db"))


def load(board: Board, *tasks: dict[str, object]) -> list[tuple[str, str]]:
    result = board.load_text(tasks_yaml(*tasks), "fleet.yaml")
    return [(w.task_id, w.warning) for w in result.warnings]


def refusal(board: Board, *tasks: dict[str, object]) -> str:
    with pytest.raises(BoardError) as refused:
        board.load_text(tasks_yaml(*tasks), "fleet.yaml")
    assert refused.value.code == "invalid_argument"
    return refused.value.message


def test_a_misspelt_skill_is_warned_about_with_the_closest_skill_and_on_the_board(board: Board) -> None:
    warnings = load(board, {"id": "tests", "name": "Run tests", "required_skills": ["tests"]})
    assert warnings == [
        ("tests", "no worker has skill 'tests' (did you mean 'testing'?): no registered worker and no known "
                  "worker role has it, so the task waits until such a worker registers")
    ]
    # ... and whenever the board is read, until a worker with that skill registers
    assert board.get_task_context("tests").task.warnings == [warnings[0][1]]
    assert board.list_tasks(None).tasks[0].warnings == [warnings[0][1]]
    board.register_agent("odd", "Odd", "lint", ["tests"])
    assert board.get_task_context("tests").task.warnings == []


def test_skills_no_single_worker_has_together_are_warned_about(board: Board) -> None:
    [(_, warning)] = load(board, {"id": "t", "name": "T", "required_skills": ["docker", "pytest"]})
    assert warning.startswith("no worker has all of the skills docker, pytest:")


def test_a_payload_key_the_likely_worker_refuses_refuses_the_file_naming_it(board: Board) -> None:
    message = refusal(
        board,
        {"id": "ok", "name": "OK", "required_skills": ["testing"], "payload": {"path": "app"}},
        {"id": "t", "name": "T", "required_skills": ["testing"], "payload": {"path": "app", "comand": "pytest"}},
    )
    assert message == (
        "fleet.yaml: task 't' field 'payload': the testing worker does not accept 'comand' (did you mean "
        "'command'?) (it accepts: command, env, path, report, timeout_seconds)"
    )
    assert board.list_tasks(None).total == 0  # all or nothing


def test_a_test_task_without_skills_is_warned_about_naming_the_worker_its_payload_fits(board: Board) -> None:
    [(_, warning)] = load(board, {"id": "t", "name": "T", "payload": {"path": "app", "command": "pytest -q"}})
    assert warning == (
        "no required_skills: whichever worker asks first takes it (devops, documentation, testing); its payload "
        "fits the testing worker: add required_skills: [testing]"
    )


def test_an_agent_of_an_unknown_role_may_take_any_payload(board: Board) -> None:
    board.register_agent("lint-1", "Lint", "lint", ["testing", "linting"])  # a custom worker with a known skill
    assert load(board, {"id": "t", "name": "T", "required_skills": ["testing"], "payload": {"rules": "E,F"}}) == []


def test_the_optional_llm_role_counts_only_once_an_llm_agent_registered(board: Board) -> None:
    task = {"id": "d", "name": "D", "required_skills": ["documentation"], "payload": {"path": "app", "ouput": "x"}}
    assert "the documentation worker does not accept 'ouput' (did you mean 'output'?)" in refusal(board, task)
    board.register_agent("llm-1", "LLM", "llm", ["python", "documentation", "code-review"])
    assert load(board, task) == []  # an LLM worker may take it, and it reads any payload
