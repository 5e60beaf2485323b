"""A corpus of bad project files, each refused whole by `python -m pm_agent_stub load FILE --db DB`.

Refused means: exit code 2, one message on stderr naming the file, the task and the field
(`<file>: task '<id>' field '<field>': <problem>`), and the board byte-for-byte as it was
(every table dumped before and after). The loads run as real CLI processes, in parallel,
each on its own copy of a board that already has tasks, an agent and a live lease.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.project_file import parse_project
from pm_agent_stub.testing import run_cli, tasks_yaml
from tests.reliability.boardcheck import dump


@dataclass(frozen=True)
class Bad:
    text: str | bytes
    task: str | tuple[str, ...]  # the task the message must name ("-" = the file as a whole)
    field: str
    problem: str  # a fragment of the problem, lower case


GOOD = "  - {id: ok-1, name: Fine task}\n"
CORPUS: dict[str, Bad] = {
    "yaml syntax error": Bad(
        "project: p\ntasks:\n  - id: a\n    name: [unclosed\n", "-", "-", "yaml syntax error"
    ),
    "tab indentation": Bad("project: p\ntasks:\n\t- id: a\n", "-", "-", "yaml syntax error"),
    "unknown task field": Bad(
        "tasks:\n" + GOOD + "  - {id: a, name: A, colour: red}\n", "a", "colour", "unknown field"
    ),
    "unknown top-level field": Bad("owner: me\ntasks:\n" + GOOD, "-", "owner", "unknown field"),
    "cycle": Bad(
        "tasks:\n  - {id: a, name: A, dependencies: [c]}\n  - {id: b, name: B, dependencies: [a]}\n"
        "  - {id: c, name: C, dependencies: [b]}\n",
        ("a", "b", "c"),
        "dependencies",
        "cycle",
    ),
    "self dependency": Bad(
        "tasks:\n" + GOOD + "  - {id: a, name: A, dependencies: [a]}\n", "a", "dependencies", "itself"
    ),
    "unknown dependency": Bad(
        "tasks:\n" + GOOD + "  - {id: a, name: A, dependencies: [ghost]}\n",
        "a",
        "dependencies",
        "unknown dependency 'ghost'",
    ),
    "duplicate id": Bad("tasks:\n  - {id: a, name: A}\n  - {id: a, name: Again}\n", "a", "id", "duplicate"),
    "duplicate id with a board task": Bad(
        "tasks:\n  - {id: a, name: A}\n  - {id: board-1, name: X}\n  - {id: a, name: B}\n",
        "a",
        "id",
        "duplicate",
    ),
    "hours not a number": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: two}\n", "a", "estimated_hours", "number"
    ),
    "hours negative": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: -1}\n", "a", "estimated_hours", "greater than"
    ),
    "hours infinite": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: .inf}\n", "a", "estimated_hours", "finite"
    ),
    "hours nan": Bad(
        "tasks:\n  - {id: a, name: A, estimated_hours: .nan}\n", "a", "estimated_hours", "finite"
    ),
    "skills a string": Bad(
        "tasks:\n  - {id: a, name: A, required_skills: testing}\n", "a", "required_skills", "list"
    ),
    "skill a number": Bad(
        "tasks:\n  - {id: a, name: A, required_skills: [7]}\n", "a", "required_skills[0]", "string"
    ),
    "name a number": Bad("tasks:\n  - {id: a, name: 5}\n", "a", "name", "string"),
    "name missing": Bad("tasks:\n  - {id: a}\n", "a", "name", "required"),
    "dependencies a string": Bad(
        "tasks:\n  - {id: a, name: A, dependencies: b}\n", "a", "dependencies", "list"
    ),
    "payload a list": Bad("tasks:\n  - {id: a, name: A, payload: [1, 2]}\n", "a", "payload", "dictionary"),
    "payload with infinity": Bad(
        "tasks:\n  - {id: a, name: A, payload: {x: .inf}}\n", "a", "payload", "nan or infinity"
    ),
    "unknown priority": Bad(
        "tasks:\n  - {id: a, name: A, priority: critical}\n", "a", "priority", "unknown priority 'critical'"
    ),
    "id with a space": Bad("tasks:\n  - {id: has space, name: A}\n", "has space", "id", "pattern"),
    "id too long": Bad("tasks:\n  - {id: " + "x" * 201 + ", name: A}\n", "x" * 201, "id", "at most 200"),
    "task not a mapping": Bad("tasks:\n  - just-a-string\n", "#1", "-", "dictionary"),
    "tasks not a list": Bad("tasks: {a: 1}\n", "-", "tasks", "list"),
    "empty file": Bad("", "-", "tasks", "no tasks"),
    "only a comment": Bad("# nothing here\n", "-", "tasks", "no tasks"),
    "empty task list": Bad("project: p\ntasks: []\n", "-", "tasks", "no tasks"),
    "not a mapping (list)": Bad("- a\n- b\n", "-", "-", "expected a mapping"),
    "not a mapping (scalar)": Bad("just some words\n", "-", "-", "expected a mapping"),
    "not utf-8": Bad(b"tasks:\n  - {id: a, name: \xff\xfe}\n", "-", "-", "not utf-8"),
}


def _seed(db: Path) -> None:
    """A board with history: tasks (one with a dependency), an agent, a live lease and a progress row."""
    board = Board(connect(db), lease_seconds=3600)
    spec = parse_project(
        tasks_yaml(
            {"id": "board-1", "name": "On the board", "required_skills": ["x"]},
            {"id": "board-2", "name": "Depends", "required_skills": ["x"], "dependencies": ["board-1"]},
        ),
        "seed.yaml",
    )
    board.load_project(spec, "seed.yaml")
    board.register_agent("seed-agent", "Seed", "role", ["x"])
    board.request_next_task("seed-agent")
    board.report_task_progress("seed-agent", "board-1", "in_progress", 10, "started", {"step": 1})
    board.conn.close()


@dataclass
class Outcome:
    path: Path
    result: CompletedProcess[str]
    before: dict[str, list[tuple[object, ...]]]
    after: dict[str, list[tuple[object, ...]]]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every corpus file loaded by the real CLI (4 at a time), each on its own copy of the seeded board."""
    root = tmp_path_factory.mktemp("bad-files")
    seed = root / "seed.db"
    _seed(seed)

    def one(index: int, name: str) -> tuple[str, Outcome]:
        db = root / f"board-{index}.db"
        shutil.copy(seed, db)
        path = root / f"bad file {index}.yaml"  # a space in the name, to check it is shown whole
        bad = CORPUS[name]
        if isinstance(bad.text, bytes):
            path.write_bytes(bad.text)
        else:
            path.write_text(bad.text, encoding="utf-8")
        before = dump(db)
        result = run_cli("load", str(path), "--db", str(db), timeout=120)
        return name, Outcome(path, result, before, dump(db))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(lambda item: one(*item), enumerate(sorted(CORPUS))))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_file_is_refused_whole(outcomes: dict[str, Outcome], name: str) -> None:
    bad, outcome = CORPUS[name], outcomes[name]
    err = outcome.result.stderr
    assert outcome.result.returncode == 2, (outcome.result.returncode, err)
    line = next((ln for ln in err.splitlines() if f"{outcome.path}: task '" in ln), None)
    assert line is not None, f"no '<file>: task ...' line naming {outcome.path} in:\n{err}"
    tasks = bad.task if isinstance(bad.task, tuple) else (bad.task,)
    assert any(f": task '{t}' field '{bad.field}': " in line for t in tasks), line
    assert bad.problem in line.lower(), line
    assert "Traceback" not in err, err
    assert outcome.after == outcome.before, "a refused file changed the board"


def test_good_file_does_change_the_board(tmp_path: Path) -> None:
    """The control: the same harness sees a change when a file is good (so 'unchanged' means something)."""
    db = tmp_path / "board.db"
    _seed(db)
    path = tmp_path / "good.yaml"
    path.write_text("tasks:\n" + GOOD + "  - {id: a, name: A, dependencies: [board-1, ok-1]}\n")
    before = dump(db)
    result = run_cli("load", str(path), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "loaded 2 new task(s)" in result.stderr
    assert dump(db) != before
