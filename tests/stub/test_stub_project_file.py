"""Project files: every refusal names file, task and field; nothing of a bad file is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.project_file import (
    MAX_PROJECT_FILE_BYTES,
    MAX_PROJECT_FILE_NODES,
    ProjectFileError,
    load_project_file,
    parse_project,
)
from pm_agent_stub.testing import load_tasks

GOOD = """
project: demo
tasks:
  - id: build
    name: Build
    priority: urgent
    required_skills: [docker]
    estimated_hours: 1
    payload: {path: calc, command: "python -m pytest -q"}
  - id: test
    name: Test
    dependencies: [build]
"""


def test_good_file_parses_with_defaults() -> None:
    spec = parse_project(GOOD, "p.yaml")
    assert spec.project == "demo"
    build, test = spec.tasks
    assert build.priority == "urgent"
    assert build.payload == {"path": "calc", "command": "python -m pytest -q"}
    assert test.priority == "medium"
    assert test.required_skills == []
    assert test.labels == []
    assert test.payload == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks: [\n  - id: a\n", "p.yaml: YAML syntax error at line"),
        ("", "p.yaml: field 'tasks': the file has no tasks"),
        ("project: x\ntasks: []\n", "p.yaml: field 'tasks': the file has no tasks"),
        ("- just\n- a list\n", "p.yaml: expected a mapping"),
        ("tasks:\n  - just-a-string\n", "p.yaml: task '#1': Input should be a valid dictionary"),
        (
            "tasks:\n  - &t {id: a, name: A}\n  - *t\n",
            "p.yaml: line 3 column 5: YAML aliases (*t) are not accepted",
        ),
        (
            "tasks:\n  - {id: a, name: A, payload: {n: " + "9" * 5000 + "}}\n",
            "p.yaml: line 2 column 35: cannot read the int",
        ),
        (
            "tasks:\n  - {id: a, name: A, payload: {n: 0x"
            + "f" * 4000
            + "}}\n",  # read, but too long to write
            "p.yaml: line 2 column 35: cannot read the int 0xfff",
        ),
        (
            "tasks:\n  - {id: a, name: 2001-13-45}\n",
            "p.yaml: line 2 column 19: cannot read the timestamp 2001-13-45",
        ),
        ("tasks:\n  - {id: a, name: A, colour: red}\n", "p.yaml: task 'a' field 'colour': unknown field"),
        (
            "tasks:\n  - {id: a, name: A, priority: asap}\n",
            "p.yaml: task 'a' field 'priority': unknown priority 'asap'",
        ),
        (
            "tasks:\n  - {id: a, name: A, required_skills: docker}\n",
            "p.yaml: task 'a' field 'required_skills':",
        ),
        ("tasks:\n  - {id: a, name: 5}\n", "p.yaml: task 'a' field 'name':"),
        (
            "tasks:\n  - {id: a, name: A, estimated_hours: soon}\n",
            "p.yaml: task 'a' field 'estimated_hours':",
        ),
        ("tasks:\n  - {id: 'has space', name: A}\n", "p.yaml: task 'has space' field 'id':"),
        ("tasks:\n  - {name: A}\n", "p.yaml: task '#1' field 'id': Field required"),
        ("tasks:\n  - {id: a, name: A}\n  - {id: a, name: B}\n", "p.yaml: task 'a' field 'id': duplicate id"),
        (
            "tasks:\n  - {id: a, name: A, dependencies: [a]}\n",
            "p.yaml: task 'a' field 'dependencies': a task cannot depend on itself",
        ),
        (
            "tasks:\n  - {id: a, name: A, dependencies: [c]}\n  - {id: b, name: B, dependencies: [a]}\n"
            "  - {id: c, name: C, dependencies: [b]}\n",
            "field 'dependencies': dependency cycle: a -> c -> b -> a",
        ),
        (
            "project: x\nextra: 1\ntasks:\n  - {id: a, name: A}\n",
            "p.yaml: field 'extra': unknown field",
        ),
    ],
)
def test_bad_files_are_refused_with_file_task_and_field(text: str, expected: str) -> None:
    with pytest.raises(ProjectFileError) as info:
        parse_project(text, "p.yaml")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_dependency_is_refused_and_nothing_is_loaded(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    text = "tasks:\n  - {id: a, name: A}\n  - {id: b, name: B, dependencies: [ghost]}\n"
    board = Board(connect(db))
    with pytest.raises(ProjectFileError, match="task 'b' field 'dependencies': unknown dependency 'ghost'"):
        board.load_project(parse_project(text, "p.yaml"), "p.yaml")
    assert board.get_project_status().project_status.total_tasks == 0


def test_dependency_already_on_the_board_is_accepted_and_loading_twice_adds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    assert load_tasks(db, {"id": "base", "name": "Base"})["added"] == 1
    first = load_tasks(db, {"id": "top", "name": "Top", "dependencies": ["base"]})
    again = load_tasks(db, {"id": "top", "name": "Top", "dependencies": ["base"]})
    assert (first["added"], again["added"], again["skipped"]) == (1, 0, 1)
    ctx = Board(connect(db)).get_task_context("top")
    assert ctx.task.pending_dependencies == 1


def test_load_project_file_reports_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ProjectFileError) as info:
        load_project_file(missing)
    message = str(info.value)
    assert message.startswith(f"{missing}: cannot read the file: No such file or directory.")
    assert f"looked for {missing} in its own filesystem" in message  # where the stub looked
    assert "pm_agent_stub load /dev/stdin" in message  # how to hand it a host file
    assert "\n" not in message


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as fh:  # sparse: no disk used
        fh.write(b"tasks:\n")
        fh.truncate(MAX_PROJECT_FILE_BYTES + 1)
    with pytest.raises(ProjectFileError, match=r"huge.yaml: the file is larger than 64 MiB; split it"):
        load_project_file(huge)


def test_too_many_values_are_refused_before_they_are_built() -> None:
    values = ",".join("1" for _ in range(MAX_PROJECT_FILE_NODES))
    with pytest.raises(ProjectFileError, match=r"p.yaml: more than 2,000,000 values .*; split it"):
        parse_project(f"tasks:\n  - {{id: a, name: A, payload: {{x: [{values}]}}}}\n", "p.yaml")
